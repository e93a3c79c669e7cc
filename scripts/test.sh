#!/usr/bin/env bash
# Sets up everything the tests need (idempotent) and runs all of them: formatting, lints of the
# engine and the desktop shell, generated-type freshness, the UI's type check, unit tests and
# build, the engine's unit, property, fuzz, integration, crash-safety, convergence and demo tests,
# a schemathesis run against the console API, the end-to-end tests (the console in headless Chromium, the desktop window under Xvfb),
# and the desktop .deb: built by the Tauri bundler, installed, and launched under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --desktop

# A run from a clean checkout gains nothing from incremental compilation, whose caches would
# take gigabytes of disk beside the build itself.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== format"
cargo fmt --all -- --check
echo "== generated API types and workspace schema are current"
bash scripts/gen-types.sh
git diff --exit-code -- ui/src/api docs/workspace.schema.json docs/configuration.md
echo "== ui"
(cd ui && npm run typecheck && npm test && npm run build)
echo "== lints"
# The desktop shell embeds ui/dist, so it is linted after the UI is built.
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== tests"
# A session keyring makes the OS keychain usable on a headless machine.
keyctl session - cargo test --locked
echo "== console API fuzz (schemathesis against the demo, as a viewer and as an admin)"
keyctl session - bash scripts/api-fuzz.sh
echo "== end to end"
bash e2e/run.sh
echo "== desktop package (.deb built by the Tauri bundler, installed, launched under Xvfb)"
bash scripts/deb-test.sh
