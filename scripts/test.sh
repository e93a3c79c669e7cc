#!/usr/bin/env bash
# Sets up everything the tests need (idempotent) and runs all of them: formatting, lints,
# generated-type freshness, the UI's type check, unit tests and build, and the engine's unit,
# property, integration, crash-safety, convergence and demo tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== format"
cargo fmt --all -- --check
echo "== lints"
cargo clippy --locked --all-targets -- -D warnings
echo "== generated API types are current"
bash scripts/gen-types.sh
git diff --exit-code -- ui/src/api
echo "== ui"
(cd ui && npm run typecheck && npm test && npm run build)
echo "== tests"
# A session keyring makes the OS keychain usable on a headless machine.
keyctl session - cargo test --locked
