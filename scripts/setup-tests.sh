#!/usr/bin/env bash
# What the tests need beyond scripts/setup.sh, idempotently: Debian's Chromium and ChromeDriver
# with playwright-core (npm, the locked version) for the workspace's browser tests, moto's
# S3-compatible server that the media-store tests start on loopback, schemathesis, which
# fuzzes the API from its OpenAPI document, and the TypeScript and Python plugin toolchains
# (jco with componentize-js from plugins/package-lock.json, componentize-py from
# plugins/requirements.txt by hash) that build the TypeScript and Python plugins the tests run.
# The demo needs none of them.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
"$(dirname "$0")/apt-install.sh" setup-tests "${missing[@]}"

# The media-store tests' S3-compatible server: moto in server mode, a pip install (no compile).
if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  echo "setup: installing moto[server] from PyPI (the S3 server the media tests start)"
  python3 -m pip install --quiet 'moto[server]==5.2.1'
fi

# The workspace's browser tests: playwright-core (exactly the locked version) drives chromium;
# axe-core checks each screen for accessibility violations.
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$here/tests/browser/node_modules/playwright-core" ] || [ ! -d "$here/tests/browser/node_modules/axe-core" ]; then
  echo "setup: installing playwright-core and axe-core from npm (the browser tests' driver and checker)"
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --silent)
fi

# The API fuzzer the workspace tests run against /api/v1/openapi.json.
if ! python3 -c 'import schemathesis' >/dev/null 2>&1; then
  echo "setup: installing schemathesis from PyPI (fuzzes the API from its OpenAPI document)"
  python3 -m pip install --quiet 'schemathesis==4.32.5'
fi

# The plugin toolchains, pinned and locked, in plugins/ (where `vidhook plugin build` finds them
# for every plugin below it).
if [ ! -f "$here/plugins/node_modules/@bytecodealliance/jco/package.json" ]; then
  echo "setup: installing jco and componentize-js from npm (builds the TypeScript plugins)"
  (cd "$here/plugins" && npm ci --no-audit --no-fund --silent)
fi
if [ ! -x "$here/plugins/.venv/bin/componentize-py" ]; then
  echo "setup: installing componentize-py from PyPI by hash (builds the Python plugins)"
  python3 -m venv "$here/plugins/.venv"
  "$here/plugins/.venv/bin/pip" install --quiet --require-hashes -r "$here/plugins/requirements.txt"
fi

# The test runner: cargo-nextest runs each test in a process of its own, tests of different suites
# side by side (cargo test runs one suite binary after another, leaving a core idle behind each
# suite's longest test).
# Built from crates.io (the pinned version, its lockfile) only when it is missing.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest 0.9.143 from crates.io (runs the tests)"
  cargo install --locked cargo-nextest@0.9.143
fi
