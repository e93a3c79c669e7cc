// Dev data for the UI without the demo mode: posts change events in Concord's own webhook
// format to a running `concord serve --workspace ui/dev/workspace.json` (systems whose URLs
// point at a closed port, so every write becomes a dead letter), producing records, links,
// conflicts (some four-eyes), non-owner changes, validation exceptions and an ambiguous match.
//
//   node ui/dev/seed.mjs http://127.0.0.1:8470 [employees=300] [bulk validation exceptions=0]

const base = process.argv[2] ?? "http://127.0.0.1:8470";
const n = Number(process.argv[3] ?? 300);
const bulk = Number(process.argv[4] ?? 0);
const run = Date.now().toString(36);
let seq = 0;

async function post(system, events) {
  for (let i = 0; i < events.length; i += 500) {
    const chunk = events.slice(i, i + 500).map((e) => ({ object: "employee", op: "upsert", event_key: `${run}-${seq++}`, ...e }));
    const res = await fetch(`${base}/hooks/${system}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events: chunk }) });
    if (!res.ok) throw new Error(`${system}: ${res.status} ${await res.text()}`);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const given = ["Mary Ann", "James", "Priya", "Chen", "Fatima", "Lars", "Ana", "Kwame", "Sofia", "Noah"];
const family = ["Smith", "Okafor", "Patel", "Wang", "Haddad", "Nilsson", "Silva", "Mensah", "Rossi", "Cohen"];
const depts = ["Engineering", "Finance", "People", "Sales", "Support"];
const pad = (i) => String(i).padStart(5, "0");
const phone = (i) => `415555${String(1000 + (i % 9000)).padStart(4, "0")}`;

const people = Array.from({ length: n }, (_, i) => ({
  no: `E${pad(i + 1)}`,
  given: given[i % given.length],
  family: family[Math.floor(i / given.length) % family.length],
  email: `emp${i + 1}@acme.example`,
  phone: phone(i),
  dept: depts[i % depts.length],
  cents: 6000000 + (i % 50) * 100000,
}));

console.log(`payroll: ${n} employees`);
await post(
  "payroll",
  people.map((p, i) => ({
    external_id: `P-${p.no}`,
    version: 1,
    record: { emp_no: p.no, first_name: p.given, last_name: p.family, email: p.email, phone: `+1${p.phone}`, state: 1, hire_date: `20${10 + (i % 14)}-0${1 + (i % 9)}-15`, salary_cents: p.cents, bank: { account: `DE89370400440532${pad(i)}` } },
  })),
);
await sleep(1500);
console.log(`hris: the same ${n} employees`);
await post(
  "hris",
  people.map((p, i) => ({
    external_id: `H-${p.no}`,
    version: 1,
    record: { employee_id: p.no, full_name: `${p.given} ${p.family}`, email: p.email, phone: `(415) ${p.phone.slice(3, 6)}-${p.phone.slice(6)}`, status: "Active", hire_date: `0${1 + (i % 9)}/15/20${10 + (i % 14)}`, title: "Analyst", department: p.dept, salary: (p.cents / 100).toFixed(2) },
  })),
);
await sleep(2000);

const k = Math.max(3, Math.floor(n / 10));
console.log(`conflicts on ${k} phones and ${Math.ceil(k / 2)} pay rates`);
await post("hris", people.slice(0, k).map((p, i) => ({ external_id: `H-${p.no}`, version: 2, record: { phone: `(628) 555-${String(2000 + i).padStart(4, "0")}` } })));
await post("payroll", people.slice(0, k).map((p, i) => ({ external_id: `P-${p.no}`, version: 2, record: { phone: `+1650555${String(3000 + i).padStart(4, "0")}` } })));
await post("hris", people.slice(k, k + Math.ceil(k / 2)).map((p) => ({ external_id: `H-${p.no}`, version: 2, record: { salary: ((p.cents + 500000) / 100).toFixed(2) } })));
await post("payroll", people.slice(k, k + Math.ceil(k / 2)).map((p) => ({ external_id: `P-${p.no}`, version: 2, record: { salary_cents: p.cents + 750000 } })));
console.log("non-owner changes to employment status");
await post("payroll", people.slice(2 * k, 2 * k + 5).map((p) => ({ external_id: `P-${p.no}`, version: 3, record: { state: 2 } })));
console.log("validation failures");
await post("hris", people.slice(3 * k, 3 * k + 6).map((p) => ({ external_id: `H-${p.no}`, version: 3, record: { hire_date: "13/45/2020" } })));
console.log("an ambiguous match");
await post("payroll", [
  { external_id: "P-DUP-1", version: 1, record: { emp_no: "D00001", first_name: "Alex", last_name: "Morgan", email: "shared@acme.example", state: 1 } },
  { external_id: "P-DUP-2", version: 1, record: { emp_no: "D00002", first_name: "Alex", last_name: "Morgan", email: "shared@acme.example", state: 1 } },
]);
await sleep(1000);
await post("hris", [{ external_id: "H-NEW-1", version: 1, record: { full_name: "Alex Morgan", email: "shared@acme.example", status: "Active" } }]);

if (bulk > 0) {
  console.log(`bulk: ${bulk} employees with an unreadable hire date (validation exceptions)`);
  const t0 = Date.now();
  const batch = [];
  for (let i = 0; i < bulk; i++) {
    batch.push({ external_id: `HB-${i}`, version: 1, record: { employee_id: `B${String(i).padStart(6, "0")}`, full_name: `Bulk Person${i}`, email: `bulk${i}@acme.example`, status: "Active", hire_date: "99/99/2020" } });
    if (batch.length === 5000) {
      await post("hris", batch.splice(0));
      process.stdout.write(`  ${i + 1}\r`);
    }
  }
  if (batch.length) await post("hris", batch);
  console.log(`  posted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log("done");
