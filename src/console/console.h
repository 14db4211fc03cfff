#pragma once

// The web console: a static single-page app (HTML, CSS, vanilla JS) served at
// /console/, that reads and changes pipelines only through the public API
// (POST / with X-Amz-Target) and the action logs at /logs/<id>, like any other
// client, so it can never show something the API does not.
//
//   http::Server server({});
//   console::RegisterConsole(server);
//   server.Bind("127.0.0.1:8480"); server.Serve();   // browse http://127.0.0.1:8480/
//
// Routes added:
//   GET /            302 to /console/
//   GET /console     301 to /console/
//   GET /console/    the app (index.html)
//   GET /console/<f> an embedded file; 404 (text/plain) if there is none.
// Files carry an ETag and `Cache-Control: no-cache`, so a browser revalidates
// (If-None-Match -> 304) and always runs the console of the binary it talks to.

namespace pw::http {
class Server;
}  // namespace pw::http

namespace pw::console {

// Adds the console routes to `server`. Call before the server starts serving;
// `server` is borrowed only for the call (the handlers own no reference to it).
void RegisterConsole(http::Server& server);

}  // namespace pw::console
