#!/usr/bin/env bash
# What the demo (and the service) needs on a fresh Debian machine, idempotently: the
# wasm32-wasip2 Rust target (plugins and the template engine), espeak-ng (local TTS) and
# ffmpeg/ffprobe (local preview video). The tests' own tools are scripts/setup-tests.sh's.
# Safe to run again: each step first checks whether its work is already done.
set -euo pipefail

if ! rustup target list --installed | grep -x wasm32-wasip2 >/dev/null; then
  echo "setup: adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
"$(dirname "$0")/apt-install.sh" setup "${missing[@]}"
