#include "engine/git_connections.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "engine/helpers.h"

namespace pw::engine {
namespace {

using nlohmann::json;

constexpr const char* kConnectionsHint =
    "Declare it in the file given to `pipewright serve --git-connections FILE`, e.g. "
    "{\"connections\": [{\"arn\": \"<ConnectionArn>\", \"url\": "
    "\"https://github.com/{FullRepositoryId}.git\", \"webUrl\": "
    "\"https://github.com/{FullRepositoryId}\"}]}, and restart the server.";
constexpr const char* kCodeCommitHint =
    "Declare where CodeCommit repositories live in the file given to `pipewright serve "
    "--git-connections FILE`, e.g. {\"codecommit\": {\"url\": \"/srv/git/{RepositoryName}.git\"}}, "
    "and restart the server.";

Status CheckKeys(const json& obj, const std::string& where, const std::vector<std::string>& known) {
  if (!obj.is_object()) return InvalidArgument(where + ": must be a JSON object", "");
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return InvalidArgument(where + ": unknown key '" + key + "' (known: " + Join(known) + ")",
                             "");
    }
    if (!value.is_string()) {
      return InvalidArgument(where + "." + key + ": must be a string", "");
    }
  }
  return Status::Ok();
}

std::string StringAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? "" : it->get<std::string>();
}

// Every {…} in `text` must be one of `allowed`.
Status CheckPlaceholders(const std::string& text, const std::string& where,
                         const std::vector<std::string>& allowed) {
  for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    if (close == std::string::npos) {
      return InvalidArgument(where + ": unclosed '{' in '" + RedactUrl(text) + "'", "");
    }
    const std::string name = text.substr(open + 1, close - open - 1);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::vector<std::string> names;
      for (const auto& a : allowed) names.push_back("{" + a + "}");
      return InvalidArgument(
          where + ": unknown placeholder {" + name + "} (allowed: " + Join(names) + ")", "");
    }
  }
  return Status::Ok();
}

std::string Replace(std::string text, const std::string& placeholder, const std::string& value) {
  const std::string token = "{" + placeholder + "}";
  for (size_t at = text.find(token); at != std::string::npos;
       at = text.find(token, at + value.size())) {
    text.replace(at, token.size(), value);
  }
  return text;
}

// The canonical form: the codeconnections service name.
std::string CanonicalArn(std::string_view arn) {
  std::string s(arn);
  const std::string old_name = ":codestar-connections:";
  if (size_t at = s.find(old_name); at != std::string::npos) {
    s.replace(at, old_name.size(), ":codeconnections:");
  }
  return s;
}

bool ValidArn(const std::string& arn) {
  static const std::regex kArn(
      "arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:"
      "connection/[A-Za-z0-9._-]+");
  return std::regex_match(arn, kArn);
}

// A path segment of a repository name: no "." or "..", no '/'.
bool SafeSegment(const std::string& s) {
  static const std::regex kSegment("[A-Za-z0-9_.-]+");
  return s != "." && s != ".." && std::regex_match(s, kSegment);
}

Status ConfigurationError(std::string message) {
  return InvalidArgument(std::move(message), "ConfigurationError");
}

}  // namespace

Result<GitConnections> ParseGitConnections(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("not valid JSON", "");
  if (!doc.is_object()) return InvalidArgument("must be a JSON object", "");
  GitConnections out;
  for (const auto& [key, value] : doc.items()) {
    if (key != "connections" && key != "codecommit") {
      return InvalidArgument("unknown key '" + key + "' (known: connections, codecommit)", "");
    }
  }
  if (doc.contains("connections")) {
    const json& list = doc["connections"];
    if (!list.is_array()) return InvalidArgument("connections: must be a JSON array", "");
    std::set<std::string> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = "connections[" + std::to_string(i) + "]";
      PW_RETURN_IF_ERROR(CheckKeys(
          list[i], where, {"arn", "url", "webUrl", "providerType", "username", "tokenFile"}));
      GitConnection c;
      c.arn = StringAt(list[i], "arn");
      c.url = StringAt(list[i], "url");
      c.web_url = StringAt(list[i], "webUrl");
      if (list[i].contains("providerType")) c.provider_type = StringAt(list[i], "providerType");
      c.username = StringAt(list[i], "username");
      c.token_file = StringAt(list[i], "tokenFile");
      if (c.arn.empty()) return InvalidArgument(where + ": arn is required", "");
      if (!ValidArn(c.arn)) {
        return InvalidArgument(where + ": arn '" + c.arn +
                                   "' is not a connection ARN "
                                   "(arn:aws:codeconnections:REGION:ACCOUNT:connection/ID or "
                                   "arn:aws:codestar-connections:…)",
                               "");
      }
      if (!seen.insert(CanonicalArn(c.arn)).second) {
        return InvalidArgument(where + ": connection " + c.arn + " is declared twice", "");
      }
      if (c.url.empty()) return InvalidArgument(where + ".url: is required", "");
      if (c.provider_type.empty()) return InvalidArgument(where + ".providerType: is empty", "");
      PW_RETURN_IF_ERROR(CheckPlaceholders(c.url, where + ".url", {"FullRepositoryId"}));
      PW_RETURN_IF_ERROR(
          CheckPlaceholders(c.web_url, where + ".webUrl", {"FullRepositoryId", "CommitId"}));
      if (!c.token_file.empty() && c.username.empty()) c.username = "x-access-token";
      if (c.token_file.empty() && !c.username.empty()) {
        return InvalidArgument(where + ": username needs tokenFile (the file holding the token)",
                               "");
      }
      out.connections.push_back(std::move(c));
    }
  }
  if (doc.contains("codecommit")) {
    const std::string where = "codecommit";
    PW_RETURN_IF_ERROR(
        CheckKeys(doc["codecommit"], where, {"url", "webUrl", "username", "tokenFile"}));
    CodeCommitMapping m;
    m.url = StringAt(doc["codecommit"], "url");
    m.web_url = StringAt(doc["codecommit"], "webUrl");
    m.username = StringAt(doc["codecommit"], "username");
    m.token_file = StringAt(doc["codecommit"], "tokenFile");
    if (m.url.empty()) return InvalidArgument(where + ".url: is required", "");
    PW_RETURN_IF_ERROR(CheckPlaceholders(m.url, where + ".url", {"RepositoryName"}));
    PW_RETURN_IF_ERROR(
        CheckPlaceholders(m.web_url, where + ".webUrl", {"RepositoryName", "CommitId"}));
    if (!m.token_file.empty() && m.username.empty()) m.username = "x-access-token";
    if (m.token_file.empty() && !m.username.empty()) {
      return InvalidArgument(where + ": username needs tokenFile (the file holding the token)", "");
    }
    out.codecommit = std::move(m);
  }
  return out;
}

