#include "cli/param_validator.h"

namespace pw::cli {

namespace {

std::string PythonRepr(const OJson& value);

std::string PythonStringRepr(const std::string& s) {
  // Python prefers single quotes unless the string holds one and no double quote.
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  out += q;
  return out;
}

std::string PythonRepr(const OJson& value) {
  if (value.is_string()) return PythonStringRepr(value.get<std::string>());
  return PythonStr(value);
}

std::string PythonTypeName(const OJson& value) {
  switch (value.type()) {
    case OJson::value_t::string:
      return "<class 'str'>";
    case OJson::value_t::boolean:
      return "<class 'bool'>";
    case OJson::value_t::number_integer:
    case OJson::value_t::number_unsigned:
      return "<class 'int'>";
    case OJson::value_t::number_float:
      return "<class 'float'>";
    case OJson::value_t::object:
      return "<class 'dict'>";
    case OJson::value_t::array:
      return "<class 'list'>";
    default:
      return "<class 'NoneType'>";
  }
}

// Python's int includes bool.
bool IsPythonInt(const OJson& v) { return v.is_number_integer() || v.is_boolean(); }

std::string DisplayName(const std::string& name) {
  if (name.empty()) return "input";
  if (name[0] == '.') return name.substr(1);
  return name;
}

class Validator {
 public:
  void Validate(const OJson& value, const std::string& shape_name, const std::string& name) {
    const OJson* shape = FindShape(shape_name);
    if (shape == nullptr) return;
    const std::string type = shape->value("type", "");
    if (type == "structure") {
      if (!value.is_object()) return InvalidType(value, name, {"<class 'dict'>"});
      ValidateStructure(value, *shape, name);
    } else if (type == "list") {
      if (!value.is_array()) return InvalidType(value, name, {"<class 'list'>", "<class 'tuple'>"});
      RangeCheck(name, static_cast<double>(value.size()), *shape, "Invalid length", "length");
      const std::string member = (*shape)["member"].value("shape", "");
      for (size_t i = 0; i < value.size(); ++i) {
        Validate(value[i], member, name + "[" + std::to_string(i) + "]");
      }
    } else if (type == "map") {
      if (!value.is_object()) return InvalidType(value, name, {"<class 'dict'>"});
      const std::string key_shape = (*shape)["key"].value("shape", "");
      const std::string value_shape = (*shape)["value"].value("shape", "");
      for (const auto& [k, v] : value.items()) {
        Validate(OJson(k), key_shape, name + " (key: " + k + ")");
        Validate(v, value_shape, name + "." + k);
      }
    } else if (type == "string") {
      if (!value.is_string()) return InvalidType(value, name, {"<class 'str'>"});
      size_t n = 0;  // Python len() counts code points.
      for (unsigned char c : value.get_ref<const std::string&>()) {
        if ((c & 0xC0) != 0x80) ++n;
      }
      RangeCheck(name, static_cast<double>(n), *shape, "Invalid length", "length");
    } else if (type == "integer" || type == "long") {
      if (!IsPythonInt(value)) return InvalidType(value, name, {"<class 'int'>"});
      RangeCheck(name, value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>(),
                 *shape, "Invalid value", "value");
    } else if (type == "boolean") {
      if (!value.is_boolean()) return InvalidType(value, name, {"<class 'bool'>"});
    } else if (type == "double" || type == "float") {
      if (!value.is_number() && !value.is_boolean()) {
        return InvalidType(value, name,
                           {"<class 'float'>", "<class 'decimal.Decimal'>", "<class 'int'>"});
      }
    } else if (type == "timestamp") {
      if (!value.is_number() && !value.is_string()) {
        return InvalidType(value, name, {"<class 'datetime.datetime'>", "timestamp-string"});
      }
    }
  }

  std::vector<std::string> TakeErrors() { return std::move(errors_); }

 private:
  void ValidateStructure(const OJson& value, const OJson& shape, const std::string& name) {
    if (shape.contains("required")) {
      for (const auto& r : shape["required"]) {
        const std::string req = r.get<std::string>();
        if (!value.contains(req)) {
          errors_.push_back("Missing required parameter in " + DisplayName(name) + ": \"" + req +
                            "\"");
        }
      }
    }
    const OJson& members = shape["members"];
    for (const auto& [k, v] : value.items()) {
      if (members.contains(k)) continue;
      std::string valid;
      for (const auto& [m, unused] : members.items()) {
        if (!valid.empty()) valid += ", ";
        valid += m;
      }
      errors_.push_back("Unknown parameter in " + DisplayName(name) + ": \"" + k +
                        "\", must be one of: " + valid);
    }
    for (const auto& [k, v] : value.items()) {
      auto m = members.find(k);
      if (m == members.end()) continue;
      Validate(v, m->value("shape", ""), name + "." + k);
    }
  }

  void InvalidType(const OJson& value, const std::string& name,
                   const std::vector<std::string>& valid) {
    std::string joined;
    for (const auto& t : valid) {
      if (!joined.empty()) joined += ", ";
      joined += t;
    }
    errors_.push_back("Invalid type for parameter " + DisplayName(name) +
                      ", value: " + PythonStr(value) + ", type: " + PythonTypeName(value) +
                      ", valid types: " + joined);
  }

  void RangeCheck(const std::string& name, double value, const OJson& shape, const char* what,
                  const char* unit) {
    if (!shape.contains("min") || !shape["min"].is_number()) return;
    double min = shape["min"].get<double>();
    if (value >= min) return;
    errors_.push_back(std::string(what) + " for parameter " + DisplayName(name) +
                      ", value: " + std::to_string(static_cast<long long>(value)) + ", valid min " +
                      unit + ": " + std::to_string(static_cast<long long>(min)));
  }

  std::vector<std::string> errors_;
};

}  // namespace

std::string PythonStr(const OJson& value) {
  switch (value.type()) {
    case OJson::value_t::string:
      return value.get<std::string>();
    case OJson::value_t::boolean:
      return value.get<bool>() ? "True" : "False";
    case OJson::value_t::null:
    case OJson::value_t::discarded:
      return "None";
    case OJson::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : value.items()) {
        if (!first) out += ", ";
        first = false;
        out += PythonStringRepr(k) + ": " + PythonRepr(v);
      }
      return out + "}";
    }
    case OJson::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ", ";
        out += PythonRepr(value[i]);
      }
      return out + "]";
    }
    default:
      return value.dump();
  }
}

std::vector<std::string> ValidateParams(const OJson& params, std::string_view shape_name) {
  Validator v;
  v.Validate(params, std::string(shape_name), "");
  return v.TakeErrors();
}

}  // namespace pw::cli
