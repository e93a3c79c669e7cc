#!/usr/bin/env bash
# Installs what Concord needs on a Debian machine, idempotently:
# - the kernel keyring tools (the OS keychain on a headless Linux machine) and Node.js/npm;
# - json-server, scim2-server and PostgreSQL 15 (pinned where the registry allows) for the
#   third-party integration tests, and Python's venv for the console API fuzz run (schemathesis,
#   pinned, installed by scripts/api-fuzz.sh);
# - the UI's packages;
# - with --desktop: the Tauri build and test prerequisites (WebKitGTK, appindicator, Xvfb,
#   WebKitWebDriver, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

desktop=false
[ "${1:-}" = "--desktop" ] && desktop=true

need=()
command -v keyctl >/dev/null 2>&1 || need+=(keyutils)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The console API fuzz run (scripts/api-fuzz.sh) installs schemathesis into a venv.
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
# PostgreSQL 15: the sql connector's integration tests start a throwaway cluster of their own.
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
if $desktop; then
    for pkg in libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev \
               librsvg2-dev xvfb imagemagick webkit2gtk-driver chromium; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
fi
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
# scim2-server, pinned with its dependencies by tests/fixtures/scim2-server/requirements.txt: the
# third-party SCIM 2.0 server the scim connector's integration tests (tests/scim_server.rs) run
# against.
if [ ! -x target/scim2-venv/bin/scim2-server ]; then
    rm -rf target/scim2-venv
    python3 -m venv target/scim2-venv
    target/scim2-venv/bin/pip install --quiet --disable-pip-version-check \
        -r tests/fixtures/scim2-server/requirements.txt
fi
if [ ! -d ui/node_modules ]; then
    npm ci --prefix ui --no-audit --no-fund
fi
