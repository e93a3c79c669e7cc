#!/usr/bin/env bash
# Concord's main job on its embedded default, the demo workspace: two HR systems (Acme HRIS and
# Acme Payroll) on loopback, seeded with employees, synced both ways while people edit them.
# With a display it opens the desktop app; without one it serves the console and prints the
# address to open in a browser.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DISPLAY:-}" ]; then
    bash scripts/setup.sh --desktop
else
    bash scripts/setup.sh
fi
(cd ui && npm run build >/dev/null)

if [ -n "${DISPLAY:-}" ]; then
    cargo build --locked --release -p concord-desktop
    exec keyctl session - target/release/concord-desktop --demo
fi
cargo build --locked --release --quiet
echo "No display: serving the console; open the address below in a browser (Ctrl-C stops)."
exec keyctl session - target/release/concord serve --demo --port "${CONCORD_PORT:-8470}"
