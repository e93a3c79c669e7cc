//! The demo's people: about a thousand plausible employees of Acme, generated from a seed
//! (names, departments and titles, a management tree, US addresses and phones, salaries, bank
//! details, benefits), and how each system writes them down: the HRIS with full names, US
//! dates, phones as people type them and decimal salaries; payroll with split names, ISO
//! dates, E.164 phones and cents.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

pub(crate) const GIVEN_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Katherine",
    "Margaret",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Mary",
    "James",
    "Linda",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "William",
    "Elizabeth",
    "David",
    "Susan",
    "Richard",
    "Jessica",
    "Joseph",
    "Sarah",
    "Thomas",
    "Karen",
    "Charles",
    "Nancy",
    "Christopher",
    "Lisa",
    "Daniel",
    "Betty",
    "Matthew",
    "Sandra",
    "Anthony",
    "Ashley",
    "Mark",
    "Emily",
    "Steven",
    "Michelle",
    "Paul",
    "Amanda",
    "Andrew",
    "Melissa",
    "Joshua",
    "Deborah",
    "Kenneth",
    "Stephanie",
    "Kevin",
    "Rebecca",
    "Brian",
    "Laura",
    "George",
    "Sharon",
    "Timothy",
    "Cynthia",
    "Ronald",
    "Kathleen",
    "Jason",
    "Amy",
    "Edward",
    "Angela",
    "Jeffrey",
    "Shirley",
    "Ryan",
    "Anna",
    "Jacob",
    "Brenda",
    "Gary",
    "Pamela",
    "Nicholas",
    "Emma",
    "Eric",
    "Nicole",
    "Jonathan",
    "Helen",
    "Priya",
    "Wei",
    "Mateo",
    "Sofia",
    "Hiroshi",
    "Aisha",
    "Olumide",
    "Ingrid",
    "Diego",
    "Mei",
    "Ravi",
    "Fatima",
    "Lucas",
    "Chloe",
    "Omar",
    "Mary Ann",
    "Jose Luis",
];

pub(crate) const FAMILY_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Okafor",
    "Tanaka",
    "Lindqvist",
    "Kowalski",
    "Hopper",
    "Lovelace",
    "Dijkstra",
    "Knuth",
    "Liskov",
    "O'Brien",
    "Smith-Jones",
];

/// City, state, ZIP prefix, area code.
pub(crate) const CITIES: &[(&str, &str, &str, &str)] = &[
    ("San Francisco", "CA", "941", "415"),
    ("Oakland", "CA", "946", "510"),
    ("San Jose", "CA", "951", "408"),
    ("Los Angeles", "CA", "900", "213"),
    ("San Diego", "CA", "921", "619"),
    ("Seattle", "WA", "981", "206"),
    ("Portland", "OR", "972", "503"),
    ("Denver", "CO", "802", "303"),
    ("Austin", "TX", "787", "512"),
    ("Dallas", "TX", "752", "214"),
    ("Houston", "TX", "770", "713"),
    ("Chicago", "IL", "606", "312"),
    ("Minneapolis", "MN", "554", "612"),
    ("Boston", "MA", "021", "617"),
    ("New York", "NY", "100", "212"),
    ("Brooklyn", "NY", "112", "718"),
    ("Philadelphia", "PA", "191", "215"),
    ("Atlanta", "GA", "303", "404"),
    ("Miami", "FL", "331", "305"),
    ("Raleigh", "NC", "276", "919"),
    ("Nashville", "TN", "372", "615"),
    ("Phoenix", "AZ", "850", "602"),
    ("Salt Lake City", "UT", "841", "801"),
    ("Columbus", "OH", "432", "614"),
    ("Detroit", "MI", "482", "313"),
    ("Pittsburgh", "PA", "152", "412"),
    ("Madison", "WI", "537", "608"),
    ("Washington", "DC", "200", "202"),
];

const STREETS: &[&str] = &[
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Church",
    "High",
    "Mill",
    "River",
    "Spring",
    "Sunset",
    "Valley",
    "Highland",
    "Franklin",
    "Jefferson",
    "Lincoln",
    "Madison",
    "Willow",
    "Chestnut",
    "Walnut",
    "Laurel",
    "Magnolia",
];
const STREET_KINDS: &[&str] = &["St", "Ave", "Blvd", "Rd", "Ln", "Dr", "Ct", "Way", "Pl"];

