#include "buckets/local_buckets.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "buckets/digests.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/utf8.h"
#include "sigv4/canonical_request.h"

namespace pw::buckets {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// 64 characters; ids start with one of the first 62 (never '.' or '_'), so an id
// is never taken for a command-line option or a hidden file.
constexpr char kIdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
constexpr int kIdLength = 32;
constexpr int kMaxParts = 10000;

std::string NewId() {
  unsigned char raw[kIdLength];
  RandomBytes(raw, sizeof raw);
  std::string out;
  for (unsigned char c : raw) out.push_back(kIdAlphabet[out.empty() ? c % 62 : c & 63]);
  return out;
}

bool IsIdShaped(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::string BucketKey(const std::string& bucket) { return "s3bucket/" + bucket; }
std::string ObjPrefix(const std::string& bucket) { return "s3obj/" + bucket + "/"; }
std::string ObjKey(const std::string& bucket, const std::string& key) {
  return ObjPrefix(bucket) + key;
}
std::string UploadKey(const std::string& bucket, const std::string& id) {
  return "s3upload/" + bucket + "/" + id;
}
std::string PartPrefix(const std::string& upload_id) { return "s3part/" + upload_id + "/"; }
std::string PartKey(const std::string& upload_id, int part) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", part);
  return PartPrefix(upload_id) + buf;
}

std::string ErrnoText() { return std::strerror(errno); }

Status NoSuchKey() { return NotFound("The specified key does not exist.", "NoSuchKey"); }

Status ValidateKey(const std::string& key) {
  if (key.empty()) return InvalidArgument("An object key must not be empty.", "InvalidArgument");
  if (key.size() > 1024) {
    return InvalidArgument("Your key is too long: at most 1024 bytes.", "KeyTooLongError");
  }
  if (key.find('\0') != std::string::npos) {
    return InvalidArgument("An object key must not contain NUL characters.", "InvalidArgument");
  }
  return Status::Ok();
}

// A key a new object gets: also UTF-8, as keys are listed in XML, which holds
// only UTF-8 (S3: a key is Unicode text). Reads and deletes check only
// ValidateKey, so an object stored before this rule stays reachable.
Status ValidateNewKey(const std::string& key) {
  PW_RETURN_IF_ERROR(ValidateKey(key));
  if (!IsUtf8(key)) {
    return InvalidArgument("An object key must be UTF-8 text (percent-encode its UTF-8 bytes).",
                           "InvalidArgument");
  }
  return Status::Ok();
}

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot open " + path + ": " + ErrnoText());
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return Unavailable("fsync " + path + ": " + std::strerror(e));
  return Status::Ok();
}

// Copies `src` to the open `out_fd`, feeding `digester`; fails past `max_bytes`.
Result<uint64_t> CopyInto(const std::string& src, int out_fd, Digester* digester,
                          uint64_t max_bytes) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Unavailable("cannot read " + src + ": " + ErrnoText());
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Unavailable("cannot read " + src + ": " + ErrnoText());
      ::close(in);
      return s;
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      ::close(in);
      return InvalidArgument("Your proposed upload exceeds the maximum allowed object size of " +
                                 std::to_string(max_bytes) + " bytes.",
                             "EntityTooLarge");
    }
    if (digester != nullptr) digester->Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      ssize_t w = ::write(out_fd, buf.data() + off, static_cast<size_t>(n) - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        Status s = Unavailable("cannot write a body file: " + ErrnoText());
        ::close(in);
        return s;
      }
      off += static_cast<size_t>(w);
    }
  }
  ::close(in);
  return total;
}

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

Status CheckIntegrity(const Digests& d, const Integrity& in) {
  if (!in.content_md5.empty()) {
    std::string raw;
    if (!Base64Decode(in.content_md5, raw) || raw.size() != 16) {
      return InvalidArgument("The Content-MD5 you specified was invalid.", "InvalidDigest");
    }
    if (raw != d.md5_raw) {
      return InvalidArgument("The Content-MD5 you specified did not match what we received.",
                             "BadDigest");
    }
  }
  if (!in.checksum_algorithm.empty() && !in.checksum_value.empty() &&
      in.checksum_value != d.checksum) {
    return InvalidArgument(
        "The " + in.checksum_algorithm + " you specified did not match the calculated checksum.",
        "BadDigest");
  }
  return Status::Ok();
}

json OptionsJson(const runner::PutOptions& o) {
  json j = json::object();
  if (!o.content_type.empty()) j["ct"] = o.content_type;
  if (!o.cache_control.empty()) j["cc"] = o.cache_control;
  if (!o.canned_acl.empty()) j["acl"] = o.canned_acl;
  if (!o.metadata.empty()) j["meta"] = o.metadata;
  return j;
}

runner::PutOptions OptionsFrom(const json& j) {
  runner::PutOptions o;
  o.content_type = j.value("ct", "");
  o.cache_control = j.value("cc", "");
  o.canned_acl = j.value("acl", "");
  if (j.contains("meta") && j["meta"].is_object()) {
    o.metadata = j["meta"].get<std::map<std::string, std::string>>();
  }
  return o;
}

// Parses a stored document; an unreadable one is treated as absent (logged).
json ParseDoc(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    PW_LOG(Error) << "unreadable bucket metadata " << what;
    return json::object();
  }
  return j;
}

}  // namespace

struct LocalBuckets::Version {
  std::string id;
  std::string etag;
  uint64_t size = 0;
  EpochSeconds mtime = 0;
  runner::PutOptions options;
  bool delete_marker = false;
  std::string checksum_algorithm;
  std::string checksum_value;
  int parts = 0;

