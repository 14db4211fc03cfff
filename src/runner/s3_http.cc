#include "runner/s3_http.h"

namespace pw::runner {

std::optional<S3Endpoint> ParseS3Endpoint(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  std::string scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  std::string rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  S3Endpoint e;
  std::string authority = rest.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  if (authority.empty()) return std::nullopt;
  e.host_header = authority;
  std::string host = authority;
  int port = scheme == "https" ? 443 : 80;
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    std::string digits = authority.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    port = std::stoi(digits);
    host = authority.substr(0, colon);
  }
  e.origin = scheme + "://" + host + ":" + std::to_string(port);
  return e;
}

std::string S3XmlField(const std::string& xml, const std::string& tag) {
  auto open = xml.find("<" + tag + ">");
  if (open == std::string::npos) return "";
  open += tag.size() + 2;
  auto close = xml.find("</" + tag + ">", open);
  if (close == std::string::npos) return "";
  return xml.substr(open, close - open);
}

Status S3ErrorFrom(int status, const std::string& body, const std::string& what) {
  std::string code = S3XmlField(body, "Code");
  std::string message = S3XmlField(body, "Message");
  if (code.empty()) code = std::to_string(status);
  if (message.empty()) message = "HTTP " + std::to_string(status);
  message = what + ": " + code + ": " + message;
  if (status == 404) return NotFound(message, code);
  if (status == 403) return FailedPrecondition(message, code);
  if (status >= 500) return Unavailable(message, code);
  return InvalidArgument(message, code);
}

}  // namespace pw::runner
