#!/usr/bin/env bash
# Installs what vidhook needs on a fresh Debian machine, idempotently:
# the wasm32-wasip2 Rust target (plugins), espeak-ng (local TTS) and ffmpeg (local preview video).
# Safe to run again: every step first checks whether its work is already done.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