  json ToJson() const {
    json j = OptionsJson(options);
    j["id"] = id;
    j["mtime"] = mtime;
    if (delete_marker) {
      j["dm"] = true;
      return j;
    }
    j["etag"] = etag;
    j["size"] = size;
    if (!checksum_algorithm.empty()) {
      j["ck"] = checksum_algorithm;
      j["ckv"] = checksum_value;
    }
    if (parts > 0) j["parts"] = parts;
    return j;
  }
  static Version FromJson(const json& j) {
    Version v;
    v.id = j.value("id", "");
    v.mtime = j.value("mtime", 0.0);
    v.delete_marker = j.value("dm", false);
    v.etag = j.value("etag", "");
    v.size = j.value("size", uint64_t{0});
    v.options = OptionsFrom(j);
    v.checksum_algorithm = j.value("ck", "");
    v.checksum_value = j.value("ckv", "");
    v.parts = j.value("parts", 0);
    return v;
  }
  runner::ObjectInfo Info(const std::string& bucket, const std::string& key) const {
    runner::ObjectInfo i;
    i.bucket = bucket;
    i.key = key;
    i.version_id = id;
    i.etag = etag;
    i.size = size;
    i.last_modified = mtime;
    i.content_type = options.content_type.empty() && !delete_marker ? "binary/octet-stream"
                                                                    : options.content_type;
    i.cache_control = options.cache_control;
    i.metadata = options.metadata;
    return i;
  }
};

namespace {

// A key's row (`s3obj/<bucket>/<key>`): which rows hold its versions, the
// sequence number its next version gets, and a copy of its newest version
// (what a listing and a read of the latest need, in one small row).
// Each version is a row of its own, `s3ver/<bucket>/<kid>/<sequence>`, the
// sequence written so that the newest comes first in key order, and
// `s3vid/<bucket>/<kid>/<version id>` → <sequence> finds one by its id: a
// put writes three small rows and a read seeks, however many versions the
// key has (docs/s3-buckets.md).
struct KeyRow {
  std::string kid;     // 16 characters from the CSPRNG, unique to this key's life.
  uint64_t next = 0;   // The sequence number of the next version.
  uint64_t count = 0;  // How many versions it has (a listing reads no rows for 1).
  json latest;         // The newest version, as its row holds it.

  std::string Text() const {
    return json{{"kid", kid}, {"next", next}, {"n", count}, {"latest", latest}}.dump();
  }
};

// Parses a key's row; nullopt (logged) for an unreadable one, or for a
// document of an earlier server that Open has not moved yet.
std::optional<KeyRow> ParseKeyRow(const std::string& text, const std::string& what) {
  json j = ParseDoc(text, what);
  if (!j.contains("kid") || !j["kid"].is_string() || !j.contains("latest") ||
      !j["latest"].is_object()) {
    if (!j.empty()) PW_LOG(Error) << "bucket metadata of an unknown shape for " << what;
    return std::nullopt;
  }
  KeyRow h;
  h.kid = j["kid"].get<std::string>();
  h.next = j.value("next", uint64_t{0});
  h.count = j.value("n", uint64_t{0});
  h.latest = std::move(j["latest"]);
  return h;
}

std::string NewKid() { return NewId().substr(0, 16); }

// Sequence numbers count up; their text counts down, so a key's newest
// version is its first row.
std::string SeqText(uint64_t seq) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, UINT64_MAX - seq);
  return buf;
}
std::string VerPrefix(const std::string& bucket, const std::string& kid) {
  return "s3ver/" + bucket + "/" + kid + "/";
}
std::string VidKey(const std::string& bucket, const std::string& kid, const std::string& id) {
  return "s3vid/" + bucket + "/" + kid + "/" + id;
}

// The bucket of a row key "<kind>/<bucket>/...".
std::string BucketOfRow(const std::string& row_key) {
  const size_t start = row_key.find('/') + 1;
  return row_key.substr(start, row_key.find('/', start) - start);
}

// An earlier server's document of a key: {"versions": [newest first]}.
std::vector<json> VersionsOf(const json& doc) {
  std::vector<json> out;
  if (doc.contains("versions") && doc["versions"].is_array()) {
    for (const auto& v : doc["versions"]) out.push_back(v);
  }
  return out;
}

// Adds to `batch` the rows of version `seq` of the key whose rows are named
// `kid`: the version's own row and the row that finds it by id.
void AddVersionRows(const std::string& bucket, const std::string& kid, uint64_t seq,
                    const json& version, store::Batch& batch) {
  batch.kv.emplace_back(VerPrefix(bucket, kid) + SeqText(seq), version.dump());
  batch.kv.emplace_back(VidKey(bucket, kid, version.value("id", "")), SeqText(seq));
}

// A version of a key found by its id: its row and what the row holds.
struct Found {
  std::string row_key;
  json doc;
};

Result<std::optional<Found>> FindVersion(store::Store& store, const std::string& bucket,
                                         const std::string& kid, const std::string& id) {
  PW_ASSIGN_OR_RETURN(auto seq, store.GetKv(VidKey(bucket, kid, id)));
  if (!seq) return std::optional<Found>();
  Found f;
  f.row_key = VerPrefix(bucket, kid) + *seq;
  PW_ASSIGN_OR_RETURN(auto doc, store.GetKv(f.row_key));
  if (!doc) return std::optional<Found>();
  f.doc = ParseDoc(*doc, f.row_key);
  return std::optional<Found>(std::move(f));
}

// Adds to `batch` the rows that make `version` the newest of `key` (the
// caller holds the buckets' mutex from this read to the commit).
Status AddVersion(store::Store& store, const std::string& bucket, const std::string& key,
                  const json& version, store::Batch& batch) {
  PW_ASSIGN_OR_RETURN(auto text, store.GetKv(ObjKey(bucket, key)));
  KeyRow h;
  if (text) {
    if (auto parsed = ParseKeyRow(*text, key)) h = std::move(*parsed);
  }
  if (h.kid.empty()) h.kid = NewKid();
  AddVersionRows(bucket, h.kid, h.next, version, batch);
  ++h.next;
  ++h.count;
  h.latest = version;
  batch.kv.emplace_back(ObjKey(bucket, key), h.Text());
  return Status::Ok();
}

// Set once every key's versions are rows: later starts read no key row.
constexpr char kMovedKey[] = "s3meta/versions-are-rows";

