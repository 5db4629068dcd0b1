#!/usr/bin/env bash
# Fuzzes every inbound parser and verifier (host/fuzz/fuzz_targets/: each CMS's webhook, Standard
# Webhooks, the provider's webhook, the Markdown front matter, the config loader, templates, media
# requests) for SECONDS each (default 60) with cargo-fuzz (libFuzzer + AddressSanitizer), and
# prints executions and crashes per target. Needs rustup: the nightly toolchain, its wasm32-wasip2
# target (the host's build.rs builds the bundled plugins) and cargo-fuzz are installed here if
# missing. A crash leaves its input in host/fuzz/artifacts/TARGET/ and makes the script fail;
# `cargo +nightly fuzz run TARGET FILE` (in host/fuzz) replays it; each crash found becomes a unit
# test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

command -v rustup >/dev/null || { echo "fuzzing needs rustup (for the nightly toolchain)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly's -Z flags; the host's build.rs also builds the bundled plugins for
# wasm32-wasip2 with the same toolchain. Where nightly or its wasm target cannot be installed
# (a pinned nightly whose components are gone from the mirror), the stable toolchain is used
# with RUSTC_BOOTSTRAP=1, which unlocks the same -Z flags; the script says which it used.
toolchain=nightly
if ! { rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal; } ||
   ! { rustup +nightly target list --installed | grep -qx wasm32-wasip2 ||
       rustup +nightly target add wasm32-wasip2 >/dev/null 2>&1; }; then
  toolchain=stable
  export RUSTC_BOOTSTRAP=1
fi
echo "fuzz: building with the $toolchain toolchain${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"

cd host/fuzz
cargo "+$toolchain" fuzz build
mkdir -p logs
printf '%-24s %14s %8s\n' target executions crashes > logs/summary.txt
status=0
for target in $(cargo "+$toolchain" fuzz list); do
  mkdir -p "corpus/$target" "seeds/$target"
  echo "== $target (${seconds} s)"
  if cargo "+$toolchain" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"logs/$target.log" 2>&1; then
    crashes=0
  else
    crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    [ "$crashes" -gt 0 ] || crashes="error (logs/$target.log)"
    status=1
  fi
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' | tail -1)
  printf '%-24s %14s %8s\n' "$target" "${executions:-?}" "$crashes" >> logs/summary.txt
done
cat logs/summary.txt
exit "$status"
