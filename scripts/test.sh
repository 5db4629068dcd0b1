#!/usr/bin/env bash
# Command 2: install what is needed and run every test: the host (unit, integration, end to end,
# a real WordPress) on SQLite, the integration suites again and the chaos run on PostgreSQL (when
# a server answers on 127.0.0.1:5432, or at VIDHOOK_TEST_POSTGRES), and the plugin SDK (its own
# wasm workspace). The host's tests run under cargo-nextest (.config/nextest.toml): a process per
# test, suites side by side, a hung test stopped after 10 minutes. Arguments go to nextest
# (a filter: `scripts/test.sh providers`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-tests.sh
scripts/setup-wordpress.sh
cargo nextest run --locked --workspace "$@"
cargo test --locked --manifest-path plugins/Cargo.toml --workspace

pg="${VIDHOOK_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
if command -v pg_isready >/dev/null && pg_isready -q -d "$pg/postgres"; then
  # The suites whose outcome rests on what the store does (claims and leases, payment records,
  # dedupe and self-trigger suppression, cursors, runs, media retention, the workspace's rows).
  # Those that test what happens outside the store (the plugin sandbox, speech, the outbound
  # guard, secrets, the browser over the same API) ran on SQLite above and are not repeated: on
  # 2 cores the repeat cost about three and a half minutes of CI for no path the database decides.
  echo "== the store-bound integration suites again, on PostgreSQL ($pg)"
  # The workspace's API and SSE too; its browser and fuzzing run are not repeated.
  VIDHOOK_TEST_POSTGRES="$pg" cargo nextest run --locked -p vidhook \
    --test e2e --test ingress --test providers --test failover --test generation --test paid_once --test durability \
    --test cms --test catch_up --test wordpress --test runs --test operations --test digests --test media \
    --test workspace --test editing --no-tests=pass "$@"
  echo "== the chaos run: 3 processes on one PostgreSQL, 1,000 events, SIGKILLs (tests/chaos.rs)"
  VIDHOOK_TEST_POSTGRES="$pg" cargo test --locked -p vidhook --test chaos -- --seed 1 --events 1000
  # Each test made its own database; drop them.
  psql -q -d "$pg/postgres" -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'vidhook_t_%'" |
    while read -r db; do psql -q -d "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null; done
else
  echo "== PostgreSQL not reachable at $pg: the PostgreSQL pass is skipped"
fi