// Moves the versions of an earlier server's key documents into rows of their
// own, 500 keys per transaction: a crash in between leaves documents the
// next start moves. Each document is compared in its transaction, so two
// servers starting on one database move it once: when another server moved
// or changed one meanwhile, the page is read again. Once all are moved,
// kMovedKey says so and this reads nothing more at later starts.
Status MoveVersionDocuments(store::Store& store) {
  PW_ASSIGN_OR_RETURN(auto done, store.GetKv(kMovedKey));
  if (done) return Status::Ok();
  store::KvScan scan("s3obj/");
  scan.limit = 500;
  size_t moved = 0;
  int conflicts = 0;
  for (;;) {
    PW_ASSIGN_OR_RETURN(auto rows, store.ScanKv(scan));
    store::Batch batch;
    size_t in_batch = 0;
    for (const auto& [k, text] : rows) {
      json doc = ParseDoc(text, k);
      if (!doc.contains("versions")) continue;
      const std::string bucket = BucketOfRow(k);
      std::vector<json> versions = VersionsOf(doc);
      batch.kv_expect.emplace_back(k, text);  // Another server may move it too.
      if (versions.empty()) {
        batch.kv_deletes.push_back(k);
        continue;
      }
      KeyRow h;
      h.kid = NewKid();
      h.next = versions.size();
      h.count = versions.size();
      h.latest = versions.front();
      for (size_t i = 0; i < versions.size(); ++i) {
        AddVersionRows(bucket, h.kid, versions.size() - 1 - i, versions[i], batch);
      }
      batch.kv.emplace_back(k, h.Text());
      ++in_batch;
    }
    if (!batch.empty()) {
      Status committed = store.Commit(batch);
      if (committed.code() == StatusCode::kAborted && ++conflicts <= 10) continue;
      PW_RETURN_IF_ERROR(committed);
      moved += in_batch;
    }
    if (rows.size() < scan.limit) break;
    scan.start = rows.back().first;
    scan.from = store::KvFrom::kAfter;
  }
  if (moved > 0) PW_LOG(Info) << "buckets: moved the versions of " << moved << " keys to rows";
  return store.PutKv(kMovedKey, "1");
}

}  // namespace

Status ValidateBucketName(const std::string& n) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("The specified bucket is not valid: '" + n.substr(0, 80) + "' " + why +
                               " (3-63 lower-case letters, digits, dots and hyphens, starting "
                               "and ending with a letter or digit).",
                           "InvalidBucketName");
  };
  if (n.size() < 3 || n.size() > 63) return bad("must be 3 to 63 characters long");
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      return bad("holds a character other than a-z, 0-9, '.' and '-'");
    }
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(n.front()) || !alnum(n.back()))
    return bad("must start and end with a letter or digit");
  if (n.find("..") != std::string::npos) return bad("has two adjacent periods");
  if (n.find(".-") != std::string::npos || n.find("-.") != std::string::npos) {
    return bad("has a period next to a hyphen");
  }
  int dots = 0;
  bool digits_and_dots = true;
  for (char c : n) {
    if (c == '.') ++dots;
    if (!(c == '.' || (c >= '0' && c <= '9'))) digits_and_dots = false;
  }
  if (dots == 3 && digits_and_dots) return bad("is formatted as an IP address");
  if (n.rfind("xn--", 0) == 0 || n.rfind("sthree-", 0) == 0) return bad("has a reserved prefix");
  auto ends = [&](std::string_view s) {
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("-s3alias") || ends("--ol-s3")) return bad("has a reserved suffix");
  return Status::Ok();
}

