#include "runner/artifact_store.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/ids.h"
#include "common/status.h"
#include "runner/fd.h"

namespace pw::runner {
namespace {

// Seconds since the file's last modification, by the wall clock.
double MtimeAgeSeconds(const struct stat& st) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec - st.st_mtim.tv_sec) +
         static_cast<double>(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

namespace fs = std::filesystem;

// Fixed entry mtime (1980-01-01, the DOS epoch) so equal content zips to
// equal bytes.
constexpr time_t kZipMtime = 315532800;
// The End Of Central Directory record of an archive with no entries; libzip
// deletes rather than writes an empty archive.
constexpr char kEmptyZip[22] = {'P', 'K', 5, 6};
// Read/write buffer size.
constexpr size_t kChunkBytes = size_t{64} * 1024;
// Symlink hops allowed while checking where a link resolves (Linux's limit).
constexpr int kMaxLinkHops = 40;

// Streaming SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(std::string_view data) { EVP_DigestUpdate(ctx_.get(), data.data(), data.size()); }
  void UpdateU64(uint64_t v) {
    std::array<char, 8> le;
    for (char& c : le) {
      c = static_cast<char>(v & 0xff);
      v >>= 8;
    }
    Update(std::string_view(le.data(), le.size()));
  }
  std::string HexDigest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md;
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md.data(), &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex += kHex[md[i] >> 4];
      hex += kHex[md[i] & 0xf];
    }
    return hex;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("write " + path + ": " + ErrnoText());
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

enum class Kind { kFile, kExecutable, kSymlink };

struct Entry {
  std::string relative;  // '/'-separated, no leading "./".
  Kind kind = Kind::kFile;
  std::string absolute;  // Files: where to read the content.
  std::string target;    // Links: the link text.
};

// A long PutDirectory stops when `*cancel` becomes true (the server stopping).
bool Cancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}
Status CancelledStatus() {
  return Unavailable("stopped: the server is shutting down; the action can be retried");
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

bool MatchSegments(const std::vector<std::string_view>& pattern, size_t pi,
                   const std::vector<std::string_view>& path, size_t si) {
  if (pi == pattern.size()) return si == path.size();
  if (pattern[pi] == "**") {
    for (size_t k = si; k <= path.size(); ++k) {
      if (MatchSegments(pattern, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (si == path.size()) return false;
  return fnmatch(std::string(pattern[pi]).c_str(), std::string(path[si]).c_str(), 0) == 0 &&
         MatchSegments(pattern, pi + 1, path, si + 1);
}

// With `limits`, a directory beyond the entry or unpacked-size limit is
// refused while it is listed, before a byte is read (a snapshot of a huge
// tree then costs a walk, not a hash of all of it).
Result<std::vector<Entry>> ListEntries(const std::string& dir,
                                       const std::vector<std::string>& globs,
                                       const ArtifactLimits* limits = nullptr,
                                       const std::atomic<bool>* cancel = nullptr) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("artifact source is not a directory: " + dir);
  std::vector<Entry> entries;
  uint64_t bytes = 0;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (Cancelled(cancel)) return CancelledStatus();
    const fs::directory_entry& de = *it;
    struct stat st {};  // One lstat: the kind, the mode and the size the limits count.
    if (::lstat(de.path().c_str(), &st) != 0) {
      ec = std::error_code(errno, std::generic_category());
      break;
    }
    Entry entry;
    entry.relative = de.path().lexically_relative(dir).generic_string();
    if (S_ISLNK(st.st_mode)) {
      entry.kind = Kind::kSymlink;
      entry.target = fs::read_symlink(de.path(), ec).string();
      if (ec) break;
    } else if (S_ISREG(st.st_mode)) {
      entry.kind = (st.st_mode & S_IXUSR) != 0 ? Kind::kExecutable : Kind::kFile;
      entry.absolute = de.path().string();
    } else {
      continue;  // Directories are implied by their files; devices, fifos, sockets are skipped.
    }
    if (!globs.empty() && std::none_of(globs.begin(), globs.end(), [&](const std::string& g) {
          return MatchesGlob(g, entry.relative);
        })) {
      continue;
    }
    if (limits != nullptr) {
      if (entries.size() >= limits->max_entries) {
        return InvalidArgument("the directory has more than " +
                                   std::to_string(limits->max_entries) +
                                   " entries (the limit set by serve --max-artifact-entries)",
                               "");
      }
      if (entry.kind != Kind::kSymlink) {
        bytes += static_cast<uint64_t>(st.st_size);
        if (bytes > limits->max_unpacked_bytes) {
          return InvalidArgument("the directory holds more than " +
                                     std::to_string(limits->max_unpacked_bytes) +
                                     " bytes (the limit set by serve --max-unpacked-bytes)",
                                 "");
        }
      }
    }
    entries.push_back(std::move(entry));
  }
  if (ec) return Internal("listing " + dir + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.relative < b.relative; });
  return entries;
}

// SHA-256 over the entries, each as: kind byte, path, NUL, 64-bit length, content.
Result<std::string> HashEntries(const std::vector<Entry>& entries,
                                const std::atomic<bool>* cancel = nullptr) {
  Sha256 sha;
  std::vector<char> buf(kChunkBytes);
  for (const Entry& entry : entries) {
    if (Cancelled(cancel)) return CancelledStatus();
    sha.Update(entry.kind == Kind::kSymlink ? "l" : entry.kind == Kind::kExecutable ? "x" : "f");
    sha.Update(entry.relative);
    sha.Update(std::string_view("\0", 1));
    if (entry.kind == Kind::kSymlink) {
      sha.UpdateU64(entry.target.size());
      sha.Update(entry.target);
      continue;
    }
    Fd fd(open(entry.absolute.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (fd.get() < 0 || fstat(fd.get(), &st) != 0) {
      return Internal("open " + entry.absolute + ": " + ErrnoText());
    }
    sha.UpdateU64(static_cast<uint64_t>(st.st_size));
    uint64_t total = 0;
    for (;;) {
      ssize_t n = read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Internal("read " + entry.absolute + ": " + ErrnoText());
      if (n == 0) break;
      if (Cancelled(cancel)) return CancelledStatus();
      sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
      total += static_cast<uint64_t>(n);
    }
    if (total != static_cast<uint64_t>(st.st_size)) {
      return Internal("file changed while hashing: " + entry.absolute);
    }
  }
  return sha.HexDigest();
}

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

Status WriteZip(const std::vector<Entry>& entries, const std::string& path,
                const std::atomic<bool>* cancel = nullptr) {
  if (entries.empty()) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return Internal("create " + path + ": " + ErrnoText());
    return WriteAll(fd.get(), kEmptyZip, sizeof kEmptyZip, path);
  }
  int error = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (zip == nullptr) return Internal("zip_open " + path + ": " + ZipErrorText(error));
  if (cancel != nullptr) {  // zip_close reads and compresses every source: let it stop.
    zip_register_cancel_callback_with_state(
        zip,
        [](zip_t*, void* flag) {
          return Cancelled(static_cast<const std::atomic<bool>*>(flag)) ? 1 : 0;
        },
        nullptr, const_cast<std::atomic<bool>*>(cancel));
  }
  for (const Entry& entry : entries) {
    zip_source_t* source = entry.kind == Kind::kSymlink
                               ? zip_source_buffer(zip, entry.target.data(), entry.target.size(), 0)
                               : zip_source_file(zip, entry.absolute.c_str(), 0, -1);
    zip_int64_t index = -1;
    if (source != nullptr) {
      index = zip_file_add(zip, entry.relative.c_str(), source, ZIP_FL_ENC_UTF_8);
      if (index < 0) zip_source_free(source);
    }
    mode_t mode = entry.kind == Kind::kSymlink      ? (S_IFLNK | 0777)
                  : entry.kind == Kind::kExecutable ? (S_IFREG | 0755)
                                                    : (S_IFREG | 0644);
    const auto i = static_cast<zip_uint64_t>(index);
    if (index < 0 ||
        zip_file_set_external_attributes(zip, i, 0, ZIP_OPSYS_UNIX,
                                         static_cast<zip_uint32_t>(mode) << 16) != 0 ||
        zip_file_set_mtime(zip, i, kZipMtime, 0) != 0) {
      Status status = Internal("zip " + entry.relative + ": " + zip_strerror(zip));
      zip_discard(zip);
      return status;
    }
  }
  if (zip_close(zip) != 0) {  // Reads the sources and writes the archive now.
    Status status = Cancelled(cancel) ? CancelledStatus()
                                      : Internal("writing zip " + path + ": " + zip_strerror(zip));
    zip_discard(zip);
    return status;
  }
  return Status::Ok();
}

// A zip entry as Extract sees it.
struct ZipEntry {
  zip_uint64_t index = 0;
  std::string name;  // Normalised: no trailing '/'.
  bool directory = false;
  bool symlink = false;
  bool executable = false;
  std::string link_target;  // For links.
};

std::string Join(const std::vector<std::string>& parts, size_t count) {
  std::string joined;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) joined += '/';
    joined += parts[i];
  }
  return joined;
}

// Whether following link `link` (relative path) with text `target` ends inside
// the extraction root, resolving ".." physically through the archive's own
// links as the kernel will once they exist.
bool LinkStaysInside(const std::string& link, const std::string& target,
                     const std::map<std::string, std::string>& links) {
  if (target.empty() || target[0] == '/') return false;
  std::vector<std::string> resolved;  // Real directories from the root.
  for (std::string_view part : Split(link)) resolved.emplace_back(part);
  resolved.pop_back();  // The link's directory; entries under links are rejected earlier.
  std::vector<std::string> pending;  // Components still to walk, last = next.
  for (std::string_view part : Split(target)) pending.emplace_back(part);
  std::reverse(pending.begin(), pending.end());
  int hops = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (resolved.empty()) return false;
      resolved.pop_back();
      continue;
    }
    resolved.push_back(std::move(part));
    auto it = links.find(Join(resolved, resolved.size()));
    if (it == links.end()) continue;
    if (++hops > kMaxLinkHops || it->second.empty() || it->second[0] == '/') return false;
    resolved.pop_back();
    std::vector<std::string_view> more = Split(it->second);
    for (auto p = more.rbegin(); p != more.rend(); ++p) pending.emplace_back(*p);
  }
  return true;
}

