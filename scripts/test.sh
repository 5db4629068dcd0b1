#!/usr/bin/env bash
# Command 2: install what is needed and run every test: the host (unit, integration, end to end)
# and the plugin SDK (which lives in its own wasm workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --locked --workspace "$@"
cargo test --locked --manifest-path plugins/Cargo.toml --workspace "$@"