LocalBuckets::LocalBuckets(store::Store& store, const Clock& clock, LocalBucketsOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

std::string LocalBuckets::temp_dir() const { return options_.root + "/.tmp"; }

std::string LocalBuckets::BodyPath(const std::string& bucket, const std::string& id) const {
  return options_.root + "/" + bucket + "/" + id;
}

Status LocalBuckets::Open() {
  std::error_code ec;
  for (const std::string& d : {options_.root, temp_dir(), options_.root + "/.uploads"}) {
    fs::create_directories(d, ec);
    if (ec) return Unavailable("cannot create " + d + ": " + ec.message());
  }
  // Temporary files belong to requests that died with the last process.
  for (const auto& e : fs::directory_iterator(temp_dir(), ec)) fs::remove_all(e.path(), ec);
  // Before the sweep, which reads the versions' rows to know the live bodies.
  PW_RETURN_IF_ERROR(MoveVersionDocuments(store_));
  // Bodies no version names: puts that stopped before their metadata commit.
  PW_ASSIGN_OR_RETURN(auto buckets, store_.ListKv("s3bucket/"));
  std::set<std::string> live_buckets;
  for (const auto& [k, v] : buckets) live_buckets.insert(k.substr(9));
  std::set<std::string> live_bodies;  // "<bucket>/<version id>"
  store::KvScan versions("s3ver/");
  versions.limit = 1000;
  for (;;) {
    PW_ASSIGN_OR_RETURN(auto rows, store_.ScanKv(versions));
    for (const auto& [k, v] : rows) {
      json ver = ParseDoc(v, k);
      if (!ver.value("dm", false)) live_bodies.insert(BucketOfRow(k) + "/" + ver.value("id", ""));
    }
    if (rows.size() < versions.limit) break;
    versions.start = rows.back().first;
    versions.from = store::KvFrom::kAfter;
  }
  size_t swept = 0;
  for (const auto& e : fs::directory_iterator(options_.root, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!live_buckets.count(name)) {
      fs::remove_all(e.path(), ec);
      ++swept;
      continue;
    }
    std::error_code ec2;
    for (const auto& f : fs::directory_iterator(e.path(), ec2)) {
      if (!live_bodies.count(name + "/" + f.path().filename().string())) {
        fs::remove_all(f.path(), ec2);
        ++swept;
      }
    }
  }
  PW_ASSIGN_OR_RETURN(auto uploads, store_.ListKv("s3upload/"));
  std::set<std::string> live_uploads;
  for (const auto& [k, v] : uploads) live_uploads.insert(k.substr(k.rfind('/') + 1));
  PW_ASSIGN_OR_RETURN(auto parts, store_.ListKv("s3part/"));
  std::set<std::string> live_parts;  // "<upload id>/<file>"
  for (const auto& [k, v] : parts) {
    std::string id = k.substr(7, k.find('/', 7) - 7);
    live_parts.insert(id + "/" + ParseDoc(v, k).value("file", ""));
  }
  for (const auto& e : fs::directory_iterator(options_.root + "/.uploads", ec)) {
    std::string id = e.path().filename().string();
    if (!live_uploads.count(id)) {
      fs::remove_all(e.path(), ec);
      ++swept;
      continue;
    }
    std::error_code ec2;
    for (const auto& f : fs::directory_iterator(e.path(), ec2)) {
      if (!live_parts.count(id + "/" + f.path().filename().string())) {
        fs::remove_all(f.path(), ec2);
        ++swept;
      }
    }
  }
  if (swept > 0) PW_LOG(Info) << "buckets: removed " << swept << " files left by a crash";
  return Status::Ok();
}

Status LocalBuckets::RequireBucket(const std::string& bucket) {
  PW_RETURN_IF_ERROR(ValidateBucketName(bucket));
  PW_ASSIGN_OR_RETURN(auto b, store_.GetKv(BucketKey(bucket)));
  if (!b) return NotFound("The specified bucket does not exist.", "NoSuchBucket");
  return Status::Ok();
}

Status LocalBuckets::CreateBucket(const std::string& name) {
  PW_RETURN_IF_ERROR(ValidateBucketName(name));
  // Path-style requests to these buckets would reach the server's own routes
  // instead (GET /metrics, GET /health, /console/..., GET /logs/<id>): the
  // bucket's listing and keys would be hidden, or worse, a key such as
  // console/api/session would sign users in or out. A bucket made before a
  // name was reserved keeps working.
  static constexpr std::pair<std::string_view, std::string_view> kReserved[] = {
      {"metrics", "GET /metrics serves its Prometheus metrics"},
      {"health", "GET /health serves its health check"},
      {"console", "/console serves its web console"},
      {"logs", "GET /logs/<id> serves action logs"},
  };
  for (const auto& [reserved, why] : kReserved) {
    if (name == reserved) {
      return InvalidArgument("The bucket name '" + name + "' is reserved on this server: " +
                                 std::string(why) + ". Choose another name.",
                             "InvalidBucketName");
    }
  }
  std::error_code ec;
  fs::create_directories(BodyPath(name, ""), ec);
  if (ec) return Unavailable("cannot create the bucket's directory: " + ec.message());
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(auto b, store_.GetKv(BucketKey(name)));
  if (b) {
    return AlreadyExists(
        "Your previous request to create the named bucket succeeded and you already own it.",
        "BucketAlreadyOwnedByYou");
  }
  return store_.PutKv(BucketKey(name), json{{"created", clock_.Now()}}.dump());
}

Status LocalBuckets::HeadBucket(const std::string& name) { return RequireBucket(name); }

Status LocalBuckets::DeleteBucket(const std::string& name) {
  std::vector<std::string> upload_ids;
  {
    MutexLock lock(mu_);
    PW_RETURN_IF_ERROR(RequireBucket(name));
    store::Batch batch;
    PW_ASSIGN_OR_RETURN(auto objects, store_.ListKv(ObjPrefix(name)));
    for (const auto& [k, v] : objects) {
      std::optional<KeyRow> h = ParseKeyRow(v, k);
      if (h && !h->latest.value("dm", false)) {
        return FailedPrecondition("The bucket you tried to delete is not empty.", "BucketNotEmpty");
      }
      batch.kv_deletes.push_back(k);
    }
    for (const std::string& kind : {std::string("s3ver/"), std::string("s3vid/")}) {
      PW_ASSIGN_OR_RETURN(auto rows, store_.ListKv(kind + name + "/"));
      for (const auto& [k, v] : rows) batch.kv_deletes.push_back(k);
    }
    PW_ASSIGN_OR_RETURN(auto uploads, store_.ListKv("s3upload/" + name + "/"));
    for (const auto& [k, v] : uploads) {
      upload_ids.push_back(k.substr(k.rfind('/') + 1));
      batch.kv_deletes.push_back(k);
      PW_ASSIGN_OR_RETURN(auto parts, store_.ListKv(PartPrefix(upload_ids.back())));
      for (const auto& [pk, pv] : parts) batch.kv_deletes.push_back(pk);
    }
    batch.kv_deletes.push_back(BucketKey(name));
    PW_RETURN_IF_ERROR(store_.Commit(batch));
  }
  std::error_code ec;
  fs::remove_all(options_.root + "/" + name, ec);
  for (const auto& id : upload_ids) fs::remove_all(options_.root + "/.uploads/" + id, ec);
  return Status::Ok();
}

Result<std::vector<BucketEntry>> LocalBuckets::ListBuckets() {
  PW_ASSIGN_OR_RETURN(auto rows, store_.ListKv("s3bucket/"));
  std::vector<BucketEntry> out;
  for (const auto& [k, v] : rows) {
    out.push_back({k.substr(9), ParseDoc(v, k).value("created", 0.0)});
  }
  std::sort(out.begin(), out.end(),
            [](const BucketEntry& a, const BucketEntry& b) { return a.name < b.name; });
  return out;
}

Result<Located> LocalBuckets::Locate(const std::string& bucket, const std::string& key,
                                     const std::string& version_id) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  PW_RETURN_IF_ERROR(ValidateKey(key));
  if (!version_id.empty() && version_id != "null" && !IsIdShaped(version_id)) {
    return InvalidArgument("Invalid version id specified", "InvalidArgument");
  }
  const Status no_such_version = NotFound("The specified version does not exist.", "NoSuchVersion");
  PW_ASSIGN_OR_RETURN(auto text, store_.GetKv(ObjKey(bucket, key)));
  std::optional<KeyRow> h = text ? ParseKeyRow(*text, key) : std::nullopt;
  if (!h) return version_id.empty() ? NoSuchKey() : no_such_version;
  Version v = Version::FromJson(h->latest);
  if (!version_id.empty() && v.id != version_id) {
    PW_ASSIGN_OR_RETURN(auto found, FindVersion(store_, bucket, h->kid, version_id));
    if (!found) return no_such_version;
    v = Version::FromJson(found->doc);
  }
  if (v.delete_marker) {
    if (version_id.empty()) return NoSuchKey();
    return FailedPrecondition("The specified method is not allowed against this resource.",
                              "MethodNotAllowed");
  }
  return Located{v.Info(bucket, key), BodyPath(bucket, v.id), v.checksum_algorithm,
                 v.checksum_value};
}

