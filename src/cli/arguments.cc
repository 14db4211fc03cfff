#include "cli/arguments.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/paginator.h"
#include "cli/param_validator.h"
#include "cli/shorthand.h"

namespace pw::cli {

namespace {

constexpr std::string_view kFilePrefix = "file://";
constexpr std::string_view kFilebPrefix = "fileb://";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string LeftTrim(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
  return std::string(s.substr(i));
}

Status ParamError(std::string_view flag, const std::string& what) {
  return InvalidArgument("Error parsing parameter '" + std::string(flag) + "': " + what, "");
}

Status UsageError(const std::string& line) { return InvalidArgument(UsageText(line), ""); }

// Resolves file:// and fileb:// values.
Result<std::string> LoadValue(std::string_view flag, const std::string& value,
                              const ParamFileReader& read_file) {
  std::string_view prefix;
  if (StartsWith(value, kFilePrefix)) prefix = kFilePrefix;
  if (StartsWith(value, kFilebPrefix)) prefix = kFilebPrefix;
  if (prefix.empty()) return value;
  Result<std::string> content = read_file(value.substr(prefix.size()));
  if (!content.ok()) {
    return ParamError(flag,
                      "Unable to load paramfile " + value + ": " + content.status().message());
  }
  return content;
}

// Parses JSON text, keeping the parser's message for the error.
Result<OJson> ParseJson(std::string_view flag, const std::string& text) {
  try {
    return OJson::parse(text);
  } catch (const OJson::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos && what[0] == '[') {
      what = what.substr(p + 2);
    }
    return ParamError(flag, "Invalid JSON: " + what + "\nJSON received: " + text);
  }
}

Result<OJson> ConvertScalar(const std::string& type, const std::string& value) {
  if (type == "integer" || type == "long") {
    std::string t = value;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back())) != 0) t.pop_back();
    t = LeftTrim(t);
    char* end = nullptr;
    errno = 0;
    long long n = t.empty() ? 0 : std::strtoll(t.c_str(), &end, 10);
    if (t.empty() || end == nullptr || *end != '\0' || errno == ERANGE) {
      return InvalidArgument("invalid literal for int() with base 10: '" + value + "'", "");
    }
    return OJson(n);
  }
  if (type == "double" || type == "float") {
    char* end = nullptr;
    double d = std::strtod(value.c_str(), &end);
    if (value.empty() || end == nullptr || *end != '\0') {
      return InvalidArgument("could not convert string to float: '" + value + "'", "");
    }
    return OJson(d);
  }
  if (type == "boolean") {
    // Only reachable for booleans nested in lists; awscli accepts "true"/"false".
    if (value == "true" || value == "True") return OJson(true);
    if (value == "false" || value == "False") return OJson(false);
    return InvalidArgument("Invalid value for boolean: '" + value + "'", "");
  }
  return OJson(value);  // string, timestamp (botocore accepts timestamp strings), blob.
}

// A structure or map from one value: JSON if it looks like JSON, else shorthand.
Result<OJson> ConvertComplex(std::string_view flag, std::string_view shape_name,
                             const std::string& value) {
  std::string trimmed = LeftTrim(value);
  if (!trimmed.empty() && trimmed[0] == '{') return ParseJson(flag, value);
  if (trimmed.empty() || trimmed[0] == '[') return ParamError(flag, "Invalid JSON:\n" + value);
  Result<OJson> parsed = ParseShorthand(value);
  if (!parsed.ok()) return ParamError(flag, parsed.status().message());
  return TypeShorthand(*parsed, shape_name);
}

const OJson& Members(const OJson& shape) {
  static const OJson kEmpty = OJson::object();
  auto it = shape.find("members");
  return it == shape.end() ? kEmpty : *it;
}

struct FlagInfo {
  std::string member;    // Model member name, e.g. "pipelineName".
  std::string shape;     // Its shape name.
  std::string type;      // Its shape type.
  bool negated = false;  // --no-foo for boolean foo.
};

}  // namespace

