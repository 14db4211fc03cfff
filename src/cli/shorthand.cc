#include "cli/shorthand.h"

#include <cctype>
#include <cstdlib>

namespace pw::cli {

namespace {

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
         c == '#' || c == '/' || c == ':';
}

class ShorthandParser {
 public:
  explicit ShorthandParser(std::string_view text) : text_(text) {}

  Result<OJson> ParseParameter() {
    OJson out = OJson::object();
    PW_RETURN_IF_ERROR(ParseKeyVals(&out, '\0'));
    if (pos_ != text_.size()) return Expected("EOF");
    return out;
  }

 private:
  // keyval *("," keyval), stopping before `end` (or at EOF when end is '\0').
  Status ParseKeyVals(OJson* out, char end) {
    while (true) {
      SkipSpaces();
      std::string key;
      while (pos_ < text_.size() && IsKeyChar(text_[pos_])) key += text_[pos_++];
      SkipSpaces();
      if (key.empty() || pos_ >= text_.size() || text_[pos_] != '=') return Expected("=");
      ++pos_;
      OJson value;
      PW_RETURN_IF_ERROR(ParseValues(&value, end));
      (*out)[key] = std::move(value);
      SkipSpaces();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return Status::Ok();
    }
  }

  // values = explicit-list / hash-literal / csv-value.
  Status ParseValues(OJson* out, char end) {
    SkipSpaces();
    if (pos_ < text_.size() && text_[pos_] == '[') {
      ++pos_;
      *out = OJson::array();
      SkipSpaces();
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Status::Ok();
      }
      while (true) {
        OJson item;
        SkipSpaces();
        if (pos_ < text_.size() && text_[pos_] == '{') {
          ++pos_;
          item = OJson::object();
          PW_RETURN_IF_ERROR(ParseKeyVals(&item, '}'));
          if (pos_ >= text_.size() || text_[pos_] != '}') return Expected("}");
          ++pos_;
        } else {
          PW_ASSIGN_OR_RETURN(std::string s, ParseValue(']'));
          item = s;
        }
        out->push_back(std::move(item));
        SkipSpaces();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_.size() && text_[pos_] == ']') {
          ++pos_;
          return Status::Ok();
        }
        return Expected("]");
      }
    }
    if (pos_ < text_.size() && text_[pos_] == '{') {
      ++pos_;
      *out = OJson::object();
      PW_RETURN_IF_ERROR(ParseKeyVals(out, '}'));
      if (pos_ >= text_.size() || text_[pos_] != '}') return Expected("}");
      ++pos_;
      return Status::Ok();
    }
    // csv-value: first value, then more values while the next item is not "key=".
    PW_ASSIGN_OR_RETURN(std::string first, ParseValue(end));
    std::vector<std::string> values = {first};
    while (pos_ < text_.size() && text_[pos_] == ',' && !NextIsKeyVal(pos_ + 1)) {
      ++pos_;
      PW_ASSIGN_OR_RETURN(std::string more, ParseValue(end));
      values.push_back(more);
    }
    if (values.size() == 1) {
      *out = values[0];
    } else {
      *out = OJson::array();
      for (auto& v : values) out->push_back(v);
    }
    return Status::Ok();
  }

  bool NextIsKeyVal(size_t p) const {
    while (p < text_.size() && text_[p] == ' ') ++p;
    size_t start = p;
    while (p < text_.size() && IsKeyChar(text_[p])) ++p;
    if (p == start) return false;
    while (p < text_.size() && text_[p] == ' ') ++p;
    return p < text_.size() && text_[p] == '=';
  }

  // A quoted or bare value; bare values end at ',' or `end` and are trimmed.
  Result<std::string> ParseValue(char end) {
    SkipSpaces();
    if (pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"')) {
      char q = text_[pos_++];
      std::string s;
      while (pos_ < text_.size() && text_[pos_] != q) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        s += text_[pos_++];
      }
      if (pos_ >= text_.size()) return Expected(std::string(1, q));
      ++pos_;
      SkipSpaces();
      return s;
    }
    std::string s;
    while (pos_ < text_.size() && text_[pos_] != ',' && (end == '\0' || text_[pos_] != end)) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      s += text_[pos_++];
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  void SkipSpaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }

  Status Expected(const std::string& what) const {
    std::string received = pos_ < text_.size() ? std::string(1, text_[pos_]) : "EOF";
    return InvalidArgument("Expected: '" + what + "', received: '" + received + "' for input:\n" +
                               std::string(text_) + "\n" + std::string(pos_, ' ') + "^",
                           "");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

OJson TypeScalar(const OJson& v, const std::string& type) {
  if (!v.is_string()) return v;
  const std::string& s = v.get_ref<const std::string&>();
  if (type == "integer" || type == "long") {
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end != nullptr && *end == '\0') return n;
    return v;
  }
  if (type == "double" || type == "float") {
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end != nullptr && *end == '\0') return d;
    return v;
  }
  if (type == "boolean") {
    std::string lower;
    for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower == "true";
  }
  return v;
}

}  // namespace

Result<OJson> ParseShorthand(std::string_view text) {
  return ShorthandParser(text).ParseParameter();
}

OJson TypeShorthand(const OJson& parsed, std::string_view shape_name) {
  const OJson* shape = FindShape(shape_name);
  if (shape == nullptr) return parsed;
  const std::string type = shape->value("type", "");
  if (type == "structure") {
    if (!parsed.is_object()) return parsed;
    OJson out = OJson::object();
    const OJson& members = (*shape)["members"];
    for (const auto& [k, v] : parsed.items()) {
      auto m = members.find(k);
      out[k] = m == members.end() ? v : TypeShorthand(v, m->value("shape", ""));
    }
    return out;
  }
  if (type == "list") {
    const std::string member = (*shape)["member"].value("shape", "");
    OJson list = parsed.is_array() ? parsed : OJson::array({parsed});
    OJson out = OJson::array();
    for (const auto& v : list) out.push_back(TypeShorthand(v, member));
    return out;
  }
  if (type == "map") {
    if (!parsed.is_object()) return parsed;
    const std::string value_shape = (*shape)["value"].value("shape", "");
    OJson out = OJson::object();
    for (const auto& [k, v] : parsed.items()) out[k] = TypeShorthand(v, value_shape);
    return out;
  }
  return TypeScalar(parsed, type);
}

}  // namespace pw::cli
