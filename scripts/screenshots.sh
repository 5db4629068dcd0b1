#!/usr/bin/env bash
# Refreshes the README's pictures of the workspace: the browser test (tests/workspace_browser.rs)
# takes them at 1280 px and on a 390 px phone as it goes; here it writes them to docs/workspace/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-tests.sh
rm -rf docs/workspace
mkdir -p docs/workspace
VIDHOOK_SCREENSHOTS="$PWD/docs/workspace" cargo test --locked -p vidhook --test workspace_browser editors
# Only the pictures the README shows are kept.
for png in docs/workspace/*.png; do
  grep -qF "($png)" README.md || rm "$png"
done