std::string UsageText(std::string_view error_line) {
  std::string text =
      "usage: pipewright [options] <command> [parameters]\n"
      "To see help text, you can run:\n"
      "\n"
      "  pipewright help\n"
      "  pipewright <command> help\n"
      "\n";
  if (StartsWith(error_line, "Unknown options:")) return text + std::string(error_line);
  return text + "pipewright: error: " + std::string(error_line);
}

Result<std::string> ReadParamFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return InvalidArgument(
        "[Errno " + std::to_string(err) + "] " + std::strerror(err) + ": '" + path + "'", "");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return InvalidArgument("[Errno 21] Is a directory: '" + path + "'", "");
  }
  return ss.str();
}

Result<OJson> ConvertFlagValues(std::string_view flag, std::string_view shape_name,
                                const std::vector<std::string>& raw_values,
                                const ParamFileReader& read_file) {
  std::vector<std::string> values;
  for (const auto& v : raw_values) {
    PW_ASSIGN_OR_RETURN(std::string loaded, LoadValue(flag, v, read_file));
    values.push_back(std::move(loaded));
  }
  const OJson* shape = FindShape(shape_name);
  if (shape == nullptr || values.empty()) return Internal("no shape or value for flag");
  const std::string type = shape->value("type", "");
  if (type == "structure" || type == "map") return ConvertComplex(flag, shape_name, values[0]);
  if (type == "list") {
    std::string first = LeftTrim(values[0]);
    if (values.size() == 1 && !first.empty() && first[0] == '[') {
      return ParseJson(flag, values[0]);
    }
    const std::string member_shape = (*shape)["member"].value("shape", "");
    const std::string member_type = ShapeType(member_shape);
    OJson out = OJson::array();
    for (const auto& v : values) {
      if (member_type == "structure" || member_type == "map") {
        PW_ASSIGN_OR_RETURN(OJson item, ConvertComplex(flag, member_shape, v));
        out.push_back(std::move(item));
      } else if (member_type == "list") {
        PW_ASSIGN_OR_RETURN(OJson item, ParseJson(flag, v));
        out.push_back(std::move(item));
      } else {
        PW_ASSIGN_OR_RETURN(OJson item, ConvertScalar(member_type, v));
        out.push_back(std::move(item));
      }
    }
    return out;
  }
  return ConvertScalar(type, values[0]);
}

