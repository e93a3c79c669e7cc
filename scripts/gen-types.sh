#!/usr/bin/env bash
# Regenerates the UI's API types from the engine: the OpenAPI document that `concord openapi`
# prints (generated from the Rust handlers and types) and the TypeScript declarations that
# openapi-typescript (pinned in ui/package.json) makes from it. Both files are committed; CI
# runs this script and fails if either differs (`git diff --exit-code`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x ui/node_modules/.bin/openapi-typescript ]; then
    npm ci --prefix ui --no-audit --no-fund
fi
cargo run -q --locked -- openapi > ui/src/api/openapi.json
ui/node_modules/.bin/openapi-typescript ui/src/api/openapi.json -o ui/src/api/schema.d.ts