Result<std::vector<ZipEntry>> CheckedEntries(zip_t* zip) {
  std::vector<ZipEntry> entries;
  std::map<std::string, std::string> links;  // name -> target
  const zip_int64_t count = zip_get_num_entries(zip, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    ZipEntry entry;
    entry.index = static_cast<zip_uint64_t>(i);
    const char* raw = zip_get_name(zip, entry.index, ZIP_FL_ENC_GUESS);
    if (raw == nullptr) return InvalidArgument("unreadable zip entry name", "");
    std::string name = raw;
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    zip_file_get_external_attributes(zip, entry.index, 0, &opsys, &attributes);
    const mode_t mode = opsys == ZIP_OPSYS_UNIX ? static_cast<mode_t>(attributes >> 16) : 0;
    entry.directory = S_ISDIR(mode) || (!name.empty() && name.back() == '/');
    entry.symlink = !entry.directory && S_ISLNK(mode);
    entry.executable = (mode & 0111) != 0;
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (name.empty() || name[0] == '/') {
      return InvalidArgument("zip entry with an absolute or empty path: '" + std::string(raw) + "'",
                             "");
    }
    for (std::string_view part : Split(name)) {
      if (part == ".." || part == "." || part.empty()) {
        return InvalidArgument("zip entry path escapes or is not normalised: '" + name + "'", "");
      }
    }
    entry.name = std::move(name);
    if (entry.symlink) {
      zip_stat_t st;
      if (zip_stat_index(zip, entry.index, 0, &st) != 0 || st.size > 4096) {
        return InvalidArgument("bad symbolic link entry: " + entry.name, "");
      }
      std::string target(st.size, '\0');
      zip_file_t* file = zip_fopen_index(zip, entry.index, 0);
      bool read_ok = file != nullptr &&
                     zip_fread(file, target.data(), st.size) == static_cast<zip_int64_t>(st.size);
      if (file != nullptr) zip_fclose(file);
      if (!read_ok) return InvalidArgument("unreadable symbolic link entry: " + entry.name, "");
      links[entry.name] = target;
      entry.link_target = std::move(target);
    }
    entries.push_back(std::move(entry));
  }
  // Nothing may be written below a link, and every link must stay inside.
  for (const ZipEntry& entry : entries) {
    std::vector<std::string_view> parts = Split(entry.name);
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += (i > 0 ? "/" : "") + std::string(parts[i]);
      if (links.count(prefix) > 0) {
        return InvalidArgument("zip entry below a symbolic link: " + entry.name, "");
      }
    }
  }
  for (const auto& [name, target] : links) {
    if (!LinkStaysInside(name, target, links)) {
      return InvalidArgument("symbolic link points outside the artifact: " + name + " -> " + target,
                             "");
    }
  }
  return entries;
}

