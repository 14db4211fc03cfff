#!/usr/bin/env bash
# ctest's e2e.console: the web console in Debian's Chromium, driven by
# playwright-core. Installs what is missing first (chromium and node/npm
# through scripts/install-deps --test; the npm package when node_modules lacks
# it), then runs the tests against $PW_BINARY_DIR/pipewright (default: build/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

"$root/scripts/install-deps" --test
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
  npm install --no-audit --no-fund
fi
exec node --test console.test.mjs auth.test.mjs
