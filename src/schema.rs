//! The built-in canonical schema for HR: the Employee object. Other objects (Dependent,
//! Deduction, ...) are added as data in the workspace config, not by code.

use serde_json::json;

use crate::model::{DeletePolicy, FieldDef, ObjectSchema};
use crate::transform::FieldType;

fn field(name: &str, field_type: FieldType) -> FieldDef {
    FieldDef {
        name: name.into(),
        field_type,
        required: false,
        sensitive: false,
        values: Vec::new(),
        references: None,
        description: None,
        max_length: None,
        currency: None,
    }
}

/// Employment statuses every mapping translates to and from.
pub const EMPLOYMENT_STATUSES: [&str; 4] = ["active", "on_leave", "terminated", "pending"];

/// The canonical Employee.
pub fn employee() -> ObjectSchema {
    use FieldType::*;
    let required = |mut f: FieldDef| {
        f.required = true;
        f
    };
    let sensitive = |mut f: FieldDef| {
        f.sensitive = true;
        f
    };
    let mut status = required(field("employment_status", Enum));
    status.values = EMPLOYMENT_STATUSES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut pay_period = field("pay_period", Enum);
    pay_period.values = ["hour", "week", "month", "year"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut pay_frequency = field("pay_frequency", Enum);
    pay_frequency.values = ["weekly", "biweekly", "semimonthly", "monthly"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut pay_rate = sensitive(field("pay_rate", Money));
    pay_rate.currency = Some("pay_currency".into());
    let mut manager = field("manager", Reference);
    manager.references = Some("employee".into());
    manager.description = Some("the manager's employee number".into());
    ObjectSchema {
        name: "employee".into(),
        fields: vec![
            required(field("employee_number", String)),
            required(field("given_name", String)),
            required(field("family_name", String)),
            field("preferred_name", String),
            field("work_email", Email),
            sensitive(field("personal_email", Email)),
            field("work_phone", Phone),
            sensitive(field("mobile_phone", Phone)),
            sensitive(field("home_address_line1", String)),
            sensitive(field("home_address_line2", String)),
            sensitive(field("home_city", String)),
            sensitive(field("home_region", String)),
            sensitive(field("home_postal_code", String)),
            sensitive(field("home_country", String)),
            status,
            field("hire_date", Date),
            field("start_date", Date),
            field("termination_date", Date),
            field("job_title", String),
            field("department", String),
            manager,
            pay_rate,
            field("pay_currency", Currency),
            pay_period,
            pay_frequency,
            sensitive(field("bank_account_number", String)),
            sensitive(field("bank_routing_number", String)),
        ],
        match_keys: vec!["employee_number".into(), "work_email".into()],
        delete_policy: DeletePolicy::Deactivate {
            field: "employment_status".into(),
            value: json!("terminated"),
        },
        max_lengths: Default::default(),
    }
}