Result<runner::ObjectInfo> LocalBuckets::Head(const std::string& bucket, const std::string& key,
                                              const std::string& version_id) {
  PW_ASSIGN_OR_RETURN(Located l, Locate(bucket, key, version_id));
  return l.info;
}

Result<runner::ObjectInfo> LocalBuckets::Get(const std::string& bucket, const std::string& key,
                                             const std::string& version_id,
                                             const std::string& dest_path) {
  PW_ASSIGN_OR_RETURN(Located l, Locate(bucket, key, version_id));
  int out = ::open(dest_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return Unavailable("cannot write " + dest_path + ": " + ErrnoText());
  auto copied = CopyInto(l.body_path, out, nullptr, UINT64_MAX);
  ::close(out);
  if (!copied.ok()) return copied.status();
  return l.info;
}

Result<runner::ObjectInfo> LocalBuckets::Put(const std::string& bucket, const std::string& key,
                                             const std::string& src_path,
                                             const runner::PutOptions& options) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  PW_RETURN_IF_ERROR(ValidateNewKey(key));
  std::string tmp = temp_dir() + "/put-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Unavailable("cannot create a temporary file: " + ErrnoText());
  Digester d;
  auto size = CopyInto(src_path, fd, &d, options_.max_object_bytes);
  Status synced = size.ok() && ::fsync(fd) != 0 ? Unavailable("fsync: " + ErrnoText()) : Status();
  ::close(fd);
  if (!size.ok() || !synced.ok()) {
    ::unlink(tmp.c_str());
    return size.ok() ? synced : size.status();
  }
  Digests dg = d.Finish();
  Version v;
  v.id = NewId();
  v.etag = dg.md5_hex;
  v.size = *size;
  v.options = options;
  auto info = CommitVersion(bucket, key, tmp, std::move(v), {});
  if (!info.ok()) ::unlink(tmp.c_str());
  return info;
}

Result<runner::ObjectInfo> LocalBuckets::PutUploaded(const std::string& bucket,
                                                     const std::string& key,
                                                     const std::string& temp_file,
                                                     const runner::PutOptions& options,
                                                     const Integrity& integrity) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  PW_RETURN_IF_ERROR(ValidateNewKey(key));
  if (!integrity.checksum_algorithm.empty() && !IsChecksumAlgorithm(integrity.checksum_algorithm)) {
    return InvalidArgument("Unknown checksum algorithm " + integrity.checksum_algorithm +
                               " (CRC32, CRC32C, CRC64NVME, SHA1 or SHA256).",
                           "InvalidArgument");
  }
  struct stat st {};
  if (::stat(temp_file.c_str(), &st) != 0) {
    return Unavailable("the uploaded body is gone: " + ErrnoText());
  }
  if (static_cast<uint64_t>(st.st_size) > options_.max_object_bytes) {
    return InvalidArgument("Your proposed upload exceeds the maximum allowed object size of " +
                               std::to_string(options_.max_object_bytes) + " bytes.",
                           "EntityTooLarge");
  }
  PW_ASSIGN_OR_RETURN(Digests dg, DigestFile(temp_file, integrity.checksum_algorithm));
  PW_RETURN_IF_ERROR(CheckIntegrity(dg, integrity));
  PW_RETURN_IF_ERROR(FsyncPath(temp_file, /*directory=*/false));
  Version v;
  v.id = NewId();
  v.etag = dg.md5_hex;
  v.size = static_cast<uint64_t>(st.st_size);
  v.options = options;
  if (!integrity.checksum_algorithm.empty()) {
    v.checksum_algorithm = integrity.checksum_algorithm;
    v.checksum_value = dg.checksum;
  }
  return CommitVersion(bucket, key, temp_file, std::move(v), {});
}

Result<runner::ObjectInfo> LocalBuckets::CommitVersion(const std::string& bucket,
                                                       const std::string& key,
                                                       const std::string& temp_file, Version v,
                                                       store::Batch extra) {
  v.mtime = clock_.Now();
  const std::string body = BodyPath(bucket, v.id);
  std::error_code ec;
  fs::create_directories(options_.root + "/" + bucket, ec);
  if (::rename(temp_file.c_str(), body.c_str()) != 0) {
    return Unavailable("cannot move the body into place: " + ErrnoText());
  }
  PW_RETURN_IF_ERROR(FsyncPath(options_.root + "/" + bucket, /*directory=*/true));
  if (fail_before_commit_) return Unavailable("stopped before the metadata commit (test hook)");
  Status committed;
  {
    MutexLock lock(mu_);
    committed = RequireBucket(bucket);
    if (committed.ok()) committed = AddVersion(store_, bucket, key, v.ToJson(), extra);
    if (committed.ok()) committed = store_.Commit(extra);
  }
  if (!committed.ok()) {
    ::unlink(body.c_str());
    return committed;
  }
  return v.Info(bucket, key);
}

Status LocalBuckets::Delete(const std::string& bucket, const std::string& key) {
  Result<DeleteOutcome> out = DeleteObject(bucket, key, "");
  return out.ok() ? Status::Ok() : out.status();
}

