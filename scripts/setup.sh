#!/usr/bin/env bash
# Installs what Concord needs on a Debian machine, idempotently: the kernel keyring tools (the
# OS keychain on a headless Linux machine) and Node.js/npm for the third-party test server.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v keyctl >/dev/null 2>&1 || need+=(keyutils)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get -o APT::Sandbox::User=root update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o APT::Sandbox::User=root install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 with rustup (see rust-toolchain.toml)" >&2
    exit 1
fi
# json-server, pinned by tests/fixtures/json-server/package-lock.json: the third-party REST system
# the integration tests (tests/json_server.rs) run against.
if [ ! -x tests/fixtures/json-server/node_modules/.bin/json-server ]; then
    npm ci --prefix tests/fixtures/json-server --no-audit --no-fund
fi
