#!/usr/bin/env bash
# ctest's e2e.console: the web console in Debian's Chromium, driven by
# playwright-core. Installs what is missing first (chromium and node/npm
# through scripts/install-deps --test; the npm packages of package-lock.json
# when node_modules lacks them or holds other versions), then runs the tests
# against $PW_BINARY_DIR/pipewright (default: build/).
#
# Node: bookworm's nodejs is 18.20, so every npm package here is pinned to a
# version whose `engines` accepts Node 18 (playwright-core 1.61.1 is the last
# such; 1.62 and later need Node 20; axe-core 4.14.1 needs Node 4).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

"$root/scripts/install-deps" --test
cd "$here"
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
  echo "run.sh: Node.js $(node --version) is too old; the console tests need Node 18 or newer (bookworm's nodejs)" >&2
  exit 1
fi
# Every version package-lock.json pins against the one installed (an older
# checkout may have left another, or lack one: axe-core came later).
stale="$(node -e '
  const lock = require("./package-lock.json").packages;
  for (const [k, v] of Object.entries(lock)) {
    if (!k) continue;
    let have = "";
    try { have = require("./" + k + "/package.json").version; } catch {}
    if (have !== v.version) { console.log(k); break; }
  }')"
if [ -n "$stale" ]; then
  npm ci --no-audit --no-fund
fi
exec node --test console.test.mjs auth.test.mjs