Result<DeleteOutcome> LocalBuckets::DeleteObject(const std::string& bucket, const std::string& key,
                                                 const std::string& version_id) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  PW_RETURN_IF_ERROR(ValidateKey(key));
  if (!version_id.empty() && version_id != "null" && !IsIdShaped(version_id)) {
    return InvalidArgument("Invalid version id specified", "InvalidArgument");
  }
  DeleteOutcome out;
  std::string remove_body;
  {
    MutexLock lock(mu_);
    store::Batch batch;
    if (version_id.empty()) {
      Version marker;
      marker.id = NewId();
      marker.mtime = clock_.Now();
      marker.delete_marker = true;
      PW_RETURN_IF_ERROR(AddVersion(store_, bucket, key, marker.ToJson(), batch));
      out.version_id = marker.id;
      out.delete_marker = true;
    } else {
      out.version_id = version_id;
      // S3 answers 204 for a version that is not there.
      PW_ASSIGN_OR_RETURN(auto text, store_.GetKv(ObjKey(bucket, key)));
      std::optional<KeyRow> h = text ? ParseKeyRow(*text, key) : std::nullopt;
      if (!h) return out;
      PW_ASSIGN_OR_RETURN(auto found, FindVersion(store_, bucket, h->kid, version_id));
      if (!found) return out;
      out.delete_marker = found->doc.value("dm", false);
      if (!out.delete_marker) remove_body = BodyPath(bucket, version_id);
      batch.kv_deletes.push_back(found->row_key);
      batch.kv_deletes.push_back(VidKey(bucket, h->kid, version_id));
      --h->count;
      if (h->latest.value("id", "") != version_id) {
        batch.kv.emplace_back(ObjKey(bucket, key), h->Text());
      } else {
        // The newest is the key's first row: the one after it becomes the latest.
        store::KvScan next(VerPrefix(bucket, h->kid), found->row_key, store::KvFrom::kAfter, 1);
        PW_ASSIGN_OR_RETURN(auto rows, store_.ScanKv(next));
        if (rows.empty()) {
          batch.kv_deletes.push_back(ObjKey(bucket, key));
        } else {
          h->latest = ParseDoc(rows[0].second, rows[0].first);
          batch.kv.emplace_back(ObjKey(bucket, key), h->Text());
        }
      }
    }
    PW_RETURN_IF_ERROR(store_.Commit(batch));
  }
  // After the commit: a crash before this unlink leaves a file the sweep removes.
  if (!remove_body.empty()) ::unlink(remove_body.c_str());
  return out;
}

namespace {

// Reads the rows under a prefix in byte order, `chunk` rows per store read,
// and skips a whole group of keys (a common prefix) with one seek when the
// group runs past the rows in hand: a listing's page costs about its own
// rows, not the bucket's.
class KvWalk {
 public:
  KvWalk(store::Store& store, store::KvScan scan, size_t chunk)
      : store_(store), scan_(std::move(scan)) {
    scan_.limit = std::max<size_t>(chunk, 1);
  }

  // The next row, or nullptr at the end. Valid until the next call.
  Result<const std::pair<std::string, std::string>*> Next() {
    if (pos_ == rows_.size()) {
      if (done_) return nullptr;
      PW_ASSIGN_OR_RETURN(rows_, store_.ScanKv(scan_));
      pos_ = 0;
      done_ = rows_.size() < scan_.limit;
      if (rows_.empty()) return nullptr;
      scan_.start = rows_.back().first;
      scan_.from = store::KvFrom::kAfter;
    }
    return &rows_[pos_++];
  }

  // Drops the rows whose keys start with `group` (invalidates the row Next
  // returned last).
  void SkipPast(const std::string& group) {
    while (pos_ < rows_.size() && rows_[pos_].first.starts_with(group)) ++pos_;
    if (pos_ == rows_.size() && !done_) {
      rows_.clear();
      pos_ = 0;
      scan_.start = group;
      scan_.from = store::KvFrom::kPast;
    }
  }

 private:
  store::Store& store_;
  store::KvScan scan_;
  std::vector<std::pair<std::string, std::string>> rows_;
  size_t pos_ = 0;
  bool done_ = false;
};

// Rows per store read: a page's worth and one more (to know it is
// truncated); fewer with a delimiter, whose groups are skipped by seeks.
size_t ChunkFor(int max_keys, const std::string& delimiter) {
  const size_t want = static_cast<size_t>(std::max(max_keys, 0)) + 1;
  return std::min<size_t>(want, delimiter.empty() ? 1001 : 101);
}

// The common prefix `key` rolls up into ("" for none): the key up to the
// first `delimiter` after `prefix`, delimiter included.
std::string CommonPrefix(const std::string& key, const std::string& prefix,
                         const std::string& delimiter) {
  if (delimiter.empty()) return "";
  auto pos = key.find(delimiter, prefix.size());
  if (pos == std::string::npos) return "";
  return key.substr(0, pos + delimiter.size());
}

}  // namespace

Result<ListPage> LocalBuckets::List(const std::string& bucket, const ListQuery& q) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  const std::string base = ObjPrefix(bucket);
  store::KvScan scan(base + q.prefix);
  if (!q.after.empty()) {
    scan.start = base + q.after;
    scan.from = store::KvFrom::kAfter;
  }
  KvWalk walk(store_, std::move(scan), ChunkFor(q.max_keys, q.delimiter));
  ListPage page;
  int count = 0;
  for (;;) {
    PW_ASSIGN_OR_RETURN(const auto* row, walk.Next());
    if (row == nullptr) break;
    const auto& [k, text] = *row;
    std::string key = k.substr(base.size());
    std::string common = CommonPrefix(key, q.prefix, q.delimiter);
    if (!common.empty() && !q.after.empty() && common <= q.after) {
      walk.SkipPast(base + common);  // Listed on an earlier page.
      continue;
    }
    std::optional<KeyRow> h = ParseKeyRow(text, k);
    if (!h || h->latest.value("dm", false)) continue;
    if (count >= q.max_keys) {
      page.truncated = true;
      break;
    }
    ++count;
    if (!common.empty()) {
      page.common_prefixes.push_back(common);
      page.next_after = common;
      walk.SkipPast(base + common);
    } else {
      page.objects.push_back(Version::FromJson(h->latest).Info(bucket, key));
      page.next_after = key;
    }
  }
  if (!page.truncated) page.next_after.clear();
  return page;
}

