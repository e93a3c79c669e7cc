//! Acme's directory at the start of the demo: an account for everyone in the HRIS but its
//! recent hires, written down the SCIM way (userName and primary e-mail the work address,
//! E.164 phones, `active` false for people who left, the enterprise extension's employee number,
//! department and manager), and a group per department. The directory owns e-mail and phone, so
//! a few people's differ from the HRIS's: an address changed to an alias, a new desk phone.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::schema::ENTERPRISE;
use crate::demo::people::{self, DEPARTMENTS, Person, Status};

/// A resource as the directory keeps it, before it is served.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeedResource {
    pub id: String,
    pub body: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

/// What the directory holds when it starts, and which of its people disagree with the HRIS.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectorySeed {
    pub(super) users: Vec<SeedResource>,
    pub(super) groups: Vec<SeedResource>,
    /// Seeds the ids of the users and groups created later.
    pub(super) ids: u64,
    /// Employee numbers of the people whose work e-mail (and userName) differs from the HRIS's.
    pub email_differs: Vec<String>,
    /// Employee numbers of the people whose work phone differs from the HRIS's.
    pub phone_differs: Vec<String>,
}

impl DirectorySeed {
    /// An empty directory whose ids follow `seed`.
    pub fn empty(seed: u64) -> Self {
        Self {
            users: Vec::new(),
            groups: Vec::new(),
            ids: seed ^ 0x1D5_C1A1,
            email_differs: Vec::new(),
            phone_differs: Vec::new(),
        }
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

/// A random (version 4) UUID, the ids real directories give.
pub(super) fn uuid(rng: &mut StdRng) -> String {
    let v: u128 = rng.r#gen();
    let v = (v & !(0xF << 76)) | (0x4 << 76);
    let v = (v & !(0x3 << 62)) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The directory of the company `seed` and `employees` give (the same people as the HRIS's and
/// payroll's, see [`people::seed_systems`]): same seed, same directory.
pub fn seed(seed: u64, employees: usize) -> DirectorySeed {
    let company = people::seed_systems(seed, employees).directory;
    let mut rng = StdRng::seed_from_u64(seed ^ 0xD12E_C702);
    let now = Utc::now();
    let ids: HashMap<&str, String> = company
        .iter()
        .map(|p| (p.number.as_str(), uuid(&mut rng)))
        .collect();
    let mut eligible: Vec<usize> = (1..company.len())
        .filter(|i| company[*i].status == Status::Active)
        .collect();
    eligible.shuffle(&mut rng);
    let email_differs: BTreeSet<usize> = eligible
        .drain(..(employees / 100).max(1).min(eligible.len()))
        .collect();
    let phone_differs: BTreeSet<usize> = eligible
        .drain(..(employees / 50).max(1).min(eligible.len()))
        .collect();
    let mut user_names: BTreeSet<String> = company
        .iter()
        .map(|p| p.work_email.to_lowercase())
        .collect();
    let mut out = DirectorySeed {
        email_differs: email_differs
            .iter()
            .map(|i| company[*i].number.clone())
            .collect(),
        phone_differs: phone_differs
            .iter()
            .map(|i| company[*i].number.clone())
            .collect(),
        ..DirectorySeed::empty(seed)
    };
    for (i, p) in company.iter().enumerate() {
        let email = if email_differs.contains(&i) {
            alias(p, &mut user_names)
        } else {
            p.work_email.clone()
        };
        let area = &p.phone[..3];
        let mut work = p.phone.clone();
        while phone_differs.contains(&i) && work == p.phone {
            work = people::phone_digits(&mut rng, area);
        }
        let mut phones =
            vec![json!({ "value": people::e164(&work), "type": "work", "primary": true })];
        if rng.gen_bool(0.35) {
            let mobile = people::phone_digits(&mut rng, area);
            phones.push(
                json!({ "value": people::e164(&mobile), "type": "mobile", "primary": false }),
            );
        }
        let manager = p
            .manager
            .as_deref()
            .and_then(|m| Some((ids.get(m)?, company.iter().find(|q| q.number == m)?)))
            .map(|(id, m)| json!({ "value": id, "displayName": display_name(m) }));
        let mut enterprise = object(json!({
            "employeeNumber": p.number,
            "department": p.department,
        }));
        if let Some(m) = manager {
            enterprise.insert("manager".into(), m);
        }
        let body = object(json!({
            "userName": email,
            "externalId": p.number,
            "name": {
                "formatted": format!("{} {}", p.given, p.family),
                "familyName": p.family,
                "givenName": p.given,
            },
            "displayName": display_name(p),
            "title": p.title,
            "active": p.status != Status::Terminated,
            "emails": [{ "value": email, "type": "work", "primary": true }],
            "phoneNumbers": phones,
            ENTERPRISE: enterprise,
        }));
        // Accounts are opened a few days before people start.
        let created = (p.hire_date.and_time(NaiveTime::MIN).and_utc() + Duration::hours(16)
            - Duration::days(rng.gen_range(1..14)))
        .min(now - Duration::days(1));
        let modified = (now - Duration::seconds(rng.gen_range(3_600..200 * 86_400))).max(created);
        out.users.push(SeedResource {
            id: ids[p.number.as_str()].clone(),
            body,
            created,
            modified,
        });
    }
    for d in DEPARTMENTS {
        let members: Vec<Value> = company
            .iter()
            .zip(&out.users)
            .filter(|(p, _)| p.department == d.name && p.status != Status::Terminated)
            .map(|(p, u)| json!({ "value": u.id, "display": display_name(p), "type": "User" }))
            .collect();
        let created = now - Duration::days(rng.gen_range(1_000..5_000));
        out.groups.push(SeedResource {
            id: uuid(&mut rng),
            body: object(json!({ "displayName": d.name, "members": members })),
            created,
            modified: now - Duration::seconds(rng.gen_range(3_600..30 * 86_400)),
        });
    }
    out
}

/// The name the directory shows: the preferred given name when there is one.
fn display_name(p: &Person) -> String {
    format!(
        "{} {}",
        p.preferred.as_deref().unwrap_or(&p.given),
        p.family
    )
}

/// An alias someone asked for: first initial and family name, unique.
fn alias(p: &Person, taken: &mut BTreeSet<String>) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase()
    };
    let base = format!(
        "{}{}",
        clean(&p.given).chars().next().unwrap_or('x'),
        clean(&p.family)
    );
    let mut local = base.clone();
    let mut n = 1;
    while taken.contains(&format!("{local}@acme.example")) {
        n += 1;
        local = format!("{base}{n}");
    }
    let email = format!("{local}@acme.example");
    taken.insert(email.clone());
    email
}
