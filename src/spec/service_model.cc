#include "spec/service_model.h"

#include <re2/re2.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace pw::spec {

extern const std::string_view kModelJson;

namespace {

// Number of Unicode code points in UTF-8 `s` (the model's lengths count characters).
size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// Appends a bounded rendering of `v` to `out`: at most ~kMaxQuotedBytes bytes
// and 8 levels, whatever the input (no recursion deeper than that, no
// unbounded dump of a large or deeply nested value).
void Render(const nlohmann::json& v, int depth, std::string* out) {
  if (out->size() > kMaxQuotedBytes) return;
  if (v.is_array() || v.is_object()) {
    const bool obj = v.is_object();
    out->push_back(obj ? '{' : '[');
    if (depth >= 8 && !v.empty()) {
      *out += "...";
    } else {
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (out->size() > kMaxQuotedBytes) {
          *out += ",...";
          break;
        }
        if (!first) out->push_back(',');
        first = false;
        if (obj) *out += nlohmann::json(it.key()).dump() + ":";
        Render(*it, depth + 1, out);
      }
    }
    out->push_back(obj ? '}' : ']');
    return;
  }
  *out += v.dump();
}

std::string Quote(const nlohmann::json& v) {
  if (v.is_string())
    return "'" + TruncateUtf8(v.get_ref<const std::string&>(), kMaxQuotedBytes) + "'";
  std::string s;
  Render(v, 0, &s);
  return TruncateUtf8(s, kMaxQuotedBytes);
}

// A field path for a message: map keys in it come from the request.
std::string PathText(const std::string& path) { return TruncateUtf8(path, kMaxQuotedBytes); }

std::string Fail(const nlohmann::json& v, const std::string& path, const std::string& what) {
  return "Value " + Quote(v) + " at '" + PathText(path) + "' failed to satisfy constraint: " + what;
}

// Appends an error when `n` is outside [min, max] (a bound < 0 is absent);
// `what` is "length" or "value". Returns true when within bounds.
bool CheckBounds(const nlohmann::json& v, const std::string& where, double n, double min,
                 double max, const char* what, std::vector<std::string>* errors) {
  bool ok = true;
  if (min >= 0 && n < min) {
    errors->push_back(Fail(v, where,
                           std::string("Member must have ") + what + " greater than or equal to " +
                               std::to_string(static_cast<long>(min))));
    ok = false;
  }
  if (max >= 0 && n > max) {
    errors->push_back(Fail(v, where,
                           std::string("Member must have ") + what + " less than or equal to " +
                               std::to_string(static_cast<long>(max))));
    ok = false;
  }
  return ok;
}

std::string Join(const std::string& path, const std::string& member) {
  return path.empty() ? member : path + "." + member;
}

RE2::Options PatternOptions() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingUTF8);
  o.set_log_errors(false);
  return o;
}

}  // namespace

Status CheckModelPattern(const std::string& pattern) {
  RE2 re(pattern, PatternOptions());
  if (!re.ok()) {
    return InvalidArgument("model pattern '" + pattern +
                           "' does not compile in RE2: " + re.error());
  }
  return Status::Ok();
}

std::string TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t cut = max_bytes;
  // Back up to the first byte of the character that straddles the cut.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

ServiceModel::~ServiceModel() = default;

const ServiceModel& ServiceModel::Get() {
  static const ServiceModel* model = [] {
    nlohmann::json j = nlohmann::json::parse(kModelJson, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("shapes")) {
      std::fputs("embedded service model is not valid JSON\n", stderr);
      std::abort();
    }
    return new ServiceModel(j);  // Lives for the whole process.
  }();
  return *model;
}

ServiceModel::ServiceModel(const nlohmann::json& model) : model_(model) {
  for (const auto& [name, shape] : model_["shapes"].items()) {
    if (!shape.contains("pattern")) continue;
    std::string p = shape["pattern"].get<std::string>();
    if (p == ".*" || patterns_.count(p)) continue;
    auto re = std::make_unique<RE2>(p, PatternOptions());
    if (!re->ok()) {  // The embedded model is part of the build: a bug, not input.
      std::fprintf(stderr, "service model pattern '%s' (shape %s) does not compile in RE2: %s\n",
                   p.c_str(), name.c_str(), re->error().c_str());
      std::abort();
    }
    patterns_.emplace(p, std::move(re));
  }
}

bool ServiceModel::HasOperation(std::string_view op) const { return Operation(op) != nullptr; }

const nlohmann::json* ServiceModel::Operation(std::string_view op) const {
  const auto& ops = model_["operations"];
  auto it = ops.find(std::string(op));
  return it == ops.end() ? nullptr : &*it;
}

const nlohmann::json* ServiceModel::Shape(std::string_view name) const {
  const auto& shapes = model_["shapes"];
  auto it = shapes.find(std::string(name));
  return it == shapes.end() ? nullptr : &*it;
}

std::vector<std::string> ServiceModel::OperationNames() const {
  std::vector<std::string> names;
  for (const auto& [name, op] : model_["operations"].items()) names.push_back(name);
  return names;
}

Status ServiceModel::ValidateInput(std::string_view op, const nlohmann::json& input) const {
  const nlohmann::json* o = Operation(op);
  if (o == nullptr) return InvalidArgument("unknown operation " + std::string(op));
  if (!o->contains("input")) return Status::Ok();
  return ValidateShape((*o)["input"]["shape"].get<std::string>(), input, "");
}

