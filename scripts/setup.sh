#!/usr/bin/env bash
# Installs what vidhook needs on a fresh Debian machine, idempotently: the wasm32-wasip2 Rust
# target (plugins), espeak-ng (local TTS) and ffmpeg/ffprobe (local preview video), and for the
# tests moto's S3-compatible server (PyPI) that the media-store tests start on loopback, Debian's
# Chromium and ChromeDriver with playwright-core (npm) for the workspace's browser tests, and
# schemathesis (PyPI), which fuzzes the API from its OpenAPI document.
# Safe to run again: each step first checks whether its work is already done.
set -euo pipefail

if ! rustup target list --installed | grep -x wasm32-wasip2 >/dev/null; then
  echo "setup: adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian's packages"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi

# The media-store tests' S3-compatible server: moto in server mode, a pip install (no compile).
if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  echo "setup: installing moto[server] from PyPI (the S3 server the media tests start)"
  python3 -m pip install --quiet 'moto[server]==5.2.1'
fi

# The workspace's browser tests: playwright-core (exactly the locked version) drives chromium.
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$here/tests/browser/node_modules/playwright-core" ]; then
  echo "setup: installing playwright-core from npm (the browser tests' driver)"
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --silent)
fi

# The API fuzzer the workspace tests run against /api/v1/openapi.json.
if ! python3 -c 'import schemathesis' >/dev/null 2>&1; then
  echo "setup: installing schemathesis from PyPI (fuzzes the API from its OpenAPI document)"
  python3 -m pip install --quiet 'schemathesis==4.32.5'
fi
