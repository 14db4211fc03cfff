#pragma once

// KeyStore: the access keys the server accepts, read from --auth-keys-file,
// each with an optional IAM-style policy. Immutable after loading;
// thread-safe to share.
//
// File format, one key per line ('#' starts a comment line; blank lines are
// skipped):
//   ACCESS_KEY_ID:SECRET                 # may do everything
//   ACCESS_KEY_ID:SECRET:policy.json     # may do what the policy allows
// A relative policy path is relative to the keys file's directory. Every
// policy is parsed when the file is loaded, so a bad policy stops the server
// at start-up instead of denying (or allowing) at run time.
//
//   auto keys = KeyStore::Load("/etc/pipewright/keys");
//   if (!keys.ok()) return keys.status();  // "keys:3: policy ro.json: Statement 1 has no Effect"
//   const KeyEntry* k = keys->Find("AKIDEXAMPLE");

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "auth/policy.h"
#include "common/status.h"

namespace pw::auth {

struct KeyEntry {
  std::string access_key_id;
  std::string secret_access_key;
  std::optional<Policy> policy;  // nullopt: allowed everything (no policy given).
  std::string policy_path;       // As resolved; "" when none.
};

class KeyStore {
 public:
  // Reads and parses `path`. Fails with kInvalidArgument naming the file,
  // the line number and what is wrong (unreadable file, malformed line,
  // duplicate key id, unreadable or invalid policy).
  static Result<KeyStore> Load(const std::string& path);

  // Parses the text of a keys file; `source` names it in errors and
  // `base_dir` resolves relative policy paths.
  static Result<KeyStore> Parse(std::string_view text, std::string_view source,
                                const std::string& base_dir);

  // The entry for `access_key_id`, or nullptr when unknown. The pointer
  // stays valid as long as this KeyStore.
  const KeyEntry* Find(std::string_view access_key_id) const;

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, KeyEntry, std::less<>> keys_;
};

}  // namespace pw::auth
