//! Two-way value transforms between a system's record fields and the canonical schema.
//!
//! A [`Transform`] turns the values a connected system holds for one mapped field into canonical
//! values (`to_canonical`) and back (`to_system`). Everything here is pure: no I/O, no clock, no
//! global state. Values are `serde_json::Value`s.
//!
//! # Canonical forms
//!
//! The engine compares canonical values with `==`, so every canonical form is unique:
//!
//! | type         | canonical form                                                      |
//! |--------------|---------------------------------------------------------------------|
//! | string       | JSON string, as is                                                  |
//! | date         | JSON string `"YYYY-MM-DD"`                                          |
//! | timestamp    | JSON string, RFC 3339, UTC, `Z`, seconds: `"2026-03-01T14:05:00Z"`  |
//! | money        | JSON string, normalised decimal (no trailing zeros): `"85000.5"`    |
//! | phone        | JSON string in E.164: `"+14155550123"`                              |
//! | enum         | JSON string holding the canonical code: `"on_leave"`                |
//! | bool, number | JSON as is                                                          |
//!
//! # Rules shared by every transform
//!
//! * `None` (or JSON `null`) in gives `None` out; the caller applies its null policies. The only
//!   exception is [`Transform::Constant`], which always writes its value.
//! * Parsing transforms (date, timestamp, money, phone, enum, full name, lowercase) treat a blank
//!   system string as absent.
//! * `to_system` only accepts canonical values in canonical form (see [`validate_canonical`]) and
//!   never changes a value silently: it never rounds, and it refuses to write a value that would
//!   read back as a different canonical value ([`TransformError::NotRepresentable`]). The one
//!   declared exception is a lossy enum table, where several codes write the same system value:
//!   such a value reads back as any of those codes ([`Transform::alternatives`]).
//! * A transform that cannot write back at all is read-only ([`Transform::is_reversible`] is
//!   false and `to_system` returns [`TransformError::Irreversible`]).
//! * Error messages are meant for an HR administrator and always name the offending value.

use std::fmt::{Display, Write as _};
use std::str::FromStr;

use chrono::format::{Item, ParseErrorKind, StrftimeItems};
use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Utc,
};
use chrono_tz::Tz;
use phonenumber::PhoneNumber;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

mod enums;
mod money;
mod phone;
#[cfg(test)]
mod tests;
mod text;
mod time;

use enums::*;
use money::*;
use phone::*;
use text::*;
use time::*;

/// Format of a system timestamp when [`Transform::Timestamp`] names none.
const DEFAULT_TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const CANONICAL_DATE_FORMAT: &str = "%Y-%m-%d";
const CANONICAL_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";
/// The most decimal places a `rust_decimal::Decimal` can hold.
const MAX_DECIMAL_PLACES: u32 = 28;
/// Values longer than this are shortened in error messages.
const MAX_SHOWN_CHARS: usize = 80;
/// Allowed enum values listed in an error message before "and N more".
const MAX_LISTED_VALUES: usize = 20;

