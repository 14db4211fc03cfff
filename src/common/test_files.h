#pragma once

// Small file helpers for tests (header-only, not linked into any binary): reading and writing
// whole files. One copy, so the tests of a layer compile as one unity batch.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pw::test_files {

// The whole content of `path` ("" when it cannot be read).
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `content` to `path`, creating its parent directories; mode 0755 when `executable`,
// else 0644.
inline void WriteFile(const std::filesystem::path& path, const std::string& content,
                      bool executable = false) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
  std::filesystem::permissions(
      path, executable ? std::filesystem::perms(0755) : std::filesystem::perms(0644));
}

}  // namespace pw::test_files