Status UnpackedLimit(const ArtifactLimits& limits) {
  return InvalidArgument("the artifact unpacks to more than " +
                             std::to_string(limits.max_unpacked_bytes) +
                             " bytes (the limit set by serve --max-unpacked-bytes)",
                         "");
}

Status CheckSize(uint64_t size, const ArtifactLimits& limits) {
  if (size == 0) return InvalidArgument("the artifact is empty (0 bytes), not a zip archive", "");
  if (size > limits.max_artifact_bytes) {
    return InvalidArgument("the artifact is " + std::to_string(size) + " bytes, more than " +
                               std::to_string(limits.max_artifact_bytes) +
                               " (the limit set by serve --max-artifact-bytes)",
                           "");
  }
  return Status::Ok();
}

Status CheckEntryCount(zip_t* zip, const ArtifactLimits& limits) {
  const zip_int64_t count = zip_get_num_entries(zip, 0);
  if (count >= 0 && static_cast<uint64_t>(count) > limits.max_entries) {
    return InvalidArgument("the artifact has " + std::to_string(count) + " entries, more than " +
                               std::to_string(limits.max_entries) +
                               " (the limit set by serve --max-artifact-entries)",
                           "");
  }
  return Status::Ok();
}

// Decompresses one entry chunk by chunk into `sink`, counting the bytes
// actually produced against `*remaining` (the zip's declared sizes are not
// trusted): kInvalidArgument for a corrupt entry or past the unpacked limit.
template <typename Sink>
Status ReadEntry(zip_t* zip, const ZipEntry& entry, const ArtifactLimits& limits,
                 uint64_t* remaining, Sink sink) {
  zip_file_t* file = zip_fopen_index(zip, entry.index, 0);
  if (file == nullptr) {
    return InvalidArgument("cannot read zip entry " + entry.name + ": " + zip_strerror(zip), "");
  }
  std::vector<char> buf(kChunkBytes);
  Status status;
  for (;;) {
    zip_int64_t n = zip_fread(file, buf.data(), buf.size());
    if (n < 0) {
      status = InvalidArgument(
          "corrupt zip entry " + entry.name + ": " + zip_error_strerror(zip_file_get_error(file)),
          "");
      break;
    }
    if (n == 0) break;
    if (static_cast<uint64_t>(n) > *remaining) {
      status = UnpackedLimit(limits);
      break;
    }
    *remaining -= static_cast<uint64_t>(n);
    status = sink(buf.data(), static_cast<size_t>(n));
    if (!status.ok()) break;
  }
  zip_fclose(file);
  return status;
}

