#!/usr/bin/env bash
# Command 1: install what is needed, build, and run the demo end to end on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --quiet --locked -p vidhook -- demo "$@"
