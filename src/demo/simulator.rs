//! People at work: edits made in the systems' own screens over time, as HR and payroll clerks,
//! IT and employees make them. Promotions, transfers, moves, new phones, raises, leave,
//! terminations and hires in the HRIS; bank details, deductions, phones, addresses and pay
//! adjustments in payroll; desk phones in the directory. Some are the hard cases a sync engine exists for: both systems
//! changing one salary at once (a conflict for a steward), both changing one phone (the later
//! wins), a hire date typed as "13/45/2024" (rejected on the way in), a hire entered in payroll
//! without a last name (cannot be created in the HRIS), a phone or a salary payroll refuses (a
//! dead letter), payroll renaming someone the HRIS owns (reverted), and the HRIS changing a work
//! e-mail the directory owns (held for a steward).
//!
//! The sequence of edits is fixed by the seed. The hard cases come early, at fixed steps, so
//! that even a short run shows each of them once; after that they recur at random, rarely.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::directory::Directory;
use super::hris::Hris;
use super::payroll::Payroll;
use super::people::{
    self, DEPARTMENTS, GIVEN_NAMES, MEDICAL_PLANS, account_number, e164, payroll_record,
    phone_digits, random_address, round_salary, routing_number, typed_phone,
};

/// What the simulator can do in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edit {
    Promotion,
    Transfer,
    HrisPhone,
    HrisMove,
    HrisRaise,
    Leave,
    Termination,
    HrisHire,
    PreferredName,
    BankChange,
    PayrollPhone,
    PayrollMove,
    RetirementChange,
    MedicalPlanChange,
    PayrollAdjustment,
    PayrollHire,
    /// Both systems change one salary at once: a conflict a steward resolves.
    ConcurrentSalary,
    /// Both systems change one phone at once: the later write wins.
    ConcurrentPhone,
    /// The HRIS screen takes a hire date of "13/45/2024": refused on the way in.
    InvalidHireDate,
    /// Payroll adds a hire without a last name: cannot be created in the HRIS.
    PayrollHireWithoutLastName,
    /// The HRIS gets a UK phone number: payroll refuses it (422), a dead letter.
    ForeignPhone,
    /// The HRIS gets a salary above payroll's limit: payroll refuses it (422), a dead letter.
    SalaryOverCap,
    /// Payroll renames someone; the HRIS owns names, so the engine puts the name back.
    PayrollRename,
    /// Someone's desk phone changes in the directory, which owns work phones.
    DirectoryPhone,
    /// The HRIS changes a work e-mail, which the directory owns: held for a steward.
    HrisEmail,
}

impl Edit {
    pub fn label(self) -> &'static str {
        match self {
            Self::Promotion => "promotion (HRIS)",
            Self::Transfer => "transfer (HRIS)",
            Self::HrisPhone => "new phone (HRIS)",
            Self::HrisMove => "home move (HRIS)",
            Self::HrisRaise => "raise (HRIS)",
            Self::Leave => "leave starts or ends (HRIS)",
            Self::Termination => "termination (HRIS)",
            Self::HrisHire => "hire (HRIS)",
            Self::PreferredName => "preferred name (HRIS)",
            Self::BankChange => "bank details (payroll)",
            Self::PayrollPhone => "new phone (payroll)",
            Self::PayrollMove => "home move (payroll)",
            Self::RetirementChange => "401(k) deferral (payroll)",
            Self::MedicalPlanChange => "medical plan (payroll)",
            Self::PayrollAdjustment => "pay adjustment (payroll)",
            Self::PayrollHire => "hire (payroll)",
            Self::ConcurrentSalary => "salary changed in both at once",
            Self::ConcurrentPhone => "phone changed in both at once",
            Self::InvalidHireDate => "invalid hire date typed (HRIS)",
            Self::PayrollHireWithoutLastName => "hire without last name (payroll)",
            Self::ForeignPhone => "UK phone number (HRIS)",
            Self::SalaryOverCap => "salary above payroll's limit (HRIS)",
            Self::PayrollRename => "rename in payroll (HRIS owns names)",
            Self::DirectoryPhone => "new desk phone (directory)",
            Self::HrisEmail => "e-mail changed in the HRIS (the directory owns it)",
        }
    }
}

