#include "runner/temp_dir.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

namespace {

// The directory's inode flags (FS_IOC_GETFLAGS takes an int-sized value on
// Linux whatever its name says), or false with `why`.
bool DirFlags(int fd, int* flags, std::string* why) {
  if (::ioctl(fd, FS_IOC_GETFLAGS, flags) != 0) {
    *why = std::string("no inode flags here: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace

bool SpreadNewDirectories(const std::string& dir, std::string* why) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *why = "open " + dir + ": " + std::strerror(errno);
    return false;
  }
  int flags = 0;
  bool ok = DirFlags(fd, &flags, why);
  if (ok && (flags & FS_TOPDIR_FL) == 0) {
    flags |= FS_TOPDIR_FL;
    if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) {
      *why = std::string("set the flag: ") + std::strerror(errno);
      ok = false;
    }
  }
  ::close(fd);
  return ok;
}

bool OnExt4WithoutJournal(const std::string& dir) {
  struct statfs sfs {};
  struct stat st {};
  if (::statfs(dir.c_str(), &sfs) != 0 || sfs.f_type != EXT4_SUPER_MAGIC) return false;
  if (::stat(dir.c_str(), &st) != 0) return false;
  // The block device's name, as ext4 names its /sys/fs/ext4 directory.
  std::error_code ec;
  const std::filesystem::path device = std::filesystem::canonical(
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)),
      ec);
  if (ec) return false;
  std::ifstream in("/sys/fs/ext4/" + device.filename().string() + "/journal_task");
  std::string task;
  return std::getline(in, task) && task == "<none>";
}

bool SpreadsNewDirectories(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  int flags = 0;
  std::string why;
  const bool ok = DirFlags(fd, &flags, &why);
  ::close(fd);
  return ok && (flags & FS_TOPDIR_FL) != 0;
}

}  // namespace pw::runner
