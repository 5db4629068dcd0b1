#!/usr/bin/env bash
# Installs Debian packages by name, quietly, showing apt's output only when it fails:
# `scripts/apt-install.sh WHO PACKAGE…` (WHO names the caller in the message). Used by
# scripts/setup.sh and scripts/setup-tests.sh for what is missing.
set -euo pipefail
who="$1"
shift
[ $# -gt 0 ] || exit 0
echo "$who: installing $* from Debian's packages"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "$@"; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
