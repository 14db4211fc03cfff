#include "console/console.h"

#include <string>

#include "console/assets.h"
#include "http/server.h"

namespace pw::console {
namespace {

// Same-origin only: the console loads nothing from elsewhere and runs no
// inline script, so an injected string can never become code.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'";

void ServeAsset(const http::Request& req, http::Response& res, const std::string& name) {
  const Asset* a = FindAsset(name.empty() ? "index.html" : name);
  res.SetHeader("X-Content-Type-Options", "nosniff");
  if (a == nullptr) {
    res.status = 404;
    res.SetHeader("Content-Type", "text/plain; charset=utf-8");
    res.body = "no such console file: " + name + "\n";
    return;
  }
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("ETag", a->etag);
  res.SetHeader("Referrer-Policy", "no-referrer");
  res.SetHeader("Content-Security-Policy", kContentSecurityPolicy);
  if (req.Header("If-None-Match") == a->etag) {
    res.status = 304;
    return;
  }
  res.SetHeader("Content-Type", std::string(a->content_type));
  res.body = std::string(a->body);
}

}  // namespace

void RegisterConsole(http::Server& server) {
  // The app's files are public (they hold no data); every call it makes to
  // the API is authenticated like any other client's.
  http::RouteOptions pub;
  pub.auth = http::AuthMode::kPublic;
  auto redirect = [](int status) {
    return [status](const http::Request&, http::Response& res) {
      res.status = status;
      res.SetHeader("Location", "/console/");
    };
  };
  server.Route("GET", "/", pub, redirect(302));
  server.Route("GET", "/console", pub, redirect(301));
  server.Route(
      "GET", R"(/console/([A-Za-z0-9._-]*))", pub,
      [](const http::Request& req, http::Response& res) { ServeAsset(req, res, req.params[0]); });
}

}  // namespace pw::console
