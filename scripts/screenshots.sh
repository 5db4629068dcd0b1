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
find docs/workspace -name '*.png' ! -name '1-sign-in.png' ! -name '2-templates.png' \
  ! -name '3b-templates-error.png' ! -name '4b-render-page.png' ! -name '5-renders-awaiting-approval.png' \
  ! -name '5b-approve-confirmation.png' ! -name '7-costs.png' ! -name '10-phone-*.png' -delete
