#!/usr/bin/env bash
# Sets up everything the tests need (idempotent) and runs all of them: formatting, lints,
# unit, property, integration, crash-safety and convergence tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 with rustup (see rust-toolchain.toml)" >&2
    exit 1
fi

echo "== format"
cargo fmt --all -- --check
echo "== lints"
cargo clippy --locked --all-targets -- -D warnings
echo "== tests"
cargo test --locked