/// How one mapped field's values move between a system and the canonical schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    /// Rename / path: the value is copied unchanged both ways.
    Copy,
    /// The system holds one "Given Family" string; the canonical side holds two fields
    /// `[given, family]`.
    ///
    /// Reading: the family name is the last whitespace-separated word and the given name is
    /// the rest, single-spaced ("Mary Ann Smith" gives "Mary Ann" / "Smith"). A single word is
    /// a family name with no given name ("Cher" gives null / "Cher"). A blank value gives two
    /// nulls.
    ///
    /// Writing: the non-empty parts (whitespace-normalised) are joined with one space. A pair
    /// that would read back differently (a family name containing a space, or a given name
    /// without a family name) is refused with [`TransformError::NotRepresentable`].
    FullName,
    /// The system holds a date string in `format` (chrono strftime, e.g. `"%m/%d/%Y"`); the
    /// canonical form is `"YYYY-MM-DD"`. A format without a year, a month and a day cannot be
    /// read (and so is read-only and rejected by `validate`). A format with a two-digit year
    /// (`%y`) reads years as 1969-2068 (chrono's rule) and refuses to write dates outside them.
    Date { format: String },
    /// The system holds a local timestamp string in `format` (default `"%Y-%m-%d %H:%M:%S"`)
    /// in the IANA time zone `tz`; the canonical form is UTC RFC 3339 with `Z`, whole seconds.
    ///
    /// If the format carries an offset (`%z`, `%:z`), that offset is used when reading. Local
    /// times in a daylight-saving gap are an error; ambiguous ones take the earlier instant.
    /// Fractions of a second are dropped when reading. Writing an instant whose local time is
    /// the later of two identical local times is refused, as it would read back as the earlier.
    Timestamp {
        #[serde(default)]
        format: Option<String>,
        tz: String,
    },
    /// The system holds an integer count of minor units (e.g. cents) as a JSON number (or a
    /// string of digits); the canonical form is a decimal string. `exponent` is the number of
    /// minor digits (2 for USD, 0 for JPY). Fractions of a minor unit and overflow are errors;
    /// writing a value with more decimals than `exponent` is an error (never rounds).
    MoneyMinor { exponent: u32 },
    /// The system holds a decimal as a JSON string or number (`"85000.00"` or `85000.0`); the
    /// canonical form is the normalised decimal string. Writing produces a string with exactly
    /// `scale` decimals (`"85000.50"`); a value with more decimals than `scale` is an error.
    MoneyDecimal { scale: u32 },
    /// A table of system values (any JSON scalar: `"Active"`, `1`, `true`) and canonical codes.
    /// Unknown values either way are an error naming the value and the allowed ones. A string
    /// with no exact match matches an entry that differs only in case and surrounding spaces,
    /// if exactly one system value does. A table mapping several system values to one code is
    /// read-only.
    ///
    /// Several codes may share one system value ("lossy": `active` and `on_leave` both written
    /// as `true`). Each code writes its entry's value; reading a shared value gives the first
    /// listed entry's code, and [`Transform::alternatives`] lists every code it could mean so
    /// the caller can keep the one it already knows.
    Enum { table: Vec<EnumEntry> },
    /// The system holds a phone number as people type it (`"(415) 555-0123"`,
    /// `"+44 20 7946 0958"`); the canonical form is E.164. `region` is the ISO country code
    /// assumed for numbers without a country code (`"US"`). `system_format` says how to write
    /// numbers back. Invalid numbers, and numbers with an extension (which E.164 cannot hold),
    /// are errors.
    Phone {
        region: String,
        #[serde(default)]
        system_format: PhoneFormat,
    },
    /// A system field that always gets `value` on write and is never read (the canonical side
    /// has no fields).
    Constant { value: Value },
    /// Read-only normalisation: the canonical value is the trimmed, lowercased string.
    Lowercase,
}

/// One row of an [`Transform::Enum`] table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnumEntry {
    /// The value as the system holds it.
    pub system: Value,
    /// The canonical code.
    pub canonical: String,
}

/// How [`Transform::Phone`] writes numbers back to the system.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PhoneFormat {
    /// `+14155550123`
    #[default]
    E164,
    /// `(415) 555-0123`. Numbers from another country than `region` are written in the
    /// international format, since the national one would lose the country code.
    National,
    /// `+1 415-555-0123`
    International,
}

/// Canonical field types, for [`validate_canonical`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Date,
    Timestamp,
    Money,
    Phone,
    Email,
    Enum,
    Reference,
    Bool,
    Number,
    Currency,
    /// An unordered set of distinct text values (a group's members, a person's roles): the
    /// canonical form is a sorted JSON array of strings, and a change is merged per member.
    Set,
}

impl FieldType {
    /// The longest text value of this type accepted, in characters, unless the object's
    /// `max_lengths` or the field's `max_length` says otherwise. A longer value is a
    /// validation exception, never a write.
    pub fn default_max_length(self) -> usize {
        match self {
            Self::String => 4096,
            Self::Email => 254,
            Self::Enum | Self::Reference => 256,
            Self::Phone | Self::Date | Self::Timestamp | Self::Money | Self::Number => 64,
            Self::Bool => 8,
            Self::Currency => 3,
            Self::Set => 256,
        }
    }
}

