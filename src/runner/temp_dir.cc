#include "runner/temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

namespace pw::runner {

Result<ScopedTempDir> ScopedTempDir::Create(std::string_view prefix) {
  if (prefix.find('/') != std::string_view::npos) {
    return InvalidArgument("temp dir prefix must not contain '/'", "");
  }
  const char* base = std::getenv("TMPDIR");
  std::string templ = (base != nullptr && base[0] != '\0') ? base : "/tmp";
  while (templ.size() > 1 && templ.back() == '/') templ.pop_back();
  templ += "/";
  templ += prefix;
  templ += "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return Internal("mkdtemp " + templ + ": " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(buf.data(), ec);
  return ScopedTempDir(ec ? std::string(buf.data()) : abs.string());
}

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())) {}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

ScopedTempDir::~ScopedTempDir() { Remove(); }

void ScopedTempDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;  // Best effort: a destructor has no one to report to.
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

}  // namespace pw::runner