Result<GitConnections> LoadGitConnections(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseGitConnections(ss.str());
}

Status CheckGitConnectionFiles(const GitConnections& c) {
  std::vector<std::pair<std::string, std::string>> files;
  for (size_t i = 0; i < c.connections.size(); ++i) {
    files.emplace_back("connections[" + std::to_string(i) + "].tokenFile",
                       c.connections[i].token_file);
  }
  if (c.codecommit) files.emplace_back("codecommit.tokenFile", c.codecommit->token_file);
  for (const auto& [where, file] : files) {
    if (!file.empty() && access(file.c_str(), R_OK) != 0) {
      return FailedPrecondition(where + ": cannot read " + file + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

bool IsGitSource(const core::ActionDecl& a) {
  return a.type.owner == "AWS" && a.type.category == "Source" &&
         (a.type.provider == "Git" || a.type.provider == "CodeCommit" ||
          a.type.provider == "CodeStarSourceConnection");
}

bool FollowsBranch(const core::ActionDecl& a) {
  if (!IsGitSource(a)) return false;
  const char* key =
      a.type.provider == "CodeStarSourceConnection" ? "DetectChanges" : "PollForSourceChanges";
  return ConfigValue(a, key, "true") != "false";
}

Result<GitRemote> ResolveGitRemote(const GitConnections& c, const core::ActionDecl& a) {
  GitRemote r;
  if (a.type.provider == "Git") {
    r.url = ConfigValue(a, "RepositoryPath");
    r.branch = ConfigValue(a, "BranchName", "main");
    r.description = RedactUrl(r.url);
    return r;
  }
  r.branch = ConfigValue(a, "BranchName");
  if (r.branch.empty()) return ConfigurationError("BranchName is required.");
  if (a.type.provider == "CodeCommit") {
    const std::string name = ConfigValue(a, "RepositoryName");
    if (name.empty() || name.size() > 100 || !SafeSegment(name)) {
      return ConfigurationError("RepositoryName '" + name +
                                "' is not a repository name (letters, digits, '.', '_', '-'; at "
                                "most 100 characters).");
    }
    if (!c.codecommit) {
      return NotFound(
          "CodeCommit repository '" + name + "' is not mapped on this server. " + kCodeCommitHint,
          "ConfigurationError");
    }
    r.url = Replace(c.codecommit->url, "RepositoryName", name);
    r.web_url = Replace(c.codecommit->web_url, "RepositoryName", name);
    r.username = c.codecommit->username;
    r.token_file = c.codecommit->token_file;
    r.description = "CodeCommit repository " + name;
    return r;
  }
  if (a.type.provider == "CodeStarSourceConnection") {
    const std::string arn = ConfigValue(a, "ConnectionArn");
    const std::string repo = ConfigValue(a, "FullRepositoryId");
    std::vector<std::string> parts;
    for (size_t start = 0;;) {
      size_t slash = repo.find('/', start);
      parts.push_back(repo.substr(start, slash == std::string::npos ? slash : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    bool ok = parts.size() >= 2 && repo.size() <= 256;
    for (const auto& p : parts) ok = ok && SafeSegment(p);
    if (!ok) {
      return ConfigurationError("FullRepositoryId '" + repo +
                                "' is not of the form owner/repository (letters, digits, '.', "
                                "'_', '-').");
    }
    for (const auto& conn : c.connections) {
      if (!SameConnectionArn(conn.arn, arn)) continue;
      r.url = Replace(conn.url, "FullRepositoryId", repo);
      r.web_url = Replace(conn.web_url, "FullRepositoryId", repo);
      r.provider_type = conn.provider_type;
      r.username = conn.username;
      r.token_file = conn.token_file;
      r.description = "repository " + repo + " of connection " + arn;
      return r;
    }
    return NotFound("The connection " + (arn.empty() ? std::string("(no ConnectionArn)") : arn) +
                        " is not declared on this server. " + kConnectionsHint,
                    "ConfigurationError");
  }
  return ConfigurationError("Action type " + a.type.ToString() + " is not a Git source.");
}

std::string CommitWebUrl(const GitRemote& remote, const std::string& commit_id) {
  if (remote.web_url.empty()) return "";
  if (remote.web_url.find("{CommitId}") != std::string::npos) {
    return Replace(remote.web_url, "CommitId", commit_id);
  }
  std::string base = remote.web_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/commit/" + commit_id;
}

bool SameConnectionArn(std::string_view a, std::string_view b) {
  return CanonicalArn(a) == CanonicalArn(b);
}

std::string RedactUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t end = url.find('/', host);
  size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

Result<std::string> ReadGitToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot read the token file " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) return Unavailable("the token file " + path + " is empty");
  return token;
}

}  // namespace pw::engine