/// Why a value could not be transformed or validated. The messages name the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// The caller passed the wrong number of values (`side` is "system" or "canonical").
    #[error("expected {expected} {side} value(s) for this field mapping, got {actual}")]
    Arity {
        side: &'static str,
        expected: usize,
        actual: usize,
    },
    /// The transform cannot write back to the system: the field is read-only there.
    #[error("this field is read-only for this system: {reason}")]
    Irreversible { reason: String },
    /// The value has the wrong JSON type; `expected` describes the right one.
    #[error("'{value}' is not {expected}")]
    WrongType {
        value: String,
        expected: &'static str,
    },
    #[error("'{value}' is not a date in format {format}")]
    InvalidDate { value: String, format: String },
    #[error("'{value}' is not a date and time in format {format}")]
    InvalidTimestamp { value: String, format: String },
    /// A local time that the clocks skip when daylight-saving time starts.
    #[error(
        "'{value}' does not exist in time zone {tz}: the clocks skip that time when \
         daylight-saving time starts"
    )]
    NonexistentLocalTime { value: String, tz: String },
    #[error("'{value}' is not a valid amount: {reason}")]
    InvalidMoney { value: String, reason: String },
    #[error("'{value}' is not a valid phone number: {reason}")]
    InvalidPhone { value: String, reason: String },
    #[error("'{value}' is not one of the allowed values: {}", quote_list(.allowed))]
    UnknownEnumValue { value: String, allowed: Vec<String> },
    /// A canonical value that is not in the canonical form of its type.
    #[error("'{value}' is not a valid {}: {reason}", type_label(*.field_type))]
    InvalidCanonical {
        field_type: FieldType,
        value: String,
        reason: String,
    },
    /// Writing the value would change it: the system would hand back something else.
    /// `value` describes the canonical value(s), already quoted.
    #[error("{value} cannot be written to this system without changing it: {reason}")]
    NotRepresentable { value: String, reason: String },
    /// The transform's own settings are wrong.
    #[error("invalid transform settings: {0}")]
    Config(String),
}

type Values = Vec<Option<Value>>;