Result<VersionPage> LocalBuckets::ListVersions(const std::string& bucket, const VersionQuery& q) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  if (!q.version_id_marker.empty()) {
    if (q.key_marker.empty()) {
      return InvalidArgument("A version-id marker cannot be specified without a key marker.",
                             "InvalidArgument");
    }
    if (q.version_id_marker != "null" && !IsIdShaped(q.version_id_marker)) {
      return InvalidArgument("Invalid version id specified", "InvalidArgument");
    }
  }
  const std::string base = ObjPrefix(bucket);
  store::KvScan scan(base + q.prefix);
  if (!q.key_marker.empty()) {
    scan.start = base + q.key_marker;
    // With a version marker the marker's key still has versions to list.
    scan.from = q.version_id_marker.empty() ? store::KvFrom::kAfter : store::KvFrom::kAt;
  }
  KvWalk walk(store_, std::move(scan), ChunkFor(q.max_keys, q.delimiter));
  VersionPage page;
  int count = 0;
  std::string last_key;
  std::string last_version;
  while (!page.truncated) {
    PW_ASSIGN_OR_RETURN(const auto* row, walk.Next());
    if (row == nullptr) break;
    const auto& [k, text] = *row;
    std::string key = k.substr(base.size());
    std::string common = CommonPrefix(key, q.prefix, q.delimiter);
    if (!common.empty() && !q.key_marker.empty() && common <= q.key_marker) {
      walk.SkipPast(base + common);  // Listed on an earlier page.
      continue;
    }
    std::optional<KeyRow> h = ParseKeyRow(text, k);
    if (!h) continue;
    if (!common.empty()) {
      if (count >= q.max_keys) {
        page.truncated = true;
        break;
      }
      ++count;
      page.common_prefixes.push_back(common);
      last_key = common;
      last_version.clear();
      walk.SkipPast(base + common);
      continue;
    }
    const std::string latest_id = h->latest.value("id", "");
    // Adds a version to the page; false when the page is full.
    auto add = [&](const json& doc) {
      if (count >= q.max_keys) {
        page.truncated = true;
        return false;
      }
      ++count;
      Version v = Version::FromJson(doc);
      ObjectVersion ov;
      ov.info = v.Info(bucket, key);
      ov.is_latest = v.id == latest_id;
      ov.delete_marker = v.delete_marker;
      page.versions.push_back(std::move(ov));
      last_key = key;
      last_version = v.id;
      return true;
    };
    if (h->count == 1 && key != q.key_marker) {
      add(h->latest);  // Its only version: no row to read.
      continue;
    }
    // The key's versions, newest first, from after the version marker on
    // the marker's key (a marker it does not have: none of them).
    store::KvScan from_version(VerPrefix(bucket, h->kid));
    if (key == q.key_marker) {
      PW_ASSIGN_OR_RETURN(auto marker, FindVersion(store_, bucket, h->kid, q.version_id_marker));
      if (!marker) continue;
      from_version.start = marker->row_key;
      from_version.from = store::KvFrom::kAfter;
    }
    const size_t left = static_cast<size_t>(std::max(q.max_keys - count, 0));
    KvWalk versions(store_, std::move(from_version), std::min<size_t>(left + 1, 1001));
    for (;;) {
      PW_ASSIGN_OR_RETURN(const auto* ver, versions.Next());
      if (ver == nullptr || !add(ParseDoc(ver->second, ver->first))) break;
    }
  }
  if (page.truncated) {
    page.next_key_marker = last_key;
    page.next_version_id_marker = last_version;
  }
  return page;
}

Result<std::string> LocalBuckets::CreateMultipartUpload(const std::string& bucket,
                                                        const std::string& key,
                                                        const runner::PutOptions& options) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  PW_RETURN_IF_ERROR(ValidateNewKey(key));
  // Uploads never completed would otherwise pile up without bound (rows and
  // part files), from any key that may write the bucket.
  const size_t cap = std::max<size_t>(1, options_.max_open_uploads);
  PW_ASSIGN_OR_RETURN(auto open, store_.ScanKv(store::KvScan("s3upload/" + bucket + "/", "",
                                                             store::KvFrom::kAt, cap)));
  if (open.size() >= cap) {
    return InvalidArgument("The bucket already has " + std::to_string(cap) +
                               " multipart uploads in progress; complete or abort some "
                               "(ListMultipartUploads, AbortMultipartUpload) first.",
                           "InvalidRequest");
  }
  std::string id = NewId();
  json doc = {{"key", key}, {"created", clock_.Now()}, {"options", OptionsJson(options)}};
  PW_RETURN_IF_ERROR(store_.PutKv(UploadKey(bucket, id), doc.dump()));
  return id;
}

namespace {

Status NoSuchUpload() {
  return NotFound(
      "The specified upload does not exist. The upload ID may be invalid, or the upload may "
      "have been aborted or completed.",
      "NoSuchUpload");
}

}  // namespace

Result<std::string> LocalBuckets::UploadPart(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id, int part_number,
                                             const std::string& temp_file,
                                             const Integrity& integrity) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  if (!IsIdShaped(upload_id)) return NoSuchUpload();
  if (part_number < 1 || part_number > kMaxParts) {
    return InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                           "InvalidArgument");
  }
  PW_ASSIGN_OR_RETURN(auto up, store_.GetKv(UploadKey(bucket, upload_id)));
  if (!up || ParseDoc(*up, upload_id).value("key", "") != key) return NoSuchUpload();
  struct stat st {};
  if (::stat(temp_file.c_str(), &st) != 0) return Unavailable("the uploaded part is gone");
  if (static_cast<uint64_t>(st.st_size) > options_.max_object_bytes) {
    return InvalidArgument("Your proposed upload exceeds the maximum allowed object size of " +
                               std::to_string(options_.max_object_bytes) + " bytes.",
                           "EntityTooLarge");
  }
  PW_ASSIGN_OR_RETURN(Digests dg, DigestFile(temp_file, integrity.checksum_algorithm));
  PW_RETURN_IF_ERROR(CheckIntegrity(dg, integrity));
  PW_RETURN_IF_ERROR(FsyncPath(temp_file, /*directory=*/false));
  const std::string dir = options_.root + "/.uploads/" + upload_id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  char name[32];
  std::snprintf(name, sizeof name, "%05d-", part_number);
  const std::string file = name + RandomHex(8);
  if (::rename(temp_file.c_str(), (dir + "/" + file).c_str()) != 0) {
    return Unavailable("cannot move the part into place: " + ErrnoText());
  }
  PW_RETURN_IF_ERROR(FsyncPath(dir, /*directory=*/true));
  std::string replaced;
  Status committed;
  {
    MutexLock lock(mu_);
    auto still = store_.GetKv(UploadKey(bucket, upload_id));
    auto old = store_.GetKv(PartKey(upload_id, part_number));
    if (!still.ok() || !old.ok()) {
      committed = !still.ok() ? still.status() : old.status();
    } else if (!*still) {
      committed = NoSuchUpload();
    } else {
      if (*old) replaced = ParseDoc(**old, "part").value("file", "");
      json doc = {
          {"file", file}, {"etag", dg.md5_hex}, {"size", static_cast<uint64_t>(st.st_size)}};
      committed = store_.PutKv(PartKey(upload_id, part_number), doc.dump());
    }
  }
  if (!committed.ok()) {
    ::unlink((dir + "/" + file).c_str());
    return committed;
  }
  if (!replaced.empty() && replaced != file) ::unlink((dir + "/" + replaced).c_str());
  return dg.md5_hex;
}

