#include "cli/output.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace pw::cli {

std::string IsoTimestamp(double epoch_seconds) {
  double whole = std::floor(epoch_seconds);
  // Python rounds the fraction to microseconds, half to even.
  auto micros = static_cast<int64_t>(std::nearbyint((epoch_seconds - whole) * 1e6));
  auto secs = static_cast<int64_t>(whole);
  if (micros >= 1000000) {
    secs += 1;
    micros -= 1000000;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out = buf;
  if (micros != 0) {
    std::snprintf(buf, sizeof(buf), ".%06lld", static_cast<long long>(micros));
    out += buf;
  }
  return out + "+00:00";
}

OJson ShapeOutput(const OJson& body, std::string_view shape_name) {
  const OJson* shape = FindShape(shape_name);
  if (shape == nullptr) return body;
  const std::string type = shape->value("type", "");
  if (type == "structure") {
    if (!body.is_object()) return body;
    OJson out = OJson::object();
    for (const auto& [name, member] : (*shape)["members"].items()) {
      auto it = body.find(name);
      if (it == body.end() || it->is_null()) continue;
      out[name] = ShapeOutput(*it, member.value("shape", ""));
    }
    return out;
  }
  if (type == "list") {
    if (!body.is_array()) return body;
    const std::string member = (*shape)["member"].value("shape", "");
    OJson out = OJson::array();
    for (const auto& v : body) out.push_back(ShapeOutput(v, member));
    return out;
  }
  if (type == "map") {
    if (!body.is_object()) return body;
    const std::string value_shape = (*shape)["value"].value("shape", "");
    OJson out = OJson::object();
    for (const auto& [k, v] : body.items()) {
      if (!v.is_null()) out[k] = ShapeOutput(v, value_shape);
    }
    return out;
  }
  if (type == "timestamp" && body.is_number()) return IsoTimestamp(body.get<double>());
  return body;
}

std::string RenderJson(const OJson& response) {
  if (response.is_object() && response.empty()) return "";
  return response.dump(4, ' ', false, OJson::error_handler_t::replace) + "\n";
}

}  // namespace pw::cli