/// Department, the head's title, the line manager's title, individual contributor titles with
/// a salary band each (whole dollars).
pub(crate) struct Department {
    pub name: &'static str,
    pub head: &'static str,
    pub manager: &'static str,
    pub titles: &'static [(&'static str, u32, u32)],
    /// Relative size.
    pub weight: u32,
}

pub(crate) const DEPARTMENTS: &[Department] = &[
    Department {
        name: "Engineering",
        head: "VP of Engineering",
        manager: "Engineering Manager",
        titles: &[
            ("Software Engineer", 95_000, 140_000),
            ("Senior Software Engineer", 135_000, 185_000),
            ("Staff Engineer", 175_000, 230_000),
            ("Site Reliability Engineer", 120_000, 175_000),
            ("QA Engineer", 80_000, 120_000),
            ("Data Engineer", 110_000, 165_000),
        ],
        weight: 30,
    },
    Department {
        name: "Product",
        head: "VP of Product",
        manager: "Group Product Manager",
        titles: &[
            ("Product Manager", 110_000, 160_000),
            ("Senior Product Manager", 140_000, 190_000),
            ("Product Analyst", 80_000, 115_000),
        ],
        weight: 6,
    },
    Department {
        name: "Design",
        head: "Head of Design",
        manager: "Design Manager",
        titles: &[
            ("Product Designer", 95_000, 135_000),
            ("Senior Product Designer", 125_000, 170_000),
            ("UX Researcher", 90_000, 130_000),
        ],
        weight: 4,
    },
    Department {
        name: "Sales",
        head: "VP of Sales",
        manager: "Sales Manager",
        titles: &[
            ("Account Executive", 70_000, 110_000),
            ("Senior Account Executive", 95_000, 140_000),
            ("Sales Development Representative", 50_000, 70_000),
            ("Solutions Engineer", 110_000, 160_000),
        ],
        weight: 18,
    },
    Department {
        name: "Marketing",
        head: "VP of Marketing",
        manager: "Marketing Manager",
        titles: &[
            ("Content Strategist", 70_000, 105_000),
            ("Growth Marketer", 80_000, 120_000),
            ("Marketing Coordinator", 55_000, 75_000),
        ],
        weight: 7,
    },
    Department {
        name: "Customer Support",
        head: "VP of Customer Support",
        manager: "Support Team Lead",
        titles: &[
            ("Support Specialist", 48_000, 65_000),
            ("Senior Support Specialist", 60_000, 80_000),
            ("Technical Account Manager", 85_000, 120_000),
        ],
        weight: 14,
    },
    Department {
        name: "Finance",
        head: "Chief Financial Officer",
        manager: "Controller",
        titles: &[
            ("Accountant", 65_000, 90_000),
            ("Senior Accountant", 85_000, 115_000),
            ("Financial Analyst", 75_000, 110_000),
            ("Payroll Specialist", 60_000, 85_000),
        ],
        weight: 6,
    },
    Department {
        name: "People",
        head: "Chief People Officer",
        manager: "People Partner Lead",
        titles: &[
            ("HR Generalist", 60_000, 85_000),
            ("Recruiter", 65_000, 100_000),
            ("People Partner", 85_000, 125_000),
            ("HR Coordinator", 48_000, 62_000),
        ],
        weight: 5,
    },
    Department {
        name: "Operations",
        head: "Chief Operating Officer",
        manager: "Operations Manager",
        titles: &[
            ("Operations Analyst", 65_000, 95_000),
            ("Office Manager", 55_000, 75_000),
            ("Program Manager", 95_000, 140_000),
        ],
        weight: 6,
    },
    Department {
        name: "Legal",
        head: "General Counsel",
        manager: "Associate General Counsel",
        titles: &[
            ("Counsel", 150_000, 210_000),
            ("Paralegal", 60_000, 85_000),
            ("Contracts Manager", 90_000, 130_000),
        ],
        weight: 3,
    },
];