Result<runner::ObjectInfo> LocalBuckets::CompleteMultipartUpload(
    const std::string& bucket, const std::string& key, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  if (!IsIdShaped(upload_id)) return NoSuchUpload();
  PW_ASSIGN_OR_RETURN(auto up, store_.GetKv(UploadKey(bucket, upload_id)));
  if (!up) return NoSuchUpload();
  json updoc = ParseDoc(*up, upload_id);
  if (updoc.value("key", "") != key) return NoSuchUpload();
  if (parts.empty()) {
    return InvalidArgument("You must specify at least one part.", "MalformedXML");
  }
  const std::string dir = options_.root + "/.uploads/" + upload_id;
  std::vector<std::string> files;
  std::string md5s;
  uint64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0 && parts[i].part_number <= parts[i - 1].part_number) {
      return InvalidArgument("The list of parts was not in ascending order.", "InvalidPartOrder");
    }
    auto invalid = InvalidArgument("One or more of the specified parts could not be found. Part " +
                                       std::to_string(parts[i].part_number) +
                                       " was not uploaded or its ETag does not match.",
                                   "InvalidPart");
    if (parts[i].part_number < 1 || parts[i].part_number > kMaxParts) return invalid;
    PW_ASSIGN_OR_RETURN(auto p, store_.GetKv(PartKey(upload_id, parts[i].part_number)));
    if (!p) return invalid;
    json pd = ParseDoc(*p, "part");
    std::string etag = pd.value("etag", "");
    if (StripQuotes(parts[i].etag) != etag || etag.size() != 32) return invalid;
    uint64_t size = pd.value("size", uint64_t{0});
    if (i + 1 < parts.size() && size < options_.min_part_bytes) {
      return InvalidArgument(
          "Your proposed upload is smaller than the minimum allowed size: part " +
              std::to_string(parts[i].part_number) + " is " + std::to_string(size) +
              " bytes, parts but the last must be at " + "least " +
              std::to_string(options_.min_part_bytes) + ".",
          "EntityTooSmall");
    }
    total += size;
    files.push_back(dir + "/" + pd.value("file", ""));
    for (size_t h = 0; h < 32; h += 2) {
      md5s.push_back(static_cast<char>(std::stoi(etag.substr(h, 2), nullptr, 16)));
    }
  }
  if (total > options_.max_object_bytes) {
    return InvalidArgument("Your proposed upload exceeds the maximum allowed object size of " +
                               std::to_string(options_.max_object_bytes) + " bytes.",
                           "EntityTooLarge");
  }
  std::string tmp = temp_dir() + "/complete-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Unavailable("cannot create a temporary file: " + ErrnoText());
  Status copied;
  for (const auto& f : files) {
    auto n = CopyInto(f, fd, nullptr, UINT64_MAX);
    if (!n.ok()) {
      copied = n.status();
      break;
    }
  }
  if (copied.ok() && ::fsync(fd) != 0) copied = Unavailable("fsync: " + ErrnoText());
  ::close(fd);
  if (!copied.ok()) {
    ::unlink(tmp.c_str());
    return copied;
  }
  Digester etag_of_etags;
  etag_of_etags.Update(md5s);
  Version v;
  v.id = NewId();
  v.etag = etag_of_etags.Finish().md5_hex + "-" + std::to_string(parts.size());
  v.size = total;
  v.options = OptionsFrom(updoc.value("options", json::object()));
  v.parts = static_cast<int>(parts.size());
  store::Batch extra;
  extra.kv_deletes.push_back(UploadKey(bucket, upload_id));
  PW_ASSIGN_OR_RETURN(auto all_parts, store_.ListKv(PartPrefix(upload_id)));
  for (const auto& [k, val] : all_parts) extra.kv_deletes.push_back(k);
  auto info = CommitVersion(bucket, key, tmp, std::move(v), std::move(extra));
  if (!info.ok()) {
    ::unlink(tmp.c_str());
    return info;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return info;
}

Status LocalBuckets::AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id) {
  PW_RETURN_IF_ERROR(RequireBucket(bucket));
  if (!IsIdShaped(upload_id)) return NoSuchUpload();
  {
    MutexLock lock(mu_);
    PW_ASSIGN_OR_RETURN(auto up, store_.GetKv(UploadKey(bucket, upload_id)));
    if (!up || ParseDoc(*up, upload_id).value("key", "") != key) return NoSuchUpload();
    store::Batch batch;
    batch.kv_deletes.push_back(UploadKey(bucket, upload_id));
    PW_ASSIGN_OR_RETURN(auto all_parts, store_.ListKv(PartPrefix(upload_id)));
    for (const auto& [k, val] : all_parts) batch.kv_deletes.push_back(k);
    PW_RETURN_IF_ERROR(store_.Commit(batch));
  }
  std::error_code ec;
  fs::remove_all(options_.root + "/.uploads/" + upload_id, ec);
  return Status::Ok();
}

void LocalBuckets::SetPublicUrl(const std::string& url) {
  MutexLock lock(url_mu_);
  public_url_ = url;
}

std::string LocalBuckets::UrlOf(const std::string& bucket, const std::string& key,
                                const std::string& version_id) const {
  std::string base;
  {
    MutexLock lock(url_mu_);
    base = public_url_;
  }
  if (base.empty()) return "";
  std::string url = base + "/" + bucket + "/" + sigv4::UriEncode(key, /*keep_slash=*/true);
  if (!version_id.empty()) url += "?versionId=" + version_id;
  return url;
}

}  // namespace pw::buckets
