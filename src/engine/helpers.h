#pragma once

// Small helpers shared by the engine's parsers, validation and executors (one copy each, so the
// engine's files also compile as one unity batch). Not part of the engine's interface.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "core/pipeline.h"

namespace pw::engine {

// `items` joined with `sep` between them.
inline std::string Join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Equal, ignoring ASCII case.
inline bool SameText(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Whether a value refers to a variable (#{…}), resolved only when the action runs.
inline bool HasVariable(const std::string& v) { return v.find("#{") != std::string::npos; }

// The action's configuration value for `key`; `def` when it is not set.
inline std::string ConfigValue(const core::ActionDecl& a, const char* key,
                               const std::string& def = "") {
  auto it = a.configuration.find(key);
  return it == a.configuration.end() ? def : it->second;
}

}  // namespace pw::engine