/// Ordinary edits and how often each happens, relative to the others.
const ORDINARY: &[(Edit, u32)] = &[
    (Edit::Promotion, 12),
    (Edit::Transfer, 6),
    (Edit::HrisPhone, 8),
    (Edit::HrisMove, 7),
    (Edit::HrisRaise, 8),
    (Edit::Leave, 2),
    (Edit::Termination, 3),
    (Edit::HrisHire, 3),
    (Edit::PreferredName, 3),
    (Edit::BankChange, 7),
    (Edit::PayrollPhone, 5),
    (Edit::PayrollMove, 4),
    (Edit::RetirementChange, 5),
    (Edit::MedicalPlanChange, 3),
    (Edit::PayrollAdjustment, 3),
    (Edit::PayrollHire, 2),
    (Edit::ConcurrentSalary, 2),
    (Edit::ConcurrentPhone, 2),
    (Edit::InvalidHireDate, 1),
    (Edit::PayrollHireWithoutLastName, 1),
    (Edit::ForeignPhone, 1),
    (Edit::SalaryOverCap, 1),
    (Edit::PayrollRename, 1),
    (Edit::DirectoryPhone, 4),
    (Edit::HrisEmail, 1),
];

/// The hard cases, at fixed early steps (1-based), so a short run shows each once.
const SCRIPTED: &[(u64, Edit)] = &[
    (2, Edit::ConcurrentSalary),
    (4, Edit::InvalidHireDate),
    (6, Edit::ForeignPhone),
    (8, Edit::PayrollHireWithoutLastName),
    (10, Edit::ConcurrentPhone),
    (12, Edit::SalaryOverCap),
    (14, Edit::PayrollRename),
    (16, Edit::HrisEmail),
];

/// What the simulator has done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimStats {
    pub edits: u64,
    pub by_kind: BTreeMap<Edit, u64>,
    /// Employee numbers of the hard cases, by kind (to point at them in the console).
    pub cases: BTreeMap<Edit, Vec<String>>,
}

pub(crate) struct Simulator {
    hris: Hris,
    payroll: Payroll,
    directory: Directory,
    rng: StdRng,
    next_number: usize,
    used_emails: Vec<String>,
    /// People in a hard case: ordinary edits leave them alone, so each case stays clear.
    protected: BTreeSet<String>,
    step: u64,
    stats: Arc<Mutex<SimStats>>,
}

