#!/usr/bin/env bash
# Regenerates what is generated from the engine's types: the OpenAPI document that
# `concord openapi` prints (from the Rust handlers and types), the TypeScript declarations that
# openapi-typescript (pinned in ui/package.json) makes from it, and the JSON Schema of
# workspace files (`concord workspace schema`) with the configuration reference made from it
# (`concord workspace reference`). All are committed; CI runs this script and
# fails if any differs (`git diff --exit-code`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x ui/node_modules/.bin/openapi-typescript ]; then
    npm ci --prefix ui --no-audit --no-fund
fi
cargo run -q --locked -- openapi > ui/src/api/openapi.json
ui/node_modules/.bin/openapi-typescript ui/src/api/openapi.json -o ui/src/api/schema.d.ts
cargo run -q --locked -- workspace schema > docs/workspace.schema.json
cargo run -q --locked -- workspace reference > docs/configuration.md