impl Transform {
    /// How many system values it reads/writes and how many canonical fields it yields:
    /// `(system_arity, canonical_arity)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Transform::FullName => (1, 2),
            Transform::Constant { .. } => (1, 0),
            _ => (1, 1),
        }
    }

    /// Whether canonical -> system is possible without loss (false: the field is read-only for
    /// that system).
    pub fn is_reversible(&self) -> bool {
        self.irreversible_reason().is_none()
    }

    /// System values (one per system path; `None` = absent/null) -> canonical values (one per
    /// canonical field; `None` = null).
    pub fn to_canonical(&self, system: &[Option<&Value>]) -> Result<Values, TransformError> {
        let (expected, _) = self.arity();
        check_arity("system", expected, system.len())?;
        let value = system.first().copied().flatten().filter(|v| !v.is_null());
        match self {
            Transform::Copy => Ok(vec![value.cloned()]),
            Transform::Constant { .. } => Ok(Vec::new()),
            Transform::FullName => read_full_name(value),
            Transform::Lowercase => Ok(vec![read_lowercase(value)?]),
            Transform::Date { format } => Ok(vec![read_date(value, format)?]),
            Transform::Timestamp { format, tz } => {
                let format = format.as_deref().unwrap_or(DEFAULT_TIMESTAMP_FORMAT);
                Ok(vec![read_timestamp(value, format, tz)?])
            }
            Transform::MoneyMinor { exponent } => Ok(vec![read_money_minor(value, *exponent)?]),
            Transform::MoneyDecimal { .. } => Ok(vec![read_money_decimal(value)?]),
            Transform::Enum { table } => Ok(vec![read_enum(value, table)?]),
            Transform::Phone { region, .. } => Ok(vec![read_phone(value, region)?]),
        }
    }

    /// Every canonical code a system value could mean, in table order, when several codes of a
    /// lossy enum table share it (see [`Transform::Enum`]); `None` for a value only one code
    /// reads as, for an unknown value, and for every other transform.
    pub fn alternatives(&self, system: &[Option<&Value>]) -> Option<Vec<Value>> {
        let Transform::Enum { table } = self else {
            return None;
        };
        let value = system.first().copied().flatten().filter(|v| !v.is_null())?;
        let entry = find_system_entry(table, value)?;
        let mut codes: Vec<Value> = Vec::new();
        for other in table
            .iter()
            .filter(|o| same_scalar(&o.system, &entry.system))
        {
            let code = Value::String(other.canonical.clone());
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        (codes.len() > 1).then_some(codes)
    }

    /// Canonical values -> system values. Errors if the transform is irreversible
    /// ([`TransformError::Irreversible`]) or the value does not fit the system.
    pub fn to_system(&self, canonical: &[Option<&Value>]) -> Result<Values, TransformError> {
        let (_, expected) = self.arity();
        check_arity("canonical", expected, canonical.len())?;
        if let Some(reason) = self.irreversible_reason() {
            return Err(TransformError::Irreversible { reason });
        }
        let canonical: Vec<Option<&Value>> = canonical
            .iter()
            .map(|v| v.filter(|v| !v.is_null()))
            .collect();
        let first = canonical.first().copied().flatten();
        let (system, expected_back) = match self {
            Transform::Copy => (vec![first.cloned()], vec![first.cloned()]),
            Transform::Constant { value } => return Ok(vec![Some(value.clone())]),
            Transform::Lowercase => {
                // Unreachable: `irreversible_reason` refuses it above.
                return Err(TransformError::Irreversible {
                    reason: LOWERCASE_REASON.to_owned(),
                });
            }
            Transform::FullName => {
                let parts = full_name_parts(&canonical)?;
                (vec![write_full_name(&parts)], parts)
            }
            Transform::Date { format } => (vec![write_date(first, format)?], owned(first)),
            Transform::Timestamp { format, tz } => {
                let format = format.as_deref().unwrap_or(DEFAULT_TIMESTAMP_FORMAT);
                (vec![write_timestamp(first, format, tz)?], owned(first))
            }
            Transform::MoneyMinor { exponent } => {
                (vec![write_money_minor(first, *exponent)?], owned(first))
            }
            Transform::MoneyDecimal { scale } => {
                (vec![write_money_decimal(first, *scale)?], owned(first))
            }
            Transform::Enum { table } => (vec![write_enum(first, table)?], owned(first)),
            Transform::Phone {
                region,
                system_format,
            } => (
                vec![write_phone(first, region, *system_format)?],
                owned(first),
            ),
        };
        self.check_read_back(&system, &expected_back)?;
        Ok(system)
    }

    /// Validates the transform's own settings (strftime format, time zone, phone region, enum
    /// table, decimal places) with a clear message.
    pub fn validate(&self) -> Result<(), TransformError> {
        match self {
            Transform::Copy
            | Transform::FullName
            | Transform::Lowercase
            | Transform::Constant { .. } => Ok(()),
            Transform::Date { format } => match date_read_problem(format) {
                Some(problem) => Err(TransformError::Config(problem)),
                None => Ok(()),
            },
            Transform::Timestamp { format, tz } => {
                let zone = parse_tz(tz)?;
                let format = format.as_deref().unwrap_or(DEFAULT_TIMESTAMP_FORMAT);
                match timestamp_problem(format, zone) {
                    Some(problem) => Err(TransformError::Config(problem)),
                    None => Ok(()),
                }
            }
            Transform::MoneyMinor { exponent } => check_places("exponent", *exponent),
            Transform::MoneyDecimal { scale } => check_places("scale", *scale),
            Transform::Enum { table } => validate_enum_table(table),
            Transform::Phone { region, .. } => parse_region(region).map(|_| ()),
        }
    }

    /// Why the transform cannot write back at all, if it cannot.
    fn irreversible_reason(&self) -> Option<String> {
        match self {
            Transform::Lowercase => Some(LOWERCASE_REASON.to_owned()),
            Transform::Date { format } => date_write_problem(format),
            // An unknown zone is a settings error, reported by `validate` and on use.
            Transform::Timestamp { format, tz } => parse_tz(tz).ok().and_then(|zone| {
                timestamp_problem(format.as_deref().unwrap_or(DEFAULT_TIMESTAMP_FORMAT), zone)
            }),
            Transform::Enum { table } => enum_write_problem(table),
            Transform::Copy
            | Transform::FullName
            | Transform::MoneyMinor { .. }
            | Transform::MoneyDecimal { .. }
            | Transform::Phone { .. }
            | Transform::Constant { .. } => None,
        }
    }

    /// Whether `expected` (one code) is among the codes the written `system` value could mean.
    fn reads_back_as_one_of(&self, system: &[Option<&Value>], expected: &Values) -> bool {
        match (self.alternatives(system), expected.as_slice()) {
            (Some(codes), [Some(code)]) => codes.contains(code),
            _ => false,
        }
    }

    /// Refuses a write whose system values would read back as other canonical values.
    fn check_read_back(&self, system: &Values, expected: &Values) -> Result<(), TransformError> {
        let refs: Vec<Option<&Value>> = system.iter().map(Option::as_ref).collect();
        let problem = match self.to_canonical(&refs) {
            Ok(back) if back == *expected => return Ok(()),
            // A lossy enum code reads back as the first of the codes sharing its value; the
            // caller settles which one it is (see `alternatives`).
            Ok(_) if self.reads_back_as_one_of(&refs, expected) => return Ok(()),
            Ok(back) => format!("reads back as {}", describe_canonical(self, &back)),
            Err(err) => format!("cannot be read: {err}"),
        };
        let written = system
            .iter()
            .map(|v| v.as_ref().map_or_else(|| "nothing".to_owned(), quote))
            .collect::<Vec<_>>()
            .join(", ");
        Err(TransformError::NotRepresentable {
            value: describe_canonical(self, expected),
            reason: format!("the system would hold {written}, which {problem}"),
        })
    }
}

