#!/usr/bin/env bash
# End-to-end tests: the console in Debian's Chromium and the Tauri window under Xvfb.
# Idempotent; exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
for bin in /usr/bin/chromium /usr/bin/Xvfb /usr/bin/WebKitWebDriver /usr/bin/keyctl; do
  [ -x "$bin" ] || { echo "e2e: $bin is missing (apt-get install chromium xvfb webkit2gtk-driver keyutils)" >&2; exit 1; }
done
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked
npm ci --prefix e2e --no-audit --no-fund
[ -d ui/node_modules ] || npm ci --prefix ui --no-audit --no-fund
# Always rebuilt: a stale bundle would test yesterday's UI (and the desktop app embeds it).
(cd ui && npm run build)
cargo build --locked --workspace
cd e2e
node --test --test-concurrency=1 browser.test.mjs desktop.test.mjs
