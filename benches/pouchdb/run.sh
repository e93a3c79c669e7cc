#!/usr/bin/env bash
# The same sync job on PouchDB and on Concord, one after the other in one run: prints both
# times per phase, the totals and the ratio PouchDB / Concord, PouchDB's leftover conflicts,
# and whether Concord's run ended field-merged (it fails if not). See README.md here.
#
# Environment: CONCORD_POUCH_EMPLOYEES (default 10000), CONCORD_POUCH_EDITS (default 1000),
# POUCH_BATCH_SIZE (PouchDB's replication batch, default its own), CONCORD_BENCH_DIR (where both
# sides put their stores, default the system temp dir), CARGO_TARGET_DIR as cargo reads it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONCORD_POUCH_EMPLOYEES="${CONCORD_POUCH_EMPLOYEES:-10000}"
export CONCORD_POUCH_EDITS="${CONCORD_POUCH_EDITS:-1000}"

for tool in node npm cargo; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not on PATH" >&2; exit 1; }
done

# PouchDB from npm, at the versions package-lock.json pins: installed again only when
# node_modules is missing or the lock file changed since the last install.
installed="$here/node_modules/.installed-package-lock.json"
if [[ ! -d "$here/node_modules" ]] || ! cmp -s "$here/package-lock.json" "$installed"; then
  echo "== installing PouchDB (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund)
  cp "$here/package-lock.json" "$installed"
fi

echo "== building Concord's side (cargo bench --bench pouch_job, release)"
(cd "$root" && cargo bench --bench pouch_job --no-run)

# The load average as each side starts: other work on the machine skews both sides' figures.
load() { if [[ -r /proc/loadavg ]]; then cut -d' ' -f1-3 /proc/loadavg; else uptime; fi; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo
echo "== PouchDB (load average $(load))"
(cd "$here" && node job.mjs) | tee "$out/pouchdb"
echo
echo "== Concord (load average $(load))"
(cd "$root" && cargo bench -q --bench pouch_job) | tee "$out/concord"

# The figures, from the lines both sides print.
field() { sed -n "$2" "$out/$1" | head -n 1; }
pouch_initial="$(field pouchdb 's/^pouchdb: initial sync [0-9]* employees: \([0-9.]*\) s$/\1/p')"
pouch_edits="$(field pouchdb 's/^pouchdb: [0-9]* records edited on both sides: \([0-9.]*\) s,.*/\1/p')"
pouch_conflicts="$(field pouchdb 's/.*edited on both sides: .*leftover conflicts: \([0-9]*\),.*/\1/p')"
pouch_both="$(field pouchdb 's/.*edited on both sides: .*winner holds both edits: \([0-9]*\)$/\1/p')"
concord_initial="$(field concord 's/^concord: initial sync [0-9]* employees: \([0-9.]*\) s$/\1/p')"
concord_edits="$(field concord 's/^concord: [0-9]* records edited on both sides: \([0-9.]*\) s,.*/\1/p')"
concord_merged="$(field concord 's/.*edited on both sides: .*field-merged: \([a-zA-Z]*\)$/\1/p')"
for figure in pouch_initial pouch_edits pouch_conflicts pouch_both concord_initial concord_edits concord_merged; do
  [[ -n "${!figure}" ]] || { echo "run.sh: no $figure in the output above" >&2; exit 1; }
done

echo
LC_ALL=C awk -v n="$CONCORD_POUCH_EMPLOYEES" -v e="$CONCORD_POUCH_EDITS" \
  -v pi="$pouch_initial" -v pe="$pouch_edits" -v ci="$concord_initial" -v ce="$concord_edits" '
  function row(name, p, c) {
    printf "%-38s %10.3f s %10.3f s %15.2fx\n", name, p, c, (c > 0 ? p / c : 0)
  }
  BEGIN {
    printf "%-38s %12s %12s %16s\n", "side by side", "PouchDB", "Concord", "PouchDB/Concord"
    row(sprintf("initial sync, %d employees, 2 ways", n), pi, ci)
    row(sprintf("%d records edited on both sides", e), pe, ce)
    row("total", pi + pe, ci + ce)
    print "(a ratio above 1: Concord took less time)"
  }'
echo "PouchDB: $pouch_conflicts of $CONCORD_POUCH_EDITS edited documents left with conflicts; winning revision holds both edits in $pouch_both"
echo "Concord: field-merged: $concord_merged (both edits in both systems, every edited record)"
if [[ "$concord_merged" != yes ]]; then
  exit 1
fi