const LOWERCASE_REASON: &str =
    "the value is lowercased when read, so its original capitalisation is unknown";

/// Checks that a canonical value has the canonical form of `ty`. JSON `null` is accepted for
/// every type: whether a field may be empty is the caller's null policy.
pub fn validate_canonical(ty: FieldType, value: &Value) -> Result<(), TransformError> {
    match ty {
        _ if value.is_null() => Ok(()),
        FieldType::String => canonical_str(ty, value).map(|_| ()),
        FieldType::Date => canonical_date(value).map(|_| ()),
        FieldType::Timestamp => canonical_timestamp(value).map(|_| ()),
        FieldType::Money => canonical_money(value).map(|_| ()),
        FieldType::Phone => canonical_phone(value).map(|_| ()),
        FieldType::Email => {
            let text = canonical_str(ty, value)?;
            email_problem(text).map_or(Ok(()), |reason| Err(invalid_canonical(ty, value, reason)))
        }
        FieldType::Enum | FieldType::Reference => {
            let text = canonical_str(ty, value)?;
            if text.is_empty() {
                Err(invalid_canonical(ty, value, "it is empty"))
            } else {
                Ok(())
            }
        }
        FieldType::Currency => {
            let text = canonical_str(ty, value)?;
            if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(())
            } else {
                Err(invalid_canonical(
                    ty,
                    value,
                    "expected a three-letter ISO 4217 code in capitals, such as USD",
                ))
            }
        }
        FieldType::Bool if value.is_boolean() => Ok(()),
        FieldType::Bool => Err(invalid_canonical(ty, value, "expected true or false")),
        FieldType::Number if value.is_number() => Ok(()),
        FieldType::Number => Err(invalid_canonical(ty, value, "expected a number")),
        FieldType::Set => match value.as_array() {
            Some(items)
                if items
                    .iter()
                    .all(|v| v.as_str().is_some_and(|t| !t.is_empty()))
                    && items.windows(2).all(|w| w[0].as_str() < w[1].as_str()) =>
            {
                Ok(())
            }
            _ => Err(invalid_canonical(
                ty,
                value,
                "expected a list of distinct, non-empty texts in order",
            )),
        },
    }
}

/// A value read from a system in the canonical form of `ty`, where that form is a matter of
/// arrangement: a set's members are sorted and repeats dropped, numbers become text. Values of
/// other types, and values that cannot be arranged, are returned unchanged (validation then
/// says what is wrong).
pub fn arrange_canonical(ty: FieldType, value: Value) -> Value {
    match (ty, value) {
        (FieldType::Set, Value::Array(items)) => {
            let texts: Option<std::collections::BTreeSet<String>> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.trim().to_owned()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            match texts {
                Some(set) => Value::Array(set.into_iter().map(Value::String).collect()),
                None => Value::Array(items),
            }
        }
        (_, value) => value,
    }
}