pub(crate) const MEDICAL_PLANS: &[&str] = &["PPO", "HMO", "HDHP", "Waived"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    OnLeave,
    Terminated,
}

impl Status {
    pub fn hris(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::OnLeave => "On Leave",
            Self::Terminated => "Terminated",
        }
    }

    /// Payroll knows active (1) and inactive (0); someone on leave stays on the payroll.
    pub fn payroll(self) -> i64 {
        match self {
            Self::Active | Self::OnLeave => 1,
            Self::Terminated => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub postal_code: String,
}

/// One person, as Acme knows them (before either system writes them down).
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub number: String,
    pub given: String,
    pub family: String,
    pub preferred: Option<String>,
    pub work_email: String,
    pub personal_email: String,
    /// Ten US digits: area code, exchange, line.
    pub phone: String,
    pub address: Address,
    pub status: Status,
    pub hire_date: NaiveDate,
    pub termination_date: Option<NaiveDate>,
    pub title: String,
    pub department: String,
    pub manager: Option<String>,
    /// Whole dollars a year.
    pub salary: u32,
    pub routing_number: String,
    pub account_number: String,
    pub retirement_pct: u32,
    pub medical_plan: String,
}

/// How a person types a US phone number.
pub(crate) fn typed_phone(rng: &mut StdRng, digits: &str) -> String {
    let (a, rest) = digits.split_at(3);
    let (b, c) = rest.split_at(3);
    match rng.gen_range(0..7) {
        0 | 1 => format!("({a}) {b}-{c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("{a}{b}{c}"),
        5 => format!("+1 {a} {b} {c}"),
        _ => format!("1 ({a}) {b}-{c}"),
    }
}

/// A fictional US number (the 555-01XX lines are reserved for fiction) in the city's area code.
pub(crate) fn phone_digits(rng: &mut StdRng, area: &str) -> String {
    format!("{area}5550{:03}", rng.gen_range(100..200))
}

pub(crate) fn e164(digits: &str) -> String {
    format!("+1{digits}")
}

pub(crate) fn random_address(rng: &mut StdRng) -> (Address, &'static str) {
    let (city, state, zip, area) = CITIES[rng.gen_range(0..CITIES.len())];
    let line2 = if rng.gen_bool(0.3) {
        Some(match rng.gen_range(0..3) {
            0 => format!("Apt {}", rng.gen_range(1..40)),
            1 => format!(
                "Unit {}{}",
                rng.gen_range(1..9),
                ['A', 'B', 'C'][rng.gen_range(0..3)]
            ),
            _ => format!("Suite {}", rng.gen_range(100..900)),
        })
    } else {
        None
    };
    (
        Address {
            line1: format!(
                "{} {} {}",
                rng.gen_range(10..9900),
                STREETS[rng.gen_range(0..STREETS.len())],
                STREET_KINDS[rng.gen_range(0..STREET_KINDS.len())]
            ),
            line2,
            city: city.to_owned(),
            state: state.to_owned(),
            postal_code: format!("{zip}{:02}", rng.gen_range(1..99)),
        },
        area,
    )
}

/// A nine-digit ABA routing number with a valid check digit.
pub(crate) fn routing_number(rng: &mut StdRng) -> String {
    let mut d: Vec<u32> = (0..8).map(|_| rng.gen_range(0..10)).collect();
    d[0] = rng.gen_range(0..4);
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5]);
    d.push((10 - sum % 10) % 10);
    d.iter().map(u32::to_string).collect()
}

pub(crate) fn account_number(rng: &mut StdRng) -> String {
    let len = rng.gen_range(8..13);
    (0..len).map(|_| rng.gen_range(0..10).to_string()).collect()
}

fn email_local(given: &str, family: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase()
    };
    format!("{}.{}", clean(given), clean(family))
}

fn random_date(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(1);
    from + Days::days(rng.gen_range(0..span))
}

pub(crate) fn round_salary(v: f64) -> u32 {
    // Salaries are whole multiples of $500; the cast is within range for any salary.
    let rounded = (v / 500.0).round() * 500.0;
    if rounded.is_finite() && rounded > 0.0 && rounded < f64::from(u32::MAX) {
        rounded as u32
    } else {
        50_000
    }
}