Status ServiceModel::ValidateShape(std::string_view shape, const nlohmann::json& value,
                                   const std::string& path) const {
  std::vector<std::string> errors;
  Walk(std::string(shape), value, path, &errors);
  if (errors.empty()) return Status::Ok();
  std::string msg =
      std::to_string(errors.size()) +
      (errors.size() == 1 ? " validation error detected: " : " validation errors detected: ");
  for (size_t i = 0; i < errors.size() && i < kMaxListedErrors; ++i) {
    if (i > 0) msg += "; ";
    msg += errors[i];
  }
  if (errors.size() > kMaxListedErrors) {
    msg += "; and " + std::to_string(errors.size() - kMaxListedErrors) + " more";
  }
  return InvalidArgument(msg);
}

void ServiceModel::Walk(const std::string& shape_name, const nlohmann::json& value,
                        const std::string& path, std::vector<std::string>* errors) const {
  const nlohmann::json* shape = Shape(shape_name);
  if (shape == nullptr) return;
  const std::string type = (*shape)["type"].get<std::string>();
  const std::string where = path.empty() ? "input" : path;
  auto min = shape->contains("min") ? (*shape)["min"].get<double>() : -1.0;
  auto max = shape->contains("max") ? (*shape)["max"].get<double>() : -1.0;

  if (type == "structure") {
    if (!value.is_object()) {
      errors->push_back(Fail(value, where, "Member must be a JSON object"));
      return;
    }
    if (shape->contains("required")) {
      for (const auto& req : (*shape)["required"]) {
        const std::string r = req.get<std::string>();
        if (!value.contains(r) || value[r].is_null()) {
          errors->push_back("Value null at '" + PathText(Join(path, r)) +
                            "' failed to satisfy constraint: Member must not be null");
        }
      }
    }
    const auto& members = (*shape)["members"];
    for (const auto& [name, member_value] : value.items()) {
      auto m = members.find(name);
      if (m == members.end() || member_value.is_null()) continue;  // Unknown members are ignored.
      Walk((*m)["shape"].get<std::string>(), member_value, Join(path, name), errors);
    }
    return;
  }
  if (type == "list") {
    if (!value.is_array()) {
      errors->push_back(Fail(value, where, "Member must be a JSON array"));
      return;
    }
    CheckBounds(value, where, static_cast<double>(value.size()), min, max, "length", errors);
    const std::string member_shape = (*shape)["member"]["shape"].get<std::string>();
    for (size_t i = 0; i < value.size(); ++i) {
      Walk(member_shape, value[i], Join(path, std::to_string(i + 1) + ".member"), errors);
    }
    return;
  }
  if (type == "map") {
    if (!value.is_object()) {
      errors->push_back(Fail(value, where, "Member must be a JSON object"));
      return;
    }
    CheckBounds(value, where, static_cast<double>(value.size()), min, max, "length", errors);
    const std::string key_shape = (*shape)["key"]["shape"].get<std::string>();
    const std::string value_shape = (*shape)["value"]["shape"].get<std::string>();
    for (const auto& [k, v] : value.items()) {
      Walk(key_shape, nlohmann::json(k), Join(path, k) + "(key)", errors);
      Walk(value_shape, v, Join(path, k), errors);
    }
    return;
  }
  if (type == "string") {
    if (!value.is_string()) {
      errors->push_back(Fail(value, where, "Member must be a string"));
      return;
    }
    const std::string& s = value.get_ref<const std::string&>();
    const bool length_ok =
        CheckBounds(value, where, static_cast<double>(CodePoints(s)), min, max, "length", errors);
    if (shape->contains("enum")) {
      bool found = false;
      std::string set;
      for (const auto& e : (*shape)["enum"]) {
        if (!set.empty()) set += ", ";
        set += e.get<std::string>();
        if (e.get<std::string>() == s) found = true;
      }
      if (!found)
        errors->push_back(Fail(value, where, "Member must satisfy enum value set: [" + set + "]"));
    }
    if (length_ok && shape->contains("pattern")) {
      auto it = patterns_.find((*shape)["pattern"].get<std::string>());
      if (it != patterns_.end() && !RE2::FullMatch(s, *it->second)) {
        errors->push_back(
            Fail(value, where, "Member must satisfy regular expression pattern: " + it->first));
      }
    }
    return;
  }
  if (type == "integer" || type == "long") {
    if (!value.is_number_integer()) {
      errors->push_back(Fail(value, where, "Member must be an integer"));
      return;
    }
    // Smithy's integer is 32 bits and long 64: a larger value is refused here,
    // not wrapped by the operation that reads it (GetPipeline's version
    // 4294967297 once read as 1).
    const bool is_long = type == "long";
    const bool fits = value.is_number_unsigned()
                          ? value.get<std::uint64_t>() <=
                                (is_long ? std::uint64_t{INT64_MAX} : std::uint64_t{INT32_MAX})
                          : is_long || (value.get<std::int64_t>() >= INT32_MIN &&
                                        value.get<std::int64_t>() <= INT32_MAX);
    if (!fits) {
      errors->push_back(Fail(value, where,
                             is_long
                                 ? "Member must be a 64-bit integer"
                                 : "Member must be a 32-bit integer (-2147483648 to 2147483647)"));
      return;
    }
    CheckBounds(value, where, value.get<double>(), min, max, "value", errors);
    return;
  }
  if (type == "boolean") {
    if (!value.is_boolean()) errors->push_back(Fail(value, where, "Member must be a boolean"));
    return;
  }
  if (type == "timestamp" || type == "double" || type == "float") {
    if (!value.is_number()) errors->push_back(Fail(value, where, "Member must be a number"));
    return;
  }
  if (type == "blob") {
    if (!value.is_string()) errors->push_back(Fail(value, where, "Member must be a base64 string"));
    return;
  }
}

}  // namespace pw::spec
