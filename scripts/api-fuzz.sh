#!/usr/bin/env bash
# Fuzzes the console API with schemathesis (pinned, installed into a venv under target/):
# starts `concord serve --demo` on loopback, then runs every check against its OpenAPI
# document twice, as an admin and as a viewer. Fails on any 5xx, dropped connection,
# undocumented status code, or schema-valid request refused as malformed.
# Bounded: CONCORD_API_FUZZ_SECS per role (default 75); CONCORD_API_FUZZ_ROLES picks the roles
# (default "viewer admin"). Idempotent; needs a keyring session
# (scripts/test.sh runs it under `keyctl session -`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SCHEMATHESIS_VERSION=4.32.5
secs="${CONCORD_API_FUZZ_SECS:-75}"
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --locked -q
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
./target/debug/concord serve --demo --port "$port" --db "$work/demo.db" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
admin=""
for _ in $(seq 1 300); do
    admin=$(grep -ao 'token=[0-9a-f]*' "$work/serve.log" | head -1 | cut -d= -f2 || true)
    [ -n "$admin" ] && break
    kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.2
done
[ -n "$admin" ] || { echo "api-fuzz: the console did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
base="http://127.0.0.1:$port"
viewer=$(curl -fsS -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"name":"Fuzz Viewer","role":"viewer"}' "$base/api/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fsS "$base/api/openapi.json" >"$work/openapi.json"
status=0
# The viewer first, while the demo workspace is intact; then the admin, who may change it.
for role in ${CONCORD_API_FUZZ_ROLES:-viewer admin}; do
    token=$viewer; [ "$role" = admin ] && token=$admin
    echo "api-fuzz: $role, ${secs} s, all checks"
    if ! "$venv/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml run "$work/openapi.json" \
        --url "$base" -H "Authorization: Bearer $token" --checks all \
        --max-time "$secs" --workers 2 --request-timeout 15 --max-failures 50 \
        --suppress-health-check all >"$work/$role.txt" 2>&1; then
        summary=$(sed -n '/= SUMMARY =/,$p' "$work/$role.txt")
        # A failed check, or an error talking to the console (network, timeout), fails the run.
        # A "Runtime Error" is schemathesis itself failing while it generates a case (seen here:
        # hypothesis's "inconsistent results", and CPython 3.11's "AST constructor recursion
        # depth mismatch" on the deeply nested mapping schema, in the coverage phase): no
        # request reached the console, so it is reported and does not fail the run.
        # The kinds listed under the summary's "Errors:" (its phase list marks phases too).
        errors=$(awk '/^Errors:/ { f = 1; next } /^[^ ]/ { f = 0 } f' <<<"$summary")
        if grep -q '^Failures:' <<<"$summary" || grep -v 'Runtime Error' <<<"$errors" | grep -q '[A-Za-z]'; then
            status=1
        else
            echo "api-fuzz: $role: schemathesis could not generate some cases (not a console failure):"
            grep -A1 -E '^Runtime Error' "$work/$role.txt" | cut -c1-200 | head -12
        fi
    fi
    if [ $status -eq 0 ]; then
        sed -n '/SUMMARY/,$p' "$work/$role.txt"
    else
        grep -v '^$' "$work/$role.txt" | head -600
    fi
    kill -0 $server 2>/dev/null || { echo "api-fuzz: the console died" >&2; tail -50 "$work/serve.log" >&2; exit 1; }
done
if [ $status -ne 0 ] && grep -qa "request failed" "$work/serve.log"; then
    echo "api-fuzz: the console's log of the failed requests:" >&2
    grep -a "request failed" "$work/serve.log" | sed 's/\x1b\[[0-9;]*m//g' | sort | uniq -c | head -20 >&2
fi
if grep -qa "panicked" "$work/serve.log"; then
    echo "api-fuzz: the console panicked:" >&2
    grep -a -A5 panicked "$work/serve.log" >&2
    exit 1
fi
exit $status
