// PouchDB's side of the side-by-side job (run.sh runs both sides and prints the ratio).
//
// Two durable PouchDB stores (the leveldb adapter, in a temporary directory) in this process:
//
// 1. Initial sync, two ways: half the employees are written to store A and the other half to
//    store B, then PouchDB.sync(A, B) runs until both stores hold every employee. The writes
//    are timed apart; the figure is the sync.
// 2. Edits on both sides: the same records are edited in both stores before syncing, in
//    different fields (A changes the work email, B the work phone); then PouchDB.sync(A, B)
//    again, timed.
//
// Then it reports the conflicts PouchDB leaves: documents with `_conflicts`, and how many
// winning revisions hold both edits (PouchDB keeps one revision of a document as the winner
// and the other as a conflict; it does not merge fields).
//
// Environment: CONCORD_POUCH_EMPLOYEES (default 10000), CONCORD_POUCH_EDITS (default 1000),
// POUCH_BATCH_SIZE (documents per replication batch, default PouchDB's own, 100),
// CONCORD_BENCH_DIR places the stores (default: the system temp dir).

import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const PouchDB = require('pouchdb-node');
PouchDB.plugin(require('pouchdb-adapter-leveldb'));

function count(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${value} is not a number`);
  return n;
}

const employees = Math.max(2, count('CONCORD_POUCH_EMPLOYEES', 10000));
const edits = Math.min(employees, count('CONCORD_POUCH_EDITS', 1000));
const batchSize = count('POUCH_BATCH_SIZE', 0) || undefined;

const pad = (i) => String(i).padStart(5, '0');
const two = (n) => String(n).padStart(2, '0');
const id = (i) => `E${pad(i)}`;
const phone = (digits) => `+1415555${String(digits).padStart(4, '0')}`;
const email = (i) => `person${i}@acme.example`;
const editedEmail = (i) => `person${i}.moved@acme.example`;
const editedPhone = (i) => phone((i + 5000) % 10000);

function employee(i) {
  return {
    _id: id(i),
    employee_number: id(i),
    given_name: `Given${i}`,
    family_name: `Family${i}`,
    work_email: email(i),
    work_phone: phone(i % 10000),
    employment_status: 'active',
    hire_date: `20${two(10 + (i % 15))}-${two(1 + (i % 12))}-${two(1 + (i % 28))}`,
    job_title: 'Analyst',
    department: 'Finance',
  };
}

async function bulk(db, docs) {
  for (let at = 0; at < docs.length; at += 1000) {
    const results = await db.bulkDocs(docs.slice(at, at + 1000));
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new Error(`bulkDocs failed: ${JSON.stringify(failed[0])}`);
  }
}

async function sync(a, b) {
  const options = batchSize ? { batch_size: batchSize } : {};
  const started = performance.now();
  const result = await PouchDB.sync(a, b, options);
  const seconds = (performance.now() - started) / 1000;
  for (const [direction, r] of [['A to B', result.push], ['B to A', result.pull]]) {
    if (!r.ok || r.status !== 'complete') {
      throw new Error(`replication ${direction} did not complete: ${JSON.stringify(r.errors)}`);
    }
  }
  return { seconds, written: result.push.docs_written + result.pull.docs_written };
}

async function fetchDocs(db, ids) {
  const out = [];
  for (let at = 0; at < ids.length; at += 1000) {
    const res = await db.allDocs({ keys: ids.slice(at, at + 1000), include_docs: true, conflicts: true });
    for (const row of res.rows) {
      if (!row.doc) throw new Error(`${row.key} is missing: ${JSON.stringify(row)}`);
      out.push(row.doc);
    }
  }
  return out;
}

const base = process.env.CONCORD_BENCH_DIR || tmpdir();
const dir = mkdtempSync(join(base, 'pouchdb-job-'));
const opts = { adapter: 'leveldb' };
const a = new PouchDB(join(dir, 'a'), opts);
const b = new PouchDB(join(dir, 'b'), opts);
console.log(
  `pouchdb: ${employees} employees, ${edits} edited on both sides, stores in ${dir} ` +
    `(leveldb adapter, node ${process.version}, replication batch ${batchSize ?? 'default'})`,
);

try {
  // 1. Half the employees in A, half in B, then sync.
  const half = Math.floor(employees / 2);
  let started = performance.now();
  await bulk(a, Array.from({ length: half }, (_, i) => employee(i)));
  await bulk(b, Array.from({ length: employees - half }, (_, i) => employee(half + i)));
  const seeding = (performance.now() - started) / 1000;
  console.log(`pouchdb: writing ${employees} employees into the two stores (not timed below): ${seeding.toFixed(3)} s`);
  const initial = await sync(a, b);
  const [infoA, infoB] = [await a.info(), await b.info()];
  if (infoA.doc_count !== employees || infoB.doc_count !== employees) {
    throw new Error(`after the initial sync A holds ${infoA.doc_count} and B ${infoB.doc_count}, not ${employees}`);
  }
  console.log(`pouchdb: initial sync ${employees} employees: ${initial.seconds.toFixed(3)} s`);

  // 2. The same records edited in both stores, in different fields, then sync.
  const indexes = Array.from({ length: edits }, (_, k) => Math.floor((k * employees) / edits));
  const ids = indexes.map(id);
  started = performance.now();
  const inA = await fetchDocs(a, ids);
  const inB = await fetchDocs(b, ids);
  await bulk(a, inA.map((doc, k) => ({ ...doc, work_email: editedEmail(indexes[k]) })));
  await bulk(b, inB.map((doc, k) => ({ ...doc, work_phone: editedPhone(indexes[k]) })));
  const editing = (performance.now() - started) / 1000;
  console.log(`pouchdb: editing ${edits} records in each store (not timed below): ${editing.toFixed(3)} s`);
  const second = await sync(a, b);

  // What PouchDB leaves: conflicts, and winners holding one edit each.
  const report = [];
  for (const [name, db] of [['A', a], ['B', b]]) {
    const docs = await fetchDocs(db, ids);
    let conflicted = 0;
    let both = 0;
    let emailOnly = 0;
    let phoneOnly = 0;
    docs.forEach((doc, k) => {
      if (doc._conflicts?.length) conflicted += 1;
      const hasEmail = doc.work_email === editedEmail(indexes[k]);
      const hasPhone = doc.work_phone === editedPhone(indexes[k]);
      if (hasEmail && hasPhone) both += 1;
      else if (hasEmail) emailOnly += 1;
      else if (hasPhone) phoneOnly += 1;
    });
    report.push({ name, conflicted, both, emailOnly, phoneOnly, winners: docs.map((d) => d._rev) });
  }
  const [ra, rb] = report;
  const sameWinners = ra.winners.every((rev, k) => rev === rb.winners[k]);
  console.log(
    `pouchdb: ${edits} records edited on both sides: ${second.seconds.toFixed(3)} s, ` +
      `leftover conflicts: ${ra.conflicted}, winner holds both edits: ${ra.both}`,
  );
  for (const r of report) {
    console.log(
      `pouchdb: store ${r.name}: ${r.conflicted} of ${edits} edited documents have _conflicts; ` +
        `winning revision holds both edits in ${r.both}, only the email edit in ${r.emailOnly}, ` +
        `only the phone edit in ${r.phoneOnly}`,
    );
  }
  console.log(`pouchdb: both stores picked the same winning revisions: ${sameWinners ? 'yes' : 'no'}`);
} finally {
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
}
