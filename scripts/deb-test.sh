#!/usr/bin/env bash
# Packages the desktop app as a .deb with the Tauri bundler (the CLI's prebuilt binary from npm,
# pinned in ui/package.json), installs it with apt (which checks its dependencies), and runs the
# desktop window test on the installed /usr/bin/concord-desktop under Xvfb. CI builds the
# package in the debug profile, reusing the test build; a release package is
# `ui/node_modules/.bin/tauri build`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x ui/node_modules/.bin/tauri ]; then
    npm ci --prefix ui --no-audit --no-fund
fi
ui/node_modules/.bin/tauri build --debug --ci
deb=$(ls target/debug/bundle/deb/Concord_*_amd64.deb)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o APT::Sandbox::User=root install -y -qq --reinstall "./$deb"
test -x /usr/bin/concord-desktop
dpkg -s concord | grep -q '^Status: install ok installed'
(cd e2e && CONCORD_DESKTOP_APP=/usr/bin/concord-desktop node --test --test-concurrency=1 desktop.test.mjs)