// Checks an open archive as ValidateZipFile describes, decompressing every
// entry and counting the bytes produced.
Status CheckArchive(zip_t* zip, const ArtifactLimits& limits) {
  PW_RETURN_IF_ERROR(CheckEntryCount(zip, limits));
  PW_ASSIGN_OR_RETURN(std::vector<ZipEntry> entries, CheckedEntries(zip));
  uint64_t remaining = limits.max_unpacked_bytes;
  for (const ZipEntry& entry : entries) {
    if (entry.directory) continue;
    PW_RETURN_IF_ERROR(ReadEntry(zip, entry, limits, &remaining,
                                 [](const char*, size_t) { return Status::Ok(); }));
  }
  return Status::Ok();
}

// `remaining`: bytes that may still be written; reduced by what is written.
Status ExtractFile(zip_t* zip, const ZipEntry& entry, const fs::path& path,
                   const ArtifactLimits& limits, uint64_t* remaining) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Internal("mkdir " + path.parent_path().string() + ": " + ec.message());
  Fd out(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (out.get() < 0) {
    if (errno == EISDIR || errno == ELOOP || errno == ENOTDIR) {
      return InvalidArgument("conflicting zip entries at " + entry.name, "");
    }
    return Internal("create " + path.string() + ": " + ErrnoText());
  }
  PW_RETURN_IF_ERROR(ReadEntry(zip, entry, limits, remaining, [&](const char* data, size_t n) {
    return WriteAll(out.get(), data, n, path.string());
  }));
  // fchmod rather than open's mode, so the umask cannot drop the bits.
  if (fchmod(out.get(), entry.executable ? 0755 : 0644) != 0) {
    return Internal("chmod " + path.string() + ": " + ErrnoText());
  }
  return Status::Ok();
}