Result<ParsedArgs> ParseOperationArgs(std::string_view operation,
                                      const std::vector<std::string>& args,
                                      const ParamFileReader& read_file,
                                      const std::vector<std::string>& not_required) {
  const std::string input_shape_name = InputShapeName(operation);
  const OJson* input_shape = input_shape_name.empty() ? nullptr : FindShape(input_shape_name);
  static const OJson kNoShape = OJson::object();
  const OJson& shape = input_shape == nullptr ? kNoShape : *input_shape;
  const OJson& members = Members(shape);
  const bool paginated = FindPaginator(operation) != nullptr;

  // Flag name -> member.
  std::vector<std::pair<std::string, FlagInfo>> flags;
  for (const auto& [name, m] : members.items()) {
    FlagInfo info{name, m.value("shape", ""), ShapeType(m.value("shape", "")), false};
    flags.emplace_back(FlagName(operation, name), info);
    if (info.type == "boolean") {
      info.negated = true;
      flags.emplace_back("no-" + FlagName(operation, name), info);
    }
  }
  auto find_flag = [&](const std::string& name) -> const FlagInfo* {
    for (const auto& [flag, info] : flags) {
      if (flag == name) return &info;
    }
    return nullptr;
  };

  ParsedArgs out;
  OJson explicit_input = OJson::object();
  std::optional<std::string> cli_input_json;
  std::vector<std::string> unknown;
  size_t i = 0;
  while (i < args.size()) {
    const std::string& tok = args[i];
    if (tok == "help" && i == 0 && args.size() == 1) {
      out.help = true;
      return out;
    }
    if (!StartsWith(tok, "--")) {
      unknown.push_back(tok);
      ++i;
      continue;
    }
    std::string name = tok.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    // Values following the flag, up to the next option.
    std::vector<std::string> values;
    size_t j = i + 1;
    if (inline_value) {
      values.push_back(*inline_value);
    } else {
      while (j < args.size() && !StartsWith(args[j], "--")) values.push_back(args[j++]);
    }
    i = j;
    auto take_one = [&](std::vector<std::string>* vals) -> Result<std::string> {
      if (vals->empty()) return UsageError("argument --" + name + ": expected one argument");
      std::string v = (*vals)[0];
      for (size_t k = 1; k < vals->size(); ++k) unknown.push_back((*vals)[k]);
      return v;
    };

    if (name == "help") {
      out.help = true;
      return out;
    }
    if (name == "cli-input-json") {
      PW_ASSIGN_OR_RETURN(cli_input_json, take_one(&values));
      continue;
    }
    if (paginated && (name == "max-items" || name == "page-size")) {
      PW_ASSIGN_OR_RETURN(std::string v, take_one(&values));
      PW_ASSIGN_OR_RETURN(OJson n, ConvertScalar("integer", v));
      (name == "max-items" ? out.max_items : out.page_size) = n.get<int64_t>();
      continue;
    }
    if (paginated && name == "starting-token") {
      PW_ASSIGN_OR_RETURN(out.starting_token, take_one(&values));
      continue;
    }
    const FlagInfo* info = find_flag(name);
    if (info == nullptr) {
      unknown.push_back(tok);
      for (auto& v : values) unknown.push_back(v);
      continue;
    }
    OJson value;
    if (info->type == "boolean") {
      if (inline_value) {
        unknown.push_back(*inline_value);
      } else {
        for (auto& v : values) unknown.push_back(v);
      }
      value = !info->negated;
    } else if (info->type == "list") {
      if (values.empty()) {
        return UsageError("argument --" + name + ": expected at least one argument");
      }
      PW_ASSIGN_OR_RETURN(value, ConvertFlagValues("--" + name, info->shape, values, read_file));
    } else {
      PW_ASSIGN_OR_RETURN(std::string v, take_one(&values));
      PW_ASSIGN_OR_RETURN(value, ConvertFlagValues("--" + name, info->shape, {v}, read_file));
    }
    if (!explicit_input.contains(info->member)) out.explicit_members.push_back(info->member);
    explicit_input[info->member] = std::move(value);
  }

  if (!unknown.empty()) {
    std::string line = "Unknown options: ";
    for (size_t k = 0; k < unknown.size(); ++k) {
      if (k > 0) line += ", ";
      line += unknown[k];
    }
    return UsageError(line);
  }

  if (cli_input_json) {
    PW_ASSIGN_OR_RETURN(std::string text,
                        LoadValue("--cli-input-json", *cli_input_json, read_file));
    PW_ASSIGN_OR_RETURN(out.input, ParseJson("--cli-input-json", text));
    if (!out.input.is_object()) {
      return ParamError("--cli-input-json", "Invalid JSON received.");
    }
  } else if (shape.contains("required")) {
    std::string missing;
    for (const auto& r : shape["required"]) {
      const std::string req = r.get<std::string>();
      if (explicit_input.contains(req)) continue;
      if (std::find(not_required.begin(), not_required.end(), req) != not_required.end()) continue;
      if (!missing.empty()) missing += ", ";
      missing += "--" + FlagName(operation, req);
    }
    if (!missing.empty()) {
      return UsageError("the following arguments are required: " + missing);
    }
  }
  // Explicit flags replace whole top-level members of the base input.
  for (auto& [k, v] : explicit_input.items()) out.input[k] = v;
  return out;
}

OJson FillIdempotencyTokens(std::string_view operation, OJson input,
                            const std::function<std::string()>& new_token) {
  const OJson* shape = FindShape(InputShapeName(operation));
  if (shape == nullptr || !input.is_object()) return input;
  for (const auto& [name, m] : Members(*shape).items()) {
    if (m.value("idempotencyToken", false) && !input.contains(name)) input[name] = new_token();
  }
  return input;
}

Status ValidateRequest(std::string_view operation, const OJson& input) {
  const std::string shape = InputShapeName(operation);
  if (shape.empty()) return Status::Ok();
  std::vector<std::string> errors = ValidateParams(input, shape);
  if (errors.empty()) return Status::Ok();
  std::string msg = "Parameter validation failed:";
  for (const auto& e : errors) msg += "\n" + e;
  return InvalidArgument(msg, "");
}

}  // namespace pw::cli