/// The key used to match records across systems by identity: the trimmed, lowercased string
/// form of the value (numbers as their decimal text, whole floats without `.0`, booleans as
/// `true`/`false`). Null, blank strings, arrays and objects give `None`.
pub fn normalize_match_key(value: &Value) -> Option<String> {
    let key = match value {
        Value::String(text) => text.trim().to_lowercase(),
        Value::Number(number) => match decimal_from_number(number) {
            Some(decimal) => decimal.normalize().to_string(),
            None => number.to_string(),
        },
        Value::Bool(flag) => flag.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    if key.is_empty() { None } else { Some(key) }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn check_arity(side: &'static str, expected: usize, actual: usize) -> Result<(), TransformError> {
    if expected == actual {
        Ok(())
    } else {
        Err(TransformError::Arity {
            side,
            expected,
            actual,
        })
    }
}

fn owned(value: Option<&Value>) -> Values {
    vec![value.cloned()]
}

/// The value as shown in messages: strings without JSON quotes, other values as JSON, both
/// shortened to [`MAX_SHOWN_CHARS`].
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => shorten(text),
        other => shorten(&other.to_string()),
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > MAX_SHOWN_CHARS {
        let mut short: String = text.chars().take(MAX_SHOWN_CHARS).collect();
        short.push('…');
        short
    } else {
        text.to_owned()
    }
}

fn quote(value: &Value) -> String {
    format!("'{}'", show(value))
}

fn quote_list(values: &[String]) -> String {
    let mut listed: Vec<String> = values
        .iter()
        .take(MAX_LISTED_VALUES)
        .map(|v| format!("'{v}'"))
        .collect();
    if values.len() > MAX_LISTED_VALUES {
        listed.push(format!("and {} more", values.len() - MAX_LISTED_VALUES));
    }
    if listed.is_empty() {
        "(none)".to_owned()
    } else {
        listed.join(", ")
    }
}

fn describe_canonical(transform: &Transform, values: &Values) -> String {
    let show_opt = |v: &Option<Value>| v.as_ref().map_or_else(|| "nothing".to_owned(), quote);
    match (transform, values.as_slice()) {
        (Transform::FullName, [given, family]) => {
            format!(
                "given name {} and family name {}",
                show_opt(given),
                show_opt(family)
            )
        }
        _ => values.iter().map(show_opt).collect::<Vec<_>>().join(", "),
    }
}

fn type_label(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "text",
        FieldType::Date => "date",
        FieldType::Timestamp => "timestamp",
        FieldType::Money => "amount",
        FieldType::Phone => "phone number",
        FieldType::Email => "email address",
        FieldType::Enum => "code",
        FieldType::Reference => "reference",
        FieldType::Bool => "true/false value",
        FieldType::Number => "number",
        FieldType::Currency => "currency code",
        FieldType::Set => "list of values",
    }
}

fn invalid_canonical(ty: FieldType, value: &Value, reason: impl Into<String>) -> TransformError {
    TransformError::InvalidCanonical {
        field_type: ty,
        value: show(value),
        reason: reason.into(),
    }
}

fn wrong_type(value: &Value, expected: &'static str) -> TransformError {
    TransformError::WrongType {
        value: show(value),
        expected,
    }
}

/// Renders a `Display` value without panicking when its `fmt` fails (chrono and phonenumber
/// formatters report unsupported format codes that way; `to_string` would panic).
fn render(item: impl Display) -> Option<String> {
    let mut out = String::new();
    write!(out, "{item}").ok()?;
    Some(out)
}

/// A system value as text: strings trimmed, numbers as their JSON text when `numbers` is set.
/// Blank text is `None`.
fn system_text<'a>(
    value: &'a Value,
    numbers: bool,
    expected: &'static str,
) -> Result<Option<std::borrow::Cow<'a, str>>, TransformError> {
    match value {
        Value::String(text) => {
            let text = text.trim();
            Ok((!text.is_empty()).then_some(std::borrow::Cow::Borrowed(text)))
        }
        Value::Number(number) if numbers => Ok(Some(std::borrow::Cow::Owned(number.to_string()))),
        other => Err(wrong_type(other, expected)),
    }
}

fn canonical_str(ty: FieldType, value: &Value) -> Result<&str, TransformError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(invalid_canonical(ty, other, "expected text")),
    }
}
