#pragma once

// UTC offsets of time zones for DeploymentWindow rules: "UTC" (or empty),
// fixed offsets ("UTC+02:00", "+0530", "GMT-3"), or an IANA name read from
// the system's zoneinfo database (TZif files under /usr/share/zoneinfo, as
// Debian's tzdata installs them). Parsed zones are cached. Thread-safe.
//
//   auto off = UtcOffsetSeconds("Europe/Berlin", now);  // 3600 or 7200

#include <cstdint>
#include <string>

#include "common/status.h"

namespace pw::engine {

// The offset (local - UTC, seconds) of zone `name` at UTC second `utc`.
// kInvalidArgument naming the zone when it is malformed (a path with "..",
// characters outside [A-Za-z0-9_+-/]) or not in the database.
Result<int> UtcOffsetSeconds(const std::string& name, int64_t utc);

// Parses TZif data (versions 1-4): the offset at `utc`, using the last
// transition at or before it (the first type before the first transition).
// kInvalidArgument when `data` is not TZif. Exposed for tests.
Result<int> TzifOffset(const std::string& data, int64_t utc);

}  // namespace pw::engine
