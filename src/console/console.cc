#include "console/console.h"

#include <httplib.h>

#include <string>

#include "console/assets.h"

namespace pw::console {
namespace {

// Same-origin only: the console loads nothing from elsewhere and runs no
// inline script, so an injected string can never become code.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'";

void ServeAsset(const httplib::Request& req, httplib::Response& res, const std::string& name) {
  const Asset* a = FindAsset(name.empty() ? "index.html" : name);
  res.set_header("X-Content-Type-Options", "nosniff");
  if (a == nullptr) {
    res.status = 404;
    res.set_content("no such console file: " + name + "\n", "text/plain; charset=utf-8");
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("ETag", a->etag);
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  if (req.get_header_value("If-None-Match") == a->etag) {
    res.status = 304;
    return;
  }
  res.set_content(std::string(a->body), std::string(a->content_type));
}

}  // namespace

void RegisterConsole(httplib::Server& server) {
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/console/", 302);
  });
  server.Get("/console", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/console/", 301);
  });
  server.Get(R"(/console/([A-Za-z0-9._-]*))",
             [](const httplib::Request& req, httplib::Response& res) {
               ServeAsset(req, res, req.matches[1].str());
             });
}

}  // namespace pw::console