/// A new person who joins today (the simulator's hires and the seed's recent hires).
pub(crate) fn new_person(
    rng: &mut StdRng,
    number: String,
    used_emails: &mut Vec<String>,
) -> Person {
    let dept = &DEPARTMENTS[weighted_department(rng)];
    let (title, lo, hi) = dept.titles[rng.gen_range(0..dept.titles.len())];
    let today = Utc::now().date_naive();
    let mut p = person_basics(rng, number, used_emails);
    p.title = title.to_owned();
    p.department = dept.name.to_owned();
    p.salary = round_salary(f64::from(rng.gen_range(lo..=hi)));
    p.hire_date = today - Days::days(rng.gen_range(0..10));
    p
}

fn weighted_department(rng: &mut StdRng) -> usize {
    let total: u32 = DEPARTMENTS.iter().map(|d| d.weight).sum();
    let mut pick = rng.gen_range(0..total);
    for (i, d) in DEPARTMENTS.iter().enumerate() {
        if pick < d.weight {
            return i;
        }
        pick -= d.weight;
    }
    0
}

fn person_basics(rng: &mut StdRng, number: String, used_emails: &mut Vec<String>) -> Person {
    let given = GIVEN_NAMES[rng.gen_range(0..GIVEN_NAMES.len())].to_owned();
    let family = FAMILY_NAMES[rng.gen_range(0..FAMILY_NAMES.len())].to_owned();
    let base = email_local(&given, &family);
    let mut local = base.clone();
    let mut n = 1;
    while used_emails.contains(&local) {
        n += 1;
        local = format!("{base}{n}");
    }
    used_emails.push(local.clone());
    let (address, area) = random_address(rng);
    let preferred = match given.as_str() {
        "Robert" if rng.gen_bool(0.5) => Some("Bob".to_owned()),
        "William" if rng.gen_bool(0.5) => Some("Bill".to_owned()),
        "Elizabeth" if rng.gen_bool(0.5) => Some("Liz".to_owned()),
        "Katherine" if rng.gen_bool(0.5) => Some("Kate".to_owned()),
        "Christopher" if rng.gen_bool(0.5) => Some("Chris".to_owned()),
        _ => None,
    };
    let personal_domain = ["mail.example", "inbox.example", "post.example"][rng.gen_range(0..3)];
    Person {
        number,
        personal_email: format!(
            "{}{}@{personal_domain}",
            local.replace('.', ""),
            rng.gen_range(10..99)
        ),
        work_email: format!("{local}@acme.example"),
        given,
        family,
        preferred,
        phone: phone_digits(rng, area),
        address,
        status: Status::Active,
        hire_date: Utc::now().date_naive(),
        termination_date: None,
        title: String::new(),
        department: String::new(),
        manager: None,
        salary: 0,
        routing_number: routing_number(rng),
        account_number: account_number(rng),
        retirement_pct: [0, 3, 4, 5, 6, 8, 10][rng.gen_range(0..7)],
        medical_plan: MEDICAL_PLANS[rng.gen_range(0..MEDICAL_PLANS.len())].to_owned(),
    }
}

/// Employee number of the `i`-th person.
pub(crate) fn employee_number(i: usize) -> String {
    format!("E{}", 1000 + i)
}