Result<std::string> HashFile(const std::string& path) {
  Sha256 sha;
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Internal("open " + path + ": " + ErrnoText());
  std::array<char, 1 << 16> buf;
  for (;;) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read " + path + ": " + ErrnoText());
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return sha.HexDigest();
}

// Unzips the artifact at `zip_path` (named `revision` in messages) into `dest_dir`.
Status ExtractZip(const std::string& zip_path, const std::string& revision,
                  const std::string& dest_dir, const ArtifactLimits& limits) {
  int error = 0;
  zip_t* zip = zip_open(zip_path.c_str(), ZIP_RDONLY, &error);
  if (zip == nullptr) {
    return Internal("opening artifact " + revision + ": " + ZipErrorText(error));
  }
  std::unique_ptr<zip_t, decltype(&zip_discard)> closer(zip, &zip_discard);
  PW_RETURN_IF_ERROR(CheckEntryCount(zip, limits));
  PW_ASSIGN_OR_RETURN(std::vector<ZipEntry> entries, CheckedEntries(zip));

  uint64_t remaining = limits.max_unpacked_bytes;
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Internal("mkdir " + dest_dir + ": " + ec.message());
  const fs::path root(dest_dir);
  // Links last, so no file is ever written through one.
  for (const ZipEntry& entry : entries) {
    if (entry.symlink) continue;
    const fs::path path = root / entry.name;
    if (entry.directory) {
      fs::create_directories(path, ec);
      if (ec) return InvalidArgument("conflicting zip entries at " + entry.name, "");
      continue;
    }
    PW_RETURN_IF_ERROR(ExtractFile(zip, entry, path, limits, &remaining));
  }
  for (const ZipEntry& entry : entries) {
    if (!entry.symlink) continue;
    const fs::path path = root / entry.name;
    fs::create_directories(path.parent_path(), ec);
    if (symlink(entry.link_target.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) return InvalidArgument("conflicting zip entries at " + entry.name, "");
      return Internal("symlink " + path.string() + ": " + ErrnoText());
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateZipFile(const std::string& path, const ArtifactLimits& limits) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound("cannot read " + path + ": " + ec.message());
  PW_RETURN_IF_ERROR(CheckSize(size, limits));
  int error = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (zip == nullptr) return InvalidArgument("not a zip archive: " + ZipErrorText(error), "");
  std::unique_ptr<zip_t, decltype(&zip_discard)> closer(zip, &zip_discard);
  return CheckArchive(zip, limits);
}

bool IsArtifactRevision(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool MatchesGlob(std::string_view glob, std::string_view path) {
  while (glob.substr(0, 2) == "./") glob.remove_prefix(2);
  std::string pattern(glob);
  if (!pattern.empty() && pattern.back() == '/') pattern += "**";
  return MatchSegments(Split(pattern), 0, Split(path), 0);
}

ArtifactStore::ArtifactStore(std::string root_dir, ArtifactLimits limits,
                             std::shared_ptr<ArtifactMirror> mirror,
                             std::shared_ptr<MirrorLedger> ledger)
    : root_dir_(std::move(root_dir)),
      limits_(limits),
      mirror_(std::move(mirror)),
      ledger_(mirror_ != nullptr ? std::move(ledger) : nullptr) {
  std::error_code ec;
  fs::create_directories(root_dir_, ec);  // Failure shows on the first Put.
}

std::string ArtifactStore::PathOf(const std::string& revision) const {
  return root_dir_ + "/" + revision + ".zip";
}

std::string ArtifactStore::TempPath() const {
  return root_dir_ + "/.tmp-" + RandomHex(16) + ".zip";
}

bool ArtifactStore::Has(const std::string& revision) const {
  std::error_code ec;
  return IsArtifactRevision(revision) && fs::is_regular_file(PathOf(revision), ec);
}

bool ArtifactStore::TouchIfStored(const std::string& revision) {
  if (!IsArtifactRevision(revision)) return false;
  MutexLock lock(sweep_mu_);
  return utimensat(AT_FDCWD, PathOf(revision).c_str(), nullptr, 0) == 0;
}

ArtifactStore::Removal ArtifactStore::RemoveIfOlderThan(const std::string& revision,
                                                        double min_age_seconds) {
  if (!IsArtifactRevision(revision)) return Removal::kAbsent;
  const std::string path = PathOf(revision);
  MutexLock lock(sweep_mu_);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno == ENOENT ? Removal::kAbsent : Removal::kFailed;
  if (MtimeAgeSeconds(st) < min_age_seconds) return Removal::kYoung;
  if (unlink(path.c_str()) != 0) return errno == ENOENT ? Removal::kAbsent : Removal::kFailed;
  return Removal::kRemoved;
}

std::vector<std::string> ArtifactStore::ListOlderThan(double min_age_seconds) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(root_dir_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != 68 || name.compare(64, 4, ".zip") != 0) continue;  // Temporaries too.
    const std::string revision = name.substr(0, 64);
    struct stat st {};
    if (!IsArtifactRevision(revision) || stat(it->path().c_str(), &st) != 0) continue;
    if (MtimeAgeSeconds(st) >= min_age_seconds) out.push_back(revision);
  }
  return out;
}

ArtifactStore::Removal ArtifactStore::RemoveMirrorCopyIfOlderThan(const std::string& revision,
                                                                  double min_age_seconds) {
  if (mirror_ == nullptr || ledger_ == nullptr || !IsArtifactRevision(revision)) {
    return Removal::kAbsent;
  }
  Result<std::string> token = ledger_->BeginRemoval(revision, min_age_seconds);
  if (!token.ok()) return Removal::kFailed;
  if (token->empty()) return Removal::kYoung;
  const double began = MonotonicSeconds();
  ForgetMirrored(revision);  // A Put from now on claims (and waits) again.
  Removal removal = Removal::kRemoved;
  Result<std::optional<EpochSeconds>> modified = mirror_->Modified(revision);
  if (!modified.ok()) {
    removal = Removal::kFailed;
  } else if (!modified->has_value()) {
    removal = Removal::kAbsent;
  } else if (ledger_->Now() - **modified < min_age_seconds) {
    removal = Removal::kYoung;  // Uploaded by a server that does not claim (an older one).
  } else if (MonotonicSeconds() - began > MirrorLedger::kRemovalWindowSeconds) {
    removal = Removal::kFailed;  // Too late: a claim may no longer wait for this mark.
  } else if (!mirror_->Remove(revision).ok()) {
    removal = Removal::kFailed;
  }
  ledger_->EndRemoval(revision, *token);
  return removal;
}

Status ArtifactStore::Commit(const std::string& temp_path, const std::string& revision) {
  std::error_code ec;
  // Same content, same name: nothing to write. Touched, so that retention's
  // sweep, which may have found it unreferenced before this Put's caller
  // records it, sees it as new and keeps it.
  if (TouchIfStored(revision)) {
    fs::remove(temp_path, ec);
    return EnsureMirrored(revision);
  }
  if (mirror_ != nullptr) {
    // Uploaded before it is committed here, so a revision a caller records
    // always exists in the mirror; claimed before it is uploaded, so that no
    // sweep removes the copy before the caller records it.
    const EpochSeconds claimed = ledger_ != nullptr ? ledger_->Now() : 0;
    Status up = ledger_ != nullptr ? ledger_->Claim(revision) : Status::Ok();
    if (up.ok()) up = mirror_->Upload(revision, temp_path);
    if (!up.ok()) {
      fs::remove(temp_path, ec);
      return Status(up.code(), "cannot upload artifact " + revision + " to " + mirror_->Where() +
                                   ": " + up.message());
    }
    MarkMirrored(revision, claimed);
  }
  return Publish(temp_path, revision);
}

Status ArtifactStore::Publish(const std::string& temp_path, const std::string& revision) const {
  std::error_code ec;
  {
    Fd fd(open(temp_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0 || fsync(fd.get()) != 0) {
      Status status = Internal("fsync " + temp_path + ": " + ErrnoText());
      fs::remove(temp_path, ec);
      return status;
    }
  }
  MutexLock lock(sweep_mu_);
  if (rename(temp_path.c_str(), PathOf(revision).c_str()) != 0) {
    Status status = Internal("rename " + temp_path + ": " + ErrnoText());
    fs::remove(temp_path, ec);
    return status;
  }
  return Status::Ok();
}

void ArtifactStore::MarkMirrored(const std::string& revision, EpochSeconds claimed) const {
  MutexLock lock(mu_);
  mirrored_[revision] = claimed;
}

bool ArtifactStore::IsMarkedMirrored(const std::string& revision) const {
  const EpochSeconds now = ledger_ != nullptr ? ledger_->Now() : 0;
  MutexLock lock(mu_);
  auto it = mirrored_.find(revision);
  if (it == mirrored_.end()) return false;
  return ledger_ == nullptr || now - it->second < ledger_->ClaimTtlSeconds();
}

void ArtifactStore::ForgetMirrored(const std::string& revision) const {
  MutexLock lock(mu_);
  mirrored_.erase(revision);
}

Status ArtifactStore::EnsureMirrored(const std::string& revision) {
  if (mirror_ == nullptr || IsMarkedMirrored(revision)) return Status::Ok();
  // Claimed first: once claimed, no sweep removes the copy Contains finds.
  const EpochSeconds claimed = ledger_ != nullptr ? ledger_->Now() : 0;
  Status status = ledger_ != nullptr ? ledger_->Claim(revision) : Status::Ok();
  Result<bool> there = status.ok() ? mirror_->Contains(revision) : Result<bool>(status);
  status = there.ok() ? Status::Ok() : there.status();
  if (status.ok() && !*there) status = mirror_->Upload(revision, PathOf(revision));
  if (!status.ok()) {
    return Status(status.code(), "cannot upload artifact " + revision + " to " + mirror_->Where() +
                                     ": " + status.message());
  }
  MarkMirrored(revision, claimed);
  return Status::Ok();
}

Status ArtifactStore::Fetch(const std::string& revision) const {
  if (!IsArtifactRevision(revision)) {
    return InvalidArgument("malformed artifact revision '" + revision + "'", "");
  }
  if (Has(revision)) return Status::Ok();
  if (mirror_ == nullptr) return NotFound("artifact revision " + revision + " not found");
  std::error_code ec;
  fs::create_directories(root_dir_, ec);
  const std::string temp = TempPath();
  const std::string check_dir = root_dir_ + "/.tmp-" + RandomHex(16) + ".d";
  auto fail = [&](Status status) {
    fs::remove(temp, ec);
    fs::remove_all(check_dir, ec);
    return status;
  };
  if (Status got = mirror_->Download(revision, temp); !got.ok()) {
    if (got.code() == StatusCode::kNotFound && got.wire_name() != "NoSuchBucket") {
      return fail(NotFound("artifact revision " + revision + " is neither on this server nor in " +
                           mirror_->Where()));
    }
    return fail(Status(got.code(), "cannot download artifact " + revision + " from " +
                                       mirror_->Where() + ": " + got.message()));
  }
  if (Status valid = ValidateZipFile(temp, limits_); !valid.ok()) {
    return fail(Internal("artifact " + revision + " downloaded from " + mirror_->Where() +
                         " is not a valid artifact: " + valid.message()));
  }
  // A zip from PutZipBytes/PutZipFile is named by its bytes' hash, one from
  // PutDirectory by its entries' hash: unpack and hash those.
  Result<std::string> hash = HashFile(temp);
  if (!hash.ok()) return fail(hash.status());
  if (*hash != revision) {
    if (Status st = ExtractZip(temp, revision, check_dir, limits_); !st.ok()) return fail(st);
    Result<std::vector<Entry>> entries = ListEntries(check_dir, {});
    hash = entries.ok() ? HashEntries(*entries) : Result<std::string>(entries.status());
    if (!hash.ok()) return fail(hash.status());
    if (*hash != revision) {
      return fail(Internal("artifact " + revision + " downloaded from " + mirror_->Where() +
                           " does not match its revision (content hash " + *hash +
                           "); it was not used"));
    }
    fs::remove_all(check_dir, ec);
  }
  PW_RETURN_IF_ERROR(Publish(temp, revision));
  // In the mirror, but not claimed: a Put of it claims it first.
  if (ledger_ == nullptr) MarkMirrored(revision, 0);
  return Status::Ok();
}

Result<std::string> ArtifactStore::PutDirectory(const std::string& dir,
                                                const std::vector<std::string>& globs,
                                                const std::atomic<bool>* cancel) {
  PW_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListEntries(dir, globs, &limits_, cancel));
  PW_ASSIGN_OR_RETURN(std::string revision, HashEntries(entries, cancel));
  if (TouchIfStored(revision)) {  // Stored already: new again for the sweep (Commit).
    PW_RETURN_IF_ERROR(EnsureMirrored(revision));
    return revision;
  }
  std::error_code ec;
  fs::create_directories(root_dir_, ec);
  const std::string temp = TempPath();
  Status status = WriteZip(entries, temp, cancel);
  if (status.ok()) {
    const uintmax_t size = fs::file_size(temp, ec);
    if (!ec && size > limits_.max_artifact_bytes) status = CheckSize(size, limits_);
  }
  if (!status.ok()) {
    fs::remove(temp, ec);
    return status;
  }
  PW_RETURN_IF_ERROR(Commit(temp, revision));
  return revision;
}

Result<std::string> ArtifactStore::PutZipBytes(std::string_view bytes) {
  PW_RETURN_IF_ERROR(CheckSize(bytes.size(), limits_));
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  zip_t* zip = source == nullptr ? nullptr
                                 : zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (zip == nullptr) {
    if (source != nullptr) zip_source_free(source);
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    return InvalidArgument("not a zip archive: " + text, "");
  }
  zip_error_fini(&error);
  Status checked = CheckArchive(zip, limits_);
  zip_discard(zip);  // Also frees the source.
  PW_RETURN_IF_ERROR(checked);

  Sha256 sha;
  sha.Update(bytes);
  std::string revision = sha.HexDigest();
  if (TouchIfStored(revision)) {  // Stored already: new again for the sweep (Commit).
    PW_RETURN_IF_ERROR(EnsureMirrored(revision));
    return revision;
  }
  std::error_code ec;
  fs::create_directories(root_dir_, ec);
  const std::string temp = TempPath();
  Status status;
  {
    Fd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    status = fd.get() < 0 ? Internal("create " + temp + ": " + ErrnoText())
                          : WriteAll(fd.get(), bytes.data(), bytes.size(), temp);
  }
  if (!status.ok()) {
    fs::remove(temp, ec);
    return status;
  }
  PW_RETURN_IF_ERROR(Commit(temp, revision));
  return revision;
}

Result<std::string> ArtifactStore::PutZipFile(const std::string& path) {
  PW_RETURN_IF_ERROR(ValidateZipFile(path, limits_));
  PW_ASSIGN_OR_RETURN(std::string revision, HashFile(path));
  if (TouchIfStored(revision)) {  // Stored already: new again for the sweep (Commit).
    PW_RETURN_IF_ERROR(EnsureMirrored(revision));
    return revision;
  }
  std::error_code ec;
  fs::create_directories(root_dir_, ec);
  const std::string temp = TempPath();
  fs::copy_file(path, temp, ec);
  if (ec) {
    fs::remove(temp, ec);
    return Internal("copy " + path + ": " + ec.message());
  }
  PW_RETURN_IF_ERROR(Commit(temp, revision));
  return revision;
}

Status ArtifactStore::Extract(const std::string& revision, const std::string& dest_dir) const {
  if (!IsArtifactRevision(revision)) {
    return InvalidArgument("malformed artifact revision '" + revision + "'", "");
  }
  PW_RETURN_IF_ERROR(Fetch(revision));
  return ExtractZip(PathOf(revision), revision, dest_dir, limits_);
}

}  // namespace pw::runner
