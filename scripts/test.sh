#!/usr/bin/env bash
# Sets up everything the tests need (idempotent) and runs all of them: formatting, lints,
# unit, property, integration, crash-safety and convergence tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== format"
cargo fmt --all -- --check
echo "== lints"
cargo clippy --locked --all-targets -- -D warnings
echo "== tests"
# A session keyring makes the OS keychain usable on a headless machine.
keyctl session - cargo test --locked
