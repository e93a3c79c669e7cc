#!/usr/bin/env bash
# Builds Concord and runs its main job on the embedded default: two HR systems on loopback
# synced both ways, with a report of what converged.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 with rustup (see rust-toolchain.toml)" >&2
    exit 1
fi

cargo run --locked --release --quiet -- self-check --size "${CONCORD_SIZE:-1000}"