/// `n` people of one company: a chief executive, department heads, line managers and their
/// reports, hired over fifteen years; a few on leave, some gone.
pub(crate) fn company(rng: &mut StdRng, n: usize, used: &mut Vec<String>) -> Vec<Person> {
    let today = Utc::now().date_naive();
    // Everything is relative to today, with spans that do not depend on the date, so one seed
    // gives the same company on any day.
    let founded = today - Days::days(5_500);
    let mut people: Vec<Person> = Vec::with_capacity(n);
    // Per department: its head, its managers.
    let mut heads: Vec<Option<String>> = vec![None; DEPARTMENTS.len()];
    let mut managers: Vec<Vec<String>> = vec![Vec::new(); DEPARTMENTS.len()];
    let mut reports: Vec<usize> = vec![0; DEPARTMENTS.len()];
    for i in 0..n {
        let mut p = person_basics(rng, employee_number(i), used);
        if i == 0 {
            p.title = "Chief Executive Officer".into();
            p.department = "Executive".into();
            p.salary = 420_000;
            p.hire_date = founded;
            people.push(p);
            continue;
        }
        let ceo = people.first().map(|c| c.number.clone());
        let d = if i <= DEPARTMENTS.len() {
            i - 1
        } else {
            weighted_department(rng)
        };
        let dept = &DEPARTMENTS[d];
        p.department = dept.name.to_owned();
        let earliest = founded + Days::days(i64::try_from(i.min(60)).unwrap_or(60) * 20);
        p.hire_date = random_date(rng, earliest.min(today), today);
        if heads[d].is_none() {
            p.title = dept.head.to_owned();
            p.salary = round_salary(f64::from(rng.gen_range(230_000..330_000)));
            p.manager = ceo;
            heads[d] = Some(p.number.clone());
        } else if reports[d] >= 7 * managers[d].len().max(1) || managers[d].is_empty() {
            p.title = dept.manager.to_owned();
            p.salary = round_salary(f64::from(rng.gen_range(150_000..215_000)));
            p.manager = heads[d].clone();
            managers[d].push(p.number.clone());
        } else {
            let (title, lo, hi) = dept.titles[rng.gen_range(0..dept.titles.len())];
            p.title = title.to_owned();
            p.salary = round_salary(f64::from(rng.gen_range(lo..=hi)));
            p.manager = managers[d]
                .choose(rng)
                .cloned()
                .or_else(|| heads[d].clone());
            reports[d] += 1;
            // Individual contributors: some have left, a few are on leave.
            let roll = rng.gen_range(0..1000);
            if roll < 50 {
                p.status = Status::Terminated;
                let from = p.hire_date + Days::days(60);
                p.termination_date = Some(random_date(rng, from.min(today), today));
            } else if roll < 55 {
                p.status = Status::OnLeave;
            }
        }
        people.push(p);
    }
    people
}

pub(crate) fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn us_date(d: NaiveDate) -> String {
    format!("{:02}/{:02}/{}", d.month(), d.day(), d.year())
}

