#!/usr/bin/env bash
# Builds Concord and runs its main job on the embedded default: two HR systems on loopback
# synced both ways, with a report of what converged.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

cargo run --locked --release --quiet -- self-check --size "${CONCORD_SIZE:-1000}"
