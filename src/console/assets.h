#pragma once

// The web console's static files (src/console/assets/), embedded into the
// binary at build time by embed_assets.cmake. Immutable after start-up:
// every function here is thread-safe.
//
//   if (const Asset* a = FindAsset("console.js")) Send(a->body, a->content_type);

#include <string>
#include <string_view>
#include <vector>

namespace pw::console {

// One embedded file as generated: its name in assets/ and its bytes.
struct RawAsset {
  std::string_view name;
  std::string_view body;
};

// Defined in the generated console_assets_data.cc; sorted by name. The views
// point into static storage and live as long as the program.
const std::vector<RawAsset>& EmbeddedAssetsData();

// An embedded file ready to serve.
struct Asset {
  std::string_view name;
  std::string_view body;
  std::string_view content_type;
  std::string etag;  // A strong validator: quoted hash of the body.
};

// Returns the asset named `name` ("index.html", "console.js"), or nullptr if
// there is none. The result lives as long as the program.
const Asset* FindAsset(std::string_view name);

// Returns the Content-Type to send for a file name, chosen by its extension;
// "application/octet-stream" when the extension is unknown.
std::string_view ContentTypeFor(std::string_view name);

}  // namespace pw::console