fn iso_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The person as Acme HRIS holds them (without `id`, `version`, `updated_at`).
pub(crate) fn hris_record(p: &Person, typed_phone: &str) -> Map<String, Value> {
    let record = json!({
        "employee_id": p.number,
        "full_name": format!("{} {}", p.given, p.family),
        "preferred_name": p.preferred,
        "work_email": p.work_email,
        "personal_email": p.personal_email,
        "phone": typed_phone,
        "home_address": {
            "line1": p.address.line1,
            "line2": p.address.line2,
            "city": p.address.city,
            "state": p.address.state,
            "postal_code": p.address.postal_code,
            "country": "US",
        },
        "status": p.status.hris(),
        "hire_date": us_date(p.hire_date),
        "termination_date": p.termination_date.map(us_date),
        "job_title": p.title,
        "department": p.department,
        "manager_id": p.manager,
        "salary": format!("{}.00", p.salary),
        "salary_currency": "USD",
    });
    match record {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The person as Acme Payroll holds them (without `id`, `row_version`, `modified_at`).
pub(crate) fn payroll_record(p: &Person) -> Map<String, Value> {
    let record = json!({
        "emp_no": p.number,
        "first_name": p.given,
        "last_name": p.family,
        "email": p.work_email,
        "phone": e164(&p.phone),
        "state": p.status.payroll(),
        "hire_date": iso_date(p.hire_date),
        "termination_date": p.termination_date.map(iso_date),
        "salary_cents": u64::from(p.salary) * 100,
        "currency": "USD",
        "pay_frequency": "biweekly",
        "bank": {
            "routing_number": p.routing_number,
            "account_number": p.account_number,
        },
        "deductions": {
            "retirement_pct": p.retirement_pct,
            "medical_plan": p.medical_plan,
        },
        "home_address": {
            "street1": p.address.line1,
            "street2": p.address.line2,
            "city": p.address.city,
            "state": p.address.state,
            "zip": p.address.postal_code,
            "country": "US",
        },
    });
    match record {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(crate) fn today_us() -> String {
    us_date(Utc::now().date_naive())
}

/// What the two systems hold at the start, and what the simulator continues from.
pub(crate) struct Seeded {
    pub hris: Vec<(Map<String, Value>, DateTime<Utc>)>,
    pub payroll: Vec<(Map<String, Value>, DateTime<Utc>)>,
    pub next_number: usize,
    pub used_emails: Vec<String>,
    pub hris_only: usize,
    pub payroll_only: usize,
    /// The people with an account in the company directory: everyone in the HRIS but the recent
    /// hires (their accounts are not provisioned yet), as Acme knows them.
    pub directory: Vec<Person>,
}

/// The company, written down by each system, with the disagreements real systems have: recent
/// hires payroll has not set up yet, people paid by payroll whom the HRIS lacks, phones
/// updated on one side, salaries that differ, names misspelled in payroll.
pub(crate) fn seed_systems(seed: u64, n: usize) -> Seeded {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut used_emails = Vec::new();
    let mut people = company(&mut rng, n, &mut used_emails);
    let now = Utc::now();
    let today = now.date_naive();
    // Individual contributors who are active: the ones the disagreements happen to.
    let managers: BTreeSet<&String> = people.iter().filter_map(|p| p.manager.as_ref()).collect();
    let mut eligible: Vec<usize> = (0..people.len())
        .filter(|i| {
            *i > DEPARTMENTS.len()
                && people[*i].status == Status::Active
                && !managers.contains(&people[*i].number)
        })
        .collect();
    eligible.shuffle(&mut rng);
    let count = |per: usize| (n / per).max(1);
    let mut take = |k: usize| -> BTreeSet<usize> {
        let k = k.min(eligible.len());
        eligible.drain(..k).collect()
    };
    let hris_only = take(count(100));
    let payroll_only = take(count(200));
    let phone_differs = take(count(50));
    let salary_differs = take(count(200));
    let misspelled = take(count(300));
    for i in &hris_only {
        people[*i].hire_date = today - Days::days(rng.gen_range(0..14));
    }
    let mut out = Seeded {
        hris: Vec::new(),
        payroll: Vec::new(),
        next_number: n,
        used_emails: Vec::new(),
        hris_only: hris_only.len(),
        payroll_only: payroll_only.len(),
        directory: Vec::new(),
    };
    for (i, p) in people.iter().enumerate() {
        let updated = now - Days::seconds(rng.gen_range(86_400..400 * 86_400));
        let mut modified = now - Days::seconds(rng.gen_range(86_400..400 * 86_400));
        let typed = typed_phone(&mut rng, &p.phone);
        if !payroll_only.contains(&i) {
            out.hris.push((hris_record(p, &typed), updated));
        }
        if hris_only.contains(&i) {
            continue;
        }
        if !payroll_only.contains(&i) {
            out.directory.push(p.clone());
        }
        let mut record = payroll_record(p);
        if phone_differs.contains(&i) {
            let (_, area) = random_address(&mut rng);
            let phone = e164(&phone_digits(&mut rng, area));
            record.insert("phone".into(), json!(phone));
            // Mostly the newer one: the employee updated it in payroll's self-service.
            let later = updated + Days::seconds(rng.gen_range(3_600..30 * 86_400));
            let earlier = updated - Days::seconds(rng.gen_range(3_600..30 * 86_400));
            modified = if rng.gen_bool(0.67) && later < now {
                later
            } else {
                earlier
            };
        }
        if salary_differs.contains(&i) {
            record.insert(
                "salary_cents".into(),
                json!((u64::from(p.salary) + 2_000) * 100),
            );
        }
        if misspelled.contains(&i) {
            let mut chars: Vec<char> = p.given.chars().collect();
            if let Some(c) = chars.get(1).copied() {
                chars.insert(1, c);
            }
            record.insert(
                "first_name".into(),
                json!(chars.into_iter().collect::<String>()),
            );
        }
        out.payroll.push((record, modified));
    }
    out.used_emails = used_emails;
    out
}