fn text(record: &Map<String, Value>, key: &str) -> Option<String> {
    record.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl Simulator {
    pub(crate) fn new(
        hris: Hris,
        payroll: Payroll,
        directory: Directory,
        seed: u64,
        next_number: usize,
        used_emails: Vec<String>,
        stats: Arc<Mutex<SimStats>>,
    ) -> Self {
        Self {
            hris,
            payroll,
            directory,
            rng: StdRng::seed_from_u64(seed ^ 0x5_1A17_0A7E),
            next_number,
            used_emails,
            protected: BTreeSet::new(),
            step: 0,
            stats,
        }
    }

    /// Makes `edits_per_sec` edits a second until cancelled.
    pub(crate) async fn run(mut self, edits_per_sec: f64, cancel: CancellationToken) {
        if !(edits_per_sec.is_finite() && edits_per_sec > 0.0) {
            return;
        }
        let period = Duration::from_secs_f64((1.0 / edits_per_sec).clamp(0.001, 3600.0));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => self.step(),
            }
        }
    }

    /// One edit.
    pub(crate) fn step(&mut self) {
        self.step += 1;
        let kind = SCRIPTED
            .iter()
            .find(|(at, _)| *at == self.step)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| self.pick_kind());
        if let Some(who) = self.apply(kind) {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            stats.edits += 1;
            *stats.by_kind.entry(kind).or_default() += 1;
            if SCRIPTED.iter().any(|(_, k)| *k == kind) {
                stats.cases.entry(kind).or_default().push(who);
            }
        }
    }

    fn pick_kind(&mut self) -> Edit {
        let total: u32 = ORDINARY.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.gen_range(0..total);
        for (kind, weight) in ORDINARY {
            if roll < *weight {
                return *kind;
            }
            roll -= weight;
        }
        Edit::Promotion
    }

    /// An active HRIS worker in both systems and in no hard case: (worker id, employee number,
    /// payroll id, HRIS record).
    fn someone(&mut self) -> Option<(String, String, String, Map<String, Value>)> {
        let candidates: Vec<(String, Map<String, Value>)> = self
            .hris
            .records()
            .into_iter()
            .filter(|(_, r)| {
                text(r, "status").as_deref() == Some("Active")
                    && text(r, "employee_id").is_some_and(|e| !self.protected.contains(&e))
            })
            .collect();
        for _ in 0..20 {
            let (id, record) = candidates.choose(&mut self.rng)?.clone();
            let number = text(&record, "employee_id")?;
            if let Some((pid, _)) = self.payroll.by_employee(&number) {
                return Some((id, number, pid, record));
            }
        }
        None
    }

    fn new_number(&mut self) -> String {
        let n = people::employee_number(self.next_number);
        self.next_number += 1;
        n
    }

    fn department_head(&self, department: &str) -> Option<String> {
        let head = DEPARTMENTS.iter().find(|d| d.name == department)?.head;
        self.hris
            .records()
            .into_iter()
            .find(|(_, r)| {
                text(r, "job_title").as_deref() == Some(head)
                    && text(r, "status").as_deref() != Some("Terminated")
            })
            .and_then(|(_, r)| text(&r, "employee_id"))
    }

    /// Does one edit; returns the employee number it was about, or None if nobody fit.
    fn apply(&mut self, kind: Edit) -> Option<String> {
        match kind {
            Edit::HrisHire | Edit::PayrollHire | Edit::PayrollHireWithoutLastName => {
                return Some(self.hire(kind));
            }
            _ => {}
        }
        let (wid, number, pid, record) = self.someone()?;
        let salary = text(&record, "salary")
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(80_000.0);
        match kind {
            Edit::Promotion => {
                let department = text(&record, "department").unwrap_or_default();
                let title = DEPARTMENTS
                    .iter()
                    .find(|d| d.name == department)
                    .and_then(|d| d.titles.choose(&mut self.rng))
                    .map_or("Senior Specialist", |t| t.0)
                    .to_owned();
                let raise = self.rng.gen_bool(0.5);
                let new_salary = round_salary(salary * self.rng.gen_range(1.05..1.12));
                self.hris.ui_edit(&wid, |r| {
                    r.insert("job_title".into(), json!(title));
                    if raise {
                        r.insert("salary".into(), json!(format!("{new_salary}.00")));
                    }
                });
            }
            Edit::Transfer => {
                let current = text(&record, "department").unwrap_or_default();
                let others: Vec<_> = DEPARTMENTS.iter().filter(|d| d.name != current).collect();
                let dept = others.choose(&mut self.rng)?;
                let title = dept
                    .titles
                    .choose(&mut self.rng)
                    .map_or("Specialist", |t| t.0);
                let manager = self.department_head(dept.name);
                self.hris.ui_edit(&wid, |r| {
                    r.insert("department".into(), json!(dept.name));
                    r.insert("job_title".into(), json!(title));
                    if let Some(m) = manager.filter(|m| *m != number) {
                        r.insert("manager_id".into(), json!(m));
                    }
                });
            }
            Edit::DirectoryPhone => {
                let id = self.directory.user_id_by_employee(&number)?;
                let phone = self.e164_new_phone();
                self.directory.edit_user(&id, |u| {
                    let mut phones: Vec<Value> = u
                        .get("phoneNumbers")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    phones.retain(|p| p.get("type") != Some(&json!("work")));
                    phones.push(json!({ "type": "work", "value": phone }));
                    u.insert("phoneNumbers".into(), Value::Array(phones));
                });
            }
            Edit::HrisEmail => {
                self.protected.insert(number.clone());
                let current = text(&record, "work_email").unwrap_or_default();
                let alias = match current.split_once('@') {
                    Some((local, domain)) => format!("{local}.hr@{domain}"),
                    None => return None,
                };
                self.hris.ui_edit(&wid, |r| {
                    r.insert("work_email".into(), json!(alias));
                });
            }
            Edit::HrisPhone => {
                let phone = self.typed_new_phone();
                self.hris.ui_edit(&wid, |r| {
                    r.insert("phone".into(), json!(phone));
                });
            }
            Edit::HrisMove => {
                let (a, _) = random_address(&mut self.rng);
                self.hris.ui_edit(&wid, |r| {
                    r.insert(
                        "home_address".into(),
                        json!({ "line1": a.line1, "line2": a.line2, "city": a.city,
                                "state": a.state, "postal_code": a.postal_code, "country": "US" }),
                    );
                });
            }
            Edit::HrisRaise => {
                let new_salary = round_salary(salary * self.rng.gen_range(1.03..1.10));
                self.hris.ui_edit(&wid, |r| {
                    r.insert("salary".into(), json!(format!("{new_salary}.00")));
                });
            }
            Edit::Leave => {
                // Leave is rare and short: someone on leave comes back, or someone goes.
                let on_leave = self
                    .hris
                    .records()
                    .into_iter()
                    .find(|(_, r)| text(r, "status").as_deref() == Some("On Leave"));
                match on_leave {
                    Some((id, r)) => {
                        self.hris.ui_edit(&id, |r| {
                            r.insert("status".into(), json!("Active"));
                        });
                        return text(&r, "employee_id");
                    }
                    None => {
                        self.hris.ui_edit(&wid, |r| {
                            r.insert("status".into(), json!("On Leave"));
                        });
                    }
                }
            }
            Edit::Termination => {
                self.hris.ui_edit(&wid, |r| {
                    r.insert("status".into(), json!("Terminated"));
                    r.insert("termination_date".into(), json!(people::today_us()));
                });
            }
            Edit::PreferredName => {
                let full = text(&record, "full_name").unwrap_or_default();
                let first = full.split_whitespace().next().unwrap_or_default();
                let nick: String = first.chars().take(3).collect();
                self.hris.ui_edit(&wid, |r| {
                    let current = r.get("preferred_name").cloned().unwrap_or(Value::Null);
                    let next = if current.is_null() {
                        json!(nick)
                    } else {
                        Value::Null
                    };
                    r.insert("preferred_name".into(), next);
                });
            }
            Edit::BankChange => {
                let routing = routing_number(&mut self.rng);
                let account = account_number(&mut self.rng);
                self.payroll.ui_edit(&pid, |r| {
                    r.insert(
                        "bank".into(),
                        json!({ "routing_number": routing, "account_number": account }),
                    );
                });
            }
            Edit::PayrollPhone => {
                let phone = self.e164_new_phone();
                self.payroll.ui_edit(&pid, |r| {
                    r.insert("phone".into(), json!(phone));
                });
            }
            Edit::PayrollMove => {
                let (a, _) = random_address(&mut self.rng);
                self.payroll.ui_edit(&pid, |r| {
                    r.insert(
                        "home_address".into(),
                        json!({ "street1": a.line1, "street2": a.line2, "city": a.city,
                                "state": a.state, "zip": a.postal_code, "country": "US" }),
                    );
                });
            }
            Edit::RetirementChange => {
                let pct = [0, 2, 3, 4, 5, 6, 8, 10, 12, 15][self.rng.gen_range(0..10)];
                self.payroll.ui_edit(&pid, |r| {
                    set_nested(r, "deductions", "retirement_pct", json!(pct));
                });
            }
            Edit::MedicalPlanChange => {
                let plan = MEDICAL_PLANS[self.rng.gen_range(0..MEDICAL_PLANS.len())];
                self.payroll.ui_edit(&pid, |r| {
                    set_nested(r, "deductions", "medical_plan", json!(plan));
                });
            }
            Edit::PayrollAdjustment => {
                let cents = u64::from(round_salary(salary * self.rng.gen_range(1.02..1.06))) * 100;
                self.payroll.ui_edit(&pid, |r| {
                    r.insert("salary_cents".into(), json!(cents));
                });
            }
            Edit::ConcurrentSalary => {
                self.protected.insert(number.clone());
                let in_hris = round_salary(salary * 1.08);
                let mut in_payroll = round_salary(salary * 1.05);
                if in_payroll == in_hris {
                    in_payroll += 500;
                }
                // Both at once: neither system has seen the other's change.
                self.hris.ui_edit(&wid, |r| {
                    r.insert("salary".into(), json!(format!("{in_hris}.00")));
                });
                self.payroll.ui_edit(&pid, |r| {
                    r.insert("salary_cents".into(), json!(u64::from(in_payroll) * 100));
                });
            }
            Edit::ConcurrentPhone => {
                self.protected.insert(number.clone());
                let in_hris = self.typed_new_phone();
                let in_payroll = self.e164_new_phone();
                let hris_first = self.rng.gen_bool(0.5);
                let edit_hris = |h: &Hris| {
                    h.ui_edit(&wid, |r| {
                        r.insert("phone".into(), json!(in_hris));
                    })
                };
                let edit_payroll = |p: &Payroll| {
                    p.ui_edit(&pid, |r| {
                        r.insert("phone".into(), json!(in_payroll));
                    })
                };
                // Either may be the later one; the later write wins.
                if hris_first {
                    edit_hris(&self.hris);
                    edit_payroll(&self.payroll);
                } else {
                    edit_payroll(&self.payroll);
                    edit_hris(&self.hris);
                }
            }
            Edit::InvalidHireDate => {
                self.protected.insert(number.clone());
                self.hris.ui_edit(&wid, |r| {
                    r.insert("hire_date".into(), json!("13/45/2024"));
                });
            }
            Edit::ForeignPhone => {
                self.protected.insert(number.clone());
                let phone = format!("+44 20 7946 0{:03}", self.rng.gen_range(0..1000));
                self.hris.ui_edit(&wid, |r| {
                    r.insert("phone".into(), json!(phone));
                });
            }
            Edit::SalaryOverCap => {
                self.protected.insert(number.clone());
                let over = round_salary(self.rng.gen_range(520_000.0..700_000.0));
                self.hris.ui_edit(&wid, |r| {
                    r.insert("salary".into(), json!(format!("{over}.00")));
                });
            }
            Edit::PayrollRename => {
                self.protected.insert(number.clone());
                let other = GIVEN_NAMES[self.rng.gen_range(0..GIVEN_NAMES.len())];
                self.payroll.ui_edit(&pid, |r| {
                    let current = text(r, "first_name").unwrap_or_default();
                    let renamed = if current == other {
                        format!("{other}ie")
                    } else {
                        other.to_owned()
                    };
                    r.insert("first_name".into(), json!(renamed));
                });
            }
            Edit::HrisHire | Edit::PayrollHire | Edit::PayrollHireWithoutLastName => {}
        }
        Some(number)
    }

    fn hire(&mut self, kind: Edit) -> String {
        let number = self.new_number();
        let p = people::new_person(&mut self.rng, number.clone(), &mut self.used_emails);
        match kind {
            Edit::HrisHire => {
                let phone = typed_phone(&mut self.rng, &p.phone);
                let mut record = people::hris_record(&p, &phone);
                record.insert(
                    "manager_id".into(),
                    json!(self.department_head(&p.department)),
                );
                self.hris.ui_create(record);
            }
            Edit::PayrollHireWithoutLastName => {
                self.protected.insert(number.clone());
                let mut record = payroll_record(&p);
                record.insert("last_name".into(), Value::Null);
                self.payroll.ui_create(record);
            }
            _ => {
                self.payroll.ui_create(payroll_record(&p));
            }
        }
        number
    }

    fn typed_new_phone(&mut self) -> String {
        let (_, area) = random_address(&mut self.rng);
        let digits = phone_digits(&mut self.rng, area);
        typed_phone(&mut self.rng, &digits)
    }

    fn e164_new_phone(&mut self) -> String {
        let (_, area) = random_address(&mut self.rng);
        e164(&phone_digits(&mut self.rng, area))
    }
}

fn set_nested(record: &mut Map<String, Value>, outer: &str, key: &str, value: Value) {
    let entry = record
        .entry(outer.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(m) = entry {
        m.insert(key.to_owned(), value);
    }
}
