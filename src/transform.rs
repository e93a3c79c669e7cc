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

// ---------------------------------------------------------------------------------------------
// Full name and lowercase

fn read_full_name(value: Option<&Value>) -> Result<Values, TransformError> {
    let Some(value) = value else {
        return Ok(vec![None, None]);
    };
    let Some(text) = system_text(value, false, "a name (text)")? else {
        return Ok(vec![None, None]);
    };
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let family = words.pop().map(|w| Value::String(w.to_owned()));
    let given = (!words.is_empty()).then(|| Value::String(words.join(" ")));
    Ok(vec![given, family])
}

/// The canonical `[given, family]` parts, whitespace-normalised, blank as `None`.
fn full_name_parts(canonical: &[Option<&Value>]) -> Result<Values, TransformError> {
    canonical
        .iter()
        .map(|part| match part {
            None => Ok(None),
            Some(Value::String(text)) => {
                let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
                Ok((!joined.is_empty()).then_some(Value::String(joined)))
            }
            Some(other) => Err(invalid_canonical(FieldType::String, other, "expected text")),
        })
        .collect()
}

fn write_full_name(parts: &Values) -> Option<Value> {
    let words: Vec<&str> = parts.iter().flatten().filter_map(Value::as_str).collect();
    (!words.is_empty()).then(|| Value::String(words.join(" ")))
}

fn read_lowercase(value: Option<&Value>) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(system_text(value, false, "text")?.map(|text| Value::String(text.to_lowercase())))
}

// ---------------------------------------------------------------------------------------------
// Dates

fn format_items_problem(format: &str) -> Option<String> {
    if format.trim().is_empty() {
        return Some("the format is empty".to_owned());
    }
    StrftimeItems::new(format)
        .any(|item| matches!(item, Item::Error))
        .then(|| format!("'{format}' contains a % code that is not a known strftime code"))
}

fn sample_dates() -> Vec<NaiveDate> {
    [(2024, 12, 31), (2001, 2, 3), (1999, 11, 22)]
        .into_iter()
        .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .collect()
}

/// Why dates in `format` cannot be read, if they cannot.
fn date_read_problem(format: &str) -> Option<String> {
    if let Some(problem) = format_items_problem(format) {
        return Some(problem);
    }
    for date in sample_dates() {
        // Render as a full UTC timestamp so time and zone codes in the format render too.
        let instant = date.and_hms_opt(13, 45, 30).map(|t| t.and_utc());
        let readable = instant
            .and_then(|t| render(t.format(format)))
            .and_then(|text| NaiveDate::parse_from_str(&text, format).ok())
            == Some(date);
        if !readable {
            return Some(format!(
                "dates in format '{format}' cannot be read: the format needs a year, a month \
                 and a day"
            ));
        }
    }
    None
}

/// Why dates cannot be written in `format`, if they cannot.
fn date_write_problem(format: &str) -> Option<String> {
    if let Some(problem) = date_read_problem(format) {
        return Some(problem);
    }
    for date in sample_dates() {
        let Some(text) = render(date.format(format)) else {
            return Some(format!(
                "format '{format}' contains a time of day or time zone, which a date does not have"
            ));
        };
        if NaiveDate::parse_from_str(&text, format).ok() != Some(date) {
            return Some(format!("format '{format}' cannot hold every date"));
        }
    }
    None
}

fn read_date(value: Option<&Value>, format: &str) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(text) = system_text(value, false, "a date (text)")? else {
        return Ok(None);
    };
    let invalid = || TransformError::InvalidDate {
        value: shorten(&text),
        format: format.to_owned(),
    };
    let date = NaiveDate::parse_from_str(&text, format).map_err(|_| invalid())?;
    if !(0..=9999).contains(&date.year()) {
        return Err(invalid());
    }
    let canonical = render(date.format(CANONICAL_DATE_FORMAT)).ok_or_else(invalid)?;
    Ok(Some(Value::String(canonical)))
}

fn canonical_date(value: &Value) -> Result<NaiveDate, TransformError> {
    let ty = FieldType::Date;
    let text = canonical_str(ty, value)?;
    NaiveDate::parse_from_str(text, CANONICAL_DATE_FORMAT)
        .ok()
        .filter(|date| render(date.format(CANONICAL_DATE_FORMAT)).as_deref() == Some(text))
        .ok_or_else(|| invalid_canonical(ty, value, "expected a real date in the form YYYY-MM-DD"))
}

fn write_date(value: Option<&Value>, format: &str) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let date = canonical_date(value)?;
    let text = render(date.format(format)).ok_or_else(|| {
        TransformError::Config(format!("'{format}' cannot be used to write a date"))
    })?;
    Ok(Some(Value::String(text)))
}

// ---------------------------------------------------------------------------------------------
// Timestamps

fn parse_tz(tz: &str) -> Result<Tz, TransformError> {
    Tz::from_str(tz.trim()).map_err(|_| {
        TransformError::Config(format!(
            "'{}' is not a known time zone; use an IANA name such as America/New_York or UTC",
            shorten(tz)
        ))
    })
}

fn sample_instants() -> Vec<DateTime<Utc>> {
    // Spread over the day so that every zone sees both a morning and an afternoon sample.
    [
        (2024, 12, 31, 18, 45),
        (2001, 7, 3, 4, 5),
        (2010, 3, 15, 11, 30),
    ]
    .into_iter()
    .filter_map(|(y, mo, d, h, mi)| {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, 0))
            .map(|t| t.and_utc())
    })
    .collect()
}

/// Why timestamps in `format` cannot be read or written in `zone`, if they cannot.
fn timestamp_problem(format: &str, zone: Tz) -> Option<String> {
    if let Some(problem) = format_items_problem(format) {
        return Some(problem);
    }
    for instant in sample_instants() {
        let local = instant.with_timezone(&zone);
        let Some(text) = render(local.format(format)) else {
            return Some(format!(
                "format '{format}' cannot be used to write a timestamp"
            ));
        };
        if parse_timestamp(&text, format, zone).ok() != Some(instant) {
            return Some(format!(
                "timestamps in format '{format}' cannot be read back: the format needs a full \
                 date and a time of day (hours and minutes; %I also needs %p)"
            ));
        }
    }
    None
}

/// Parses a system timestamp: with the format's own offset if it has one, else as a local time
/// in `zone` (gaps are an error, ambiguous times take the earlier instant).
fn parse_timestamp(text: &str, format: &str, zone: Tz) -> Result<DateTime<Utc>, TransformError> {
    let invalid = || TransformError::InvalidTimestamp {
        value: shorten(text),
        format: format.to_owned(),
    };
    let instant = match DateTime::parse_from_str(text, format) {
        Ok(with_offset) => with_offset.with_timezone(&Utc),
        Err(err) if err.kind() == ParseErrorKind::NotEnough => {
            let naive = NaiveDateTime::parse_from_str(text, format).map_err(|_| invalid())?;
            match zone.from_local_datetime(&naive) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
                LocalResult::None => {
                    return Err(TransformError::NonexistentLocalTime {
                        value: shorten(text),
                        tz: zone.name().to_owned(),
                    });
                }
            }
        }
        Err(_) => return Err(invalid()),
    };
    let instant = instant.trunc_subsecs(0);
    if (0..=9999).contains(&instant.year()) {
        Ok(instant)
    } else {
        Err(invalid())
    }
}

fn read_timestamp(
    value: Option<&Value>,
    format: &str,
    tz: &str,
) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let zone = parse_tz(tz)?;
    let Some(text) = system_text(value, false, "a date and time (text)")? else {
        return Ok(None);
    };
    let instant = parse_timestamp(&text, format, zone)?;
    let canonical = render(instant.format(CANONICAL_TIMESTAMP_FORMAT)).ok_or_else(|| {
        TransformError::InvalidTimestamp {
            value: shorten(&text),
            format: format.to_owned(),
        }
    })?;
    Ok(Some(Value::String(canonical)))
}

fn canonical_timestamp(value: &Value) -> Result<DateTime<Utc>, TransformError> {
    let ty = FieldType::Timestamp;
    let text = canonical_str(ty, value)?;
    NaiveDateTime::parse_from_str(text, CANONICAL_TIMESTAMP_FORMAT)
        .ok()
        .map(|t| t.and_utc())
        .filter(|t| render(t.format(CANONICAL_TIMESTAMP_FORMAT)).as_deref() == Some(text))
        .ok_or_else(|| {
            invalid_canonical(
                ty,
                value,
                "expected a UTC time in the form YYYY-MM-DDTHH:MM:SSZ, e.g. 2026-03-01T14:05:00Z",
            )
        })
}

fn write_timestamp(
    value: Option<&Value>,
    format: &str,
    tz: &str,
) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let zone = parse_tz(tz)?;
    let instant = canonical_timestamp(value)?;
    let local = instant.with_timezone(&zone);
    let text = render(local.format(format)).ok_or_else(|| {
        TransformError::Config(format!("'{format}' cannot be used to write a timestamp"))
    })?;
    let reads_back = parse_timestamp(&text, format, zone).ok() == Some(instant);
    let ambiguous = matches!(
        zone.from_local_datetime(&local.naive_local()),
        LocalResult::Ambiguous(..)
    );
    if !reads_back && ambiguous {
        return Err(TransformError::NotRepresentable {
            value: quote(value),
            reason: format!(
                "the local time {} occurs twice in {} when daylight-saving time ends, and \
                 '{text}' would be read as the first of the two",
                local.naive_local(),
                zone.name()
            ),
        });
    }
    Ok(Some(Value::String(text)))
}

// ---------------------------------------------------------------------------------------------
// Money

fn check_places(name: &str, places: u32) -> Result<(), TransformError> {
    if places <= MAX_DECIMAL_PLACES {
        Ok(())
    } else {
        Err(TransformError::Config(format!(
            "{name} {places} is too large; at most {MAX_DECIMAL_PLACES} decimal places are \
             supported"
        )))
    }
}

/// Parses decimal text exactly (plain or scientific notation); never rounds.
fn parse_decimal_text(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// A JSON number as a decimal, via its shortest text form so that `85000.1` stays `85000.1`.
fn decimal_from_number(number: &Number) -> Option<Decimal> {
    if let Some(int) = number.as_i64() {
        return Some(Decimal::from(int));
    }
    if let Some(int) = number.as_u64() {
        return Some(Decimal::from(int));
    }
    parse_decimal_text(&number.to_string())
}

/// A system amount (JSON number or decimal text) as a decimal; blank text is `None`.
fn system_decimal(
    value: &Value,
    expected: &'static str,
) -> Result<Option<Decimal>, TransformError> {
    let Some(text) = system_text(value, true, expected)? else {
        return Ok(None);
    };
    let parsed = match value {
        Value::Number(number) => decimal_from_number(number),
        _ => parse_decimal_text(&text),
    };
    parsed
        .map(Some)
        .ok_or_else(|| TransformError::InvalidMoney {
            value: shorten(&text),
            reason: "it is not a number, or it has too many digits".to_owned(),
        })
}

fn money_value(decimal: Decimal) -> Value {
    Value::String(decimal.normalize().to_string())
}

fn read_money_minor(value: Option<&Value>, exponent: u32) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    check_places("exponent", exponent)?;
    let Some(amount) = system_decimal(value, "a whole number of minor units (e.g. cents)")? else {
        return Ok(None);
    };
    let money_error = |reason: &str| TransformError::InvalidMoney {
        value: show(value),
        reason: reason.to_owned(),
    };
    if !amount.is_integer() {
        return Err(money_error(
            "it is not a whole number of minor units (e.g. cents)",
        ));
    }
    let minor = amount.normalize();
    let major = Decimal::try_from_i128_with_scale(minor.mantissa(), exponent)
        .map_err(|_| money_error("it is too large"))?;
    Ok(Some(money_value(major)))
}

fn canonical_money(value: &Value) -> Result<Decimal, TransformError> {
    let ty = FieldType::Money;
    let text = canonical_str(ty, value)?;
    let Some(decimal) = Decimal::from_str_exact(text).ok() else {
        return Err(invalid_canonical(
            ty,
            value,
            "expected a decimal number such as 85000.5",
        ));
    };
    let normal = decimal.normalize().to_string();
    if normal == text {
        Ok(decimal)
    } else {
        Err(invalid_canonical(
            ty,
            value,
            format!("expected the normalised form '{normal}' (no trailing zeros)"),
        ))
    }
}

fn too_many_decimals(value: &Value, places: u32) -> TransformError {
    TransformError::InvalidMoney {
        value: show(value),
        reason: format!(
            "this system stores at most {places} decimal place(s), and amounts are never rounded"
        ),
    }
}

fn write_money_minor(
    value: Option<&Value>,
    exponent: u32,
) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    check_places("exponent", exponent)?;
    let amount = canonical_money(value)?;
    let amount = amount.normalize();
    if amount.scale() > exponent {
        return Err(too_many_decimals(value, exponent));
    }
    let minor = 10_i128
        .checked_pow(exponent - amount.scale())
        .and_then(|factor| amount.mantissa().checked_mul(factor));
    if let Some(int) = minor.and_then(|m| i64::try_from(m).ok()) {
        return Ok(Some(Value::from(int)));
    }
    if let Some(int) = minor.and_then(|m| u64::try_from(m).ok()) {
        return Ok(Some(Value::from(int)));
    }
    Err(TransformError::InvalidMoney {
        value: show(value),
        reason: "it is too large for this system".to_owned(),
    })
}

fn read_money_decimal(value: Option<&Value>) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(system_decimal(value, "an amount (a number or decimal text)")?.map(money_value))
}

fn write_money_decimal(value: Option<&Value>, scale: u32) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    check_places("scale", scale)?;
    let amount = canonical_money(value)?.normalize();
    if amount.scale() > scale {
        return Err(too_many_decimals(value, scale));
    }
    // Pad the normalised text with zeros: exact, whatever the size of the number.
    let mut text = amount.to_string();
    let have = amount.scale();
    if scale > 0 {
        if have == 0 {
            text.push('.');
        }
        text.extend(std::iter::repeat_n('0', (scale - have) as usize));
    }
    Ok(Some(Value::String(text)))
}

// ---------------------------------------------------------------------------------------------
// Enums

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (decimal_from_number(x), decimal_from_number(y));
            x == y || (p.is_some() && p == q)
        }
        _ => a == b,
    }
}

fn find_system_entry<'t>(table: &'t [EnumEntry], value: &Value) -> Option<&'t EnumEntry> {
    if let Some(entry) = table.iter().find(|e| same_scalar(&e.system, value)) {
        return Some(entry);
    }
    let text = value.as_str()?.trim().to_lowercase();
    let mut loose = table.iter().filter(|e| {
        e.system
            .as_str()
            .is_some_and(|s| s.trim().to_lowercase() == text)
    });
    let first = loose.next()?;
    // Entries of a lossy table sharing one system value are one match, read as the first;
    // two different system values that only differ in case are ambiguous.
    loose
        .all(|other| same_scalar(&other.system, &first.system))
        .then_some(first)
}

fn read_enum(value: Option<&Value>, table: &[EnumEntry]) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Some(entry) = find_system_entry(table, value) {
        return Ok(Some(Value::String(entry.canonical.clone())));
    }
    if value.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Ok(None);
    }
    Err(TransformError::UnknownEnumValue {
        value: show(value),
        allowed: table.iter().map(|e| show(&e.system)).collect(),
    })
}

fn write_enum(value: Option<&Value>, table: &[EnumEntry]) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let code = canonical_str(FieldType::Enum, value)?;
    match table.iter().find(|e| e.canonical == code) {
        Some(entry) => Ok(Some(entry.system.clone())),
        None => Err(TransformError::UnknownEnumValue {
            value: shorten(code),
            allowed: table.iter().map(|e| shorten(&e.canonical)).collect(),
        }),
    }
}

fn enum_write_problem(table: &[EnumEntry]) -> Option<String> {
    table.iter().enumerate().find_map(|(i, entry)| {
        let sharing: Vec<String> = table[i..]
            .iter()
            .filter(|other| other.canonical == entry.canonical)
            .map(|other| quote(&other.system))
            .collect();
        (sharing.len() > 1).then(|| {
            format!(
                "the enum table maps several system values ({}) to the code '{}', so which one \
                 to write is unknown",
                sharing.join(", "),
                shorten(&entry.canonical)
            )
        })
    })
}

fn validate_enum_table(table: &[EnumEntry]) -> Result<(), TransformError> {
    if table.is_empty() {
        return Err(TransformError::Config("the enum table is empty".to_owned()));
    }
    for (i, entry) in table.iter().enumerate() {
        if !matches!(
            entry.system,
            Value::String(_) | Value::Number(_) | Value::Bool(_)
        ) {
            return Err(TransformError::Config(format!(
                "enum system value {} must be text, a number or true/false",
                quote(&entry.system)
            )));
        }
        if entry.canonical.trim().is_empty() {
            return Err(TransformError::Config(format!(
                "enum system value {} maps to an empty code",
                quote(&entry.system)
            )));
        }
        // Several codes sharing a system value is a lossy table, which is allowed; the same
        // pair twice is a copy-paste slip.
        if table[..i].iter().any(|other| {
            same_scalar(&other.system, &entry.system) && other.canonical == entry.canonical
        }) {
            return Err(TransformError::Config(format!(
                "enum system value {} appears more than once for the code '{}'",
                quote(&entry.system),
                shorten(&entry.canonical)
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phones

/// The phonenumber region for `region` and its country calling code.
fn parse_region(region: &str) -> Result<(phonenumber::country::Id, u16), TransformError> {
    let upper = region.trim().to_ascii_uppercase();
    let unknown = || {
        TransformError::Config(format!(
            "'{}' is not a known phone region; use a two-letter ISO country code such as US or GB",
            shorten(region)
        ))
    };
    let id = phonenumber::country::Id::from_str(&upper).map_err(|_| unknown())?;
    let code = phonenumber::metadata::DATABASE
        .by_id(upper.as_str())
        .map(|meta| meta.country_code())
        .ok_or_else(unknown)?;
    Ok((id, code))
}

thread_local! {
    /// (system text, region) -> the number in E.164.
    static PHONES_READ: crate::memo::Table<(String, String), String> = Default::default();
    /// Canonical (E.164) texts known valid.
    static PHONES_CANONICAL: crate::memo::Table<String, PhoneNumber> = Default::default();
    /// (E.164 text, region, format) -> the number as the system writes it.
    static PHONES_WRITTEN: crate::memo::Table<(String, String, PhoneFormat), String> =
        Default::default();
}

fn read_phone(value: Option<&Value>, region: &str) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(text) = system_text(value, true, "a phone number (text)")? else {
        return Ok(None);
    };
    let key = (text.to_string(), region.to_owned());
    crate::memo::remember(&PHONES_READ, key, || {
        let (e164, number) = parse_phone(&text, region)?;
        // The number just read is canonical: validating or writing it next (as every read
        // value is) need not parse its E.164 text again. A carrier code is kept only by a
        // national parse, so such a number is left to be parsed from E.164 like any other.
        if number.carrier().is_none() {
            crate::memo::remember(&PHONES_CANONICAL, e164.clone(), || {
                Ok::<_, TransformError>(number)
            })?;
        }
        Ok(e164)
    })
    .map(|e164| Some(Value::String(e164)))
}

/// A system's phone text, read in `region`, as E.164 (and the number parsed).
fn parse_phone(text: &str, region: &str) -> Result<(String, PhoneNumber), TransformError> {
    let (id, _) = parse_region(region)?;
    let invalid = |reason: &str| TransformError::InvalidPhone {
        value: shorten(text),
        reason: reason.to_owned(),
    };
    let number = phonenumber::parse(Some(id), text)
        .map_err(|_| invalid("it could not be read as a phone number"))?;
    if !number.is_valid() {
        return Err(invalid(
            "no such number exists in its country's numbering plan",
        ));
    }
    if number.extension().is_some() {
        return Err(invalid(
            "it has an extension, which an international (E.164) phone number cannot hold",
        ));
    }
    let e164 = render(number.format().mode(phonenumber::Mode::E164))
        .ok_or_else(|| invalid("it could not be written in international form"))?;
    Ok((e164, number))
}

fn canonical_phone(value: &Value) -> Result<PhoneNumber, TransformError> {
    let text = canonical_str(FieldType::Phone, value)?;
    crate::memo::remember(&PHONES_CANONICAL, text.to_owned(), || {
        parse_canonical_phone(value, text)
    })
}

/// A canonical phone value, which must already be in E.164.
fn parse_canonical_phone(value: &Value, text: &str) -> Result<PhoneNumber, TransformError> {
    let ty = FieldType::Phone;
    let number = phonenumber::parse(None, text)
        .ok()
        .filter(|n| text.starts_with('+') && n.is_valid() && n.extension().is_none())
        .ok_or_else(|| {
            invalid_canonical(
                ty,
                value,
                "expected a valid number in E.164 form, e.g. +14155550123",
            )
        })?;
    match render(number.format().mode(phonenumber::Mode::E164)) {
        Some(e164) if e164 == text => Ok(number),
        Some(e164) => Err(invalid_canonical(
            ty,
            value,
            format!("expected the E.164 form '{e164}'"),
        )),
        None => Err(invalid_canonical(
            ty,
            value,
            "expected a number in E.164 form",
        )),
    }
}

fn write_phone(
    value: Option<&Value>,
    region: &str,
    system_format: PhoneFormat,
) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = canonical_str(FieldType::Phone, value)?;
    let key = (text.to_owned(), region.to_owned(), system_format);
    crate::memo::remember(&PHONES_WRITTEN, key, || {
        format_phone(value, region, system_format)
    })
    .map(|text| Some(Value::String(text)))
}

/// A canonical phone value as a system in `region` writes it.
fn format_phone(
    value: &Value,
    region: &str,
    system_format: PhoneFormat,
) -> Result<String, TransformError> {
    let (_, region_code) = parse_region(region)?;
    let number = canonical_phone(value)?;
    let mode = match system_format {
        PhoneFormat::E164 => phonenumber::Mode::E164,
        PhoneFormat::International => phonenumber::Mode::International,
        PhoneFormat::National if number.country().code() == region_code => {
            phonenumber::Mode::National
        }
        PhoneFormat::National => phonenumber::Mode::International,
    };
    render(number.format().mode(mode)).ok_or_else(|| TransformError::NotRepresentable {
        value: quote(value),
        reason: "the phone number could not be formatted for this system".to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Emails

/// Why `text` does not have the basic shape local@domain.tld, if it does not.
fn email_problem(text: &str) -> Option<&'static str> {
    let Some((local, domain)) = text.split_once('@') else {
        return Some("expected the form name@example.com (there is no @)");
    };
    if text.len() > 254 {
        return Some("it is longer than 254 characters");
    }
    if local.is_empty() || local.len() > 64 {
        return Some("the part before the @ must have 1 to 64 characters");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it contains spaces or control characters");
    }
    if domain.contains('@') {
        return Some("it contains more than one @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some("the domain after the @ needs a dot, as in example.com");
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if !labels.iter().all(label_ok) {
        return Some("the domain after the @ is not a valid domain name");
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
        return Some("the domain must end in a top-level domain such as .com");
    }
    None
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(t: &Transform, v: Value) -> Result<Values, TransformError> {
        t.to_canonical(&[Some(&v)])
    }

    fn sys(t: &Transform, v: Value) -> Result<Values, TransformError> {
        t.to_system(&[Some(&v)])
    }

    fn one(v: Values) -> Option<Value> {
        assert_eq!(v.len(), 1, "a 1:1 transform yields one value");
        v.into_iter().next().flatten()
    }

    fn date(format: &str) -> Transform {
        Transform::Date {
            format: format.to_owned(),
        }
    }

    fn ts(format: Option<&str>, tz: &str) -> Transform {
        Transform::Timestamp {
            format: format.map(str::to_owned),
            tz: tz.to_owned(),
        }
    }

    fn phone(format: PhoneFormat) -> Transform {
        Transform::Phone {
            region: "US".to_owned(),
            system_format: format,
        }
    }

    fn status_table() -> Transform {
        Transform::Enum {
            table: vec![
                EnumEntry {
                    system: json!("Active"),
                    canonical: "active".to_owned(),
                },
                EnumEntry {
                    system: json!("On Leave"),
                    canonical: "on_leave".to_owned(),
                },
                EnumEntry {
                    system: json!(3),
                    canonical: "terminated".to_owned(),
                },
            ],
        }
    }

    #[test]
    fn arity_matches_the_shape_of_each_transform() {
        assert_eq!(Transform::Copy.arity(), (1, 1));
        assert_eq!(Transform::FullName.arity(), (1, 2));
        assert_eq!(Transform::Constant { value: json!(1) }.arity(), (1, 0));
        assert_eq!(date("%Y").arity(), (1, 1));
    }

    #[test]
    fn slice_length_mismatch_is_an_arity_error() {
        let err = Transform::FullName.to_system(&[None]).unwrap_err();
        assert_eq!(
            err,
            TransformError::Arity {
                side: "canonical",
                expected: 2,
                actual: 1
            }
        );
        assert!(matches!(
            Transform::Copy.to_canonical(&[]),
            Err(TransformError::Arity { side: "system", .. })
        ));
    }

    #[test]
    fn null_in_gives_null_out() {
        let transforms = [
            Transform::Copy,
            Transform::Lowercase,
            date("%m/%d/%Y"),
            ts(None, "UTC"),
            Transform::MoneyMinor { exponent: 2 },
            Transform::MoneyDecimal { scale: 2 },
            status_table(),
            phone(PhoneFormat::E164),
        ];
        for t in &transforms {
            assert_eq!(t.to_canonical(&[None]).unwrap(), vec![None], "{t:?}");
            assert_eq!(
                t.to_canonical(&[Some(&Value::Null)]).unwrap(),
                vec![None],
                "{t:?}"
            );
            if t.is_reversible() {
                assert_eq!(t.to_system(&[None]).unwrap(), vec![None], "{t:?}");
            }
        }
        assert_eq!(
            Transform::FullName.to_canonical(&[None]).unwrap(),
            vec![None, None]
        );
        assert_eq!(
            Transform::FullName.to_system(&[None, None]).unwrap(),
            vec![None]
        );
    }

    #[test]
    fn copy_passes_values_through() {
        let v = json!({"a": [1, 2]});
        assert_eq!(
            canon(&Transform::Copy, v.clone()).unwrap(),
            vec![Some(v.clone())]
        );
        assert_eq!(sys(&Transform::Copy, v.clone()).unwrap(), vec![Some(v)]);
    }

    #[test]
    fn full_name_splits_on_the_last_word() {
        let t = Transform::FullName;
        assert_eq!(
            canon(&t, json!("  Mary   Ann  Smith ")).unwrap(),
            vec![Some(json!("Mary Ann")), Some(json!("Smith"))]
        );
        assert_eq!(
            canon(&t, json!("Cher")).unwrap(),
            vec![None, Some(json!("Cher"))]
        );
        assert_eq!(canon(&t, json!("   ")).unwrap(), vec![None, None]);
        let (given, family) = (json!("Mary Ann"), json!("Smith"));
        assert_eq!(
            t.to_system(&[Some(&given), Some(&family)]).unwrap(),
            vec![Some(json!("Mary Ann Smith"))]
        );
        assert_eq!(
            t.to_system(&[None, Some(&family)]).unwrap(),
            vec![Some(json!("Smith"))]
        );
        assert!(matches!(
            canon(&t, json!(42)),
            Err(TransformError::WrongType { .. })
        ));
    }

    #[test]
    fn full_name_refuses_names_that_would_read_back_differently() {
        let t = Transform::FullName;
        let (given, family) = (json!("Juan"), json!("García Márquez"));
        let err = t.to_system(&[Some(&given), Some(&family)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "given name 'Juan' and family name 'García Márquez' cannot be written to this system \
             without changing it: the system would hold 'Juan García Márquez', which reads back \
             as given name 'Juan García' and family name 'Márquez'"
        );
        let err = t.to_system(&[Some(&given), None]).unwrap_err();
        assert!(
            matches!(err, TransformError::NotRepresentable { .. }),
            "{err}"
        );
    }

    #[test]
    fn lowercase_is_read_only() {
        let t = Transform::Lowercase;
        assert_eq!(
            one(canon(&t, json!("  Jane.Doe@Example.COM ")).unwrap()),
            Some(json!("jane.doe@example.com"))
        );
        assert!(!t.is_reversible());
        assert!(matches!(
            sys(&t, json!("x")),
            Err(TransformError::Irreversible { .. })
        ));
    }

    #[test]
    fn date_reads_and_writes_the_system_format() {
        let t = date("%m/%d/%Y");
        assert_eq!(
            one(canon(&t, json!("03/15/2024")).unwrap()),
            Some(json!("2024-03-15"))
        );
        assert_eq!(
            one(sys(&t, json!("2024-03-15")).unwrap()),
            Some(json!("03/15/2024"))
        );
        assert!(t.is_reversible());
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn a_date_that_does_not_exist_is_named_in_the_error() {
        let err = canon(&date("%m/%d/%Y"), json!("13/45/2024")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'13/45/2024' is not a date in format %m/%d/%Y"
        );
        let err = canon(&date("%Y-%m-%d"), json!("2023-02-29")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'2023-02-29' is not a date in format %Y-%m-%d"
        );
    }

    #[test]
    fn date_formats_without_a_full_date_are_read_only_and_invalid() {
        for format in ["%m/%d", "%Y-%m", "%d %Y"] {
            let t = date(format);
            assert!(!t.is_reversible(), "{format} lacks a year, month or day");
            let err = t.validate().unwrap_err();
            assert!(
                err.to_string().contains("needs a year, a month and a day"),
                "{err}"
            );
        }
        assert!(matches!(
            date("%Q").validate(),
            Err(TransformError::Config(_))
        ));
        assert!(matches!(
            sys(&date("%m/%d"), json!("2024-01-01")),
            Err(TransformError::Irreversible { .. })
        ));
    }

    #[test]
    fn date_format_with_a_time_is_read_only() {
        let t = date("%Y-%m-%d %H:%M");
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(
            one(canon(&t, json!("2024-03-15 10:30")).unwrap()),
            Some(json!("2024-03-15"))
        );
        assert!(!t.is_reversible());
    }

    #[test]
    fn two_digit_years_refuse_dates_they_cannot_hold() {
        let t = date("%m/%d/%y");
        assert!(t.is_reversible());
        assert_eq!(
            one(sys(&t, json!("2024-03-15")).unwrap()),
            Some(json!("03/15/24"))
        );
        let err = sys(&t, json!("1965-03-15")).unwrap_err();
        assert!(
            matches!(err, TransformError::NotRepresentable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("'2065-03-15'"), "{err}");
    }

    #[test]
    fn date_write_requires_canonical_form() {
        let err = sys(&date("%m/%d/%Y"), json!("2024-3-5")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'2024-3-5' is not a valid date: expected a real date in the form YYYY-MM-DD"
        );
    }

    #[test]
    fn timestamp_converts_local_time_to_utc() {
        let t = ts(None, "America/New_York");
        assert_eq!(
            one(canon(&t, json!("2026-03-01 09:05:00")).unwrap()),
            Some(json!("2026-03-01T14:05:00Z"))
        );
        assert_eq!(
            one(sys(&t, json!("2026-07-01T14:05:00Z")).unwrap()),
            Some(json!("2026-07-01 10:05:00"))
        );
        let t = ts(Some("%Y-%m-%dT%H:%M:%S%.f%:z"), "Europe/Paris");
        assert_eq!(
            one(canon(&t, json!("2026-03-01T09:05:00.750-05:00")).unwrap()),
            Some(json!("2026-03-01T14:05:00Z"))
        );
        assert_eq!(
            one(sys(&t, json!("2026-03-01T14:05:00Z")).unwrap()),
            Some(json!("2026-03-01T15:05:00+01:00"))
        );
    }

    #[test]
    fn timestamp_dst_gap_is_an_error_and_overlap_takes_the_earlier() {
        let t = ts(None, "America/New_York");
        let err = canon(&t, json!("2026-03-08 02:30:00")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'2026-03-08 02:30:00' does not exist in time zone America/New_York: the clocks skip \
             that time when daylight-saving time starts"
        );
        assert_eq!(
            one(canon(&t, json!("2026-11-01 01:30:00")).unwrap()),
            Some(json!("2026-11-01T05:30:00Z"))
        );
        let err = sys(&t, json!("2026-11-01T06:30:00Z")).unwrap_err();
        assert!(
            err.to_string().contains("occurs twice in America/New_York"),
            "{err}"
        );
    }

    #[test]
    fn timestamp_settings_are_validated() {
        let err = ts(None, "Mars/Olympus").validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid transform settings: 'Mars/Olympus' is not a known time zone; use an IANA \
             name such as America/New_York or UTC"
        );
        assert!(ts(Some("%Y-%m-%d"), "UTC").validate().is_err());
        assert!(ts(Some("%Y-%m-%d %I:%M"), "UTC").validate().is_err());
        assert_eq!(
            ts(Some("%d/%m/%Y %I:%M %p"), "Asia/Tokyo").validate(),
            Ok(())
        );
        let err = canon(&ts(None, "UTC"), json!("yesterday")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'yesterday' is not a date and time in format %Y-%m-%d %H:%M:%S"
        );
    }

    #[test]
    fn money_minor_units() {
        let t = Transform::MoneyMinor { exponent: 2 };
        assert_eq!(
            one(canon(&t, json!(8500000)).unwrap()),
            Some(json!("85000"))
        );
        assert_eq!(one(canon(&t, json!(-325)).unwrap()), Some(json!("-3.25")));
        assert_eq!(
            one(canon(&t, json!("8500050")).unwrap()),
            Some(json!("85000.5"))
        );
        assert_eq!(
            one(sys(&t, json!("85000.5")).unwrap()),
            Some(json!(8500050))
        );
        let jpy = Transform::MoneyMinor { exponent: 0 };
        assert_eq!(one(canon(&jpy, json!(1200)).unwrap()), Some(json!("1200")));
        let err = canon(&t, json!(12.5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'12.5' is not a valid amount: it is not a whole number of minor units (e.g. cents)"
        );
        let err = sys(&t, json!("1.005")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'1.005' is not a valid amount: this system stores at most 2 decimal place(s), and \
             amounts are never rounded"
        );
        let err = sys(&t, json!("100000000000000000000")).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn money_decimal() {
        let t = Transform::MoneyDecimal { scale: 2 };
        assert_eq!(
            one(canon(&t, json!("85000.00")).unwrap()),
            Some(json!("85000"))
        );
        assert_eq!(
            one(canon(&t, json!(85000.5)).unwrap()),
            Some(json!("85000.5"))
        );
        assert_eq!(
            one(canon(&t, json!(" -3.250 ")).unwrap()),
            Some(json!("-3.25"))
        );
        assert_eq!(one(canon(&t, json!("-0.00")).unwrap()), Some(json!("0")));
        assert_eq!(
            one(sys(&t, json!("85000.5")).unwrap()),
            Some(json!("85000.50"))
        );
        assert_eq!(
            one(sys(&t, json!("85000")).unwrap()),
            Some(json!("85000.00"))
        );
        let whole = Transform::MoneyDecimal { scale: 0 };
        assert_eq!(one(sys(&whole, json!("-7")).unwrap()), Some(json!("-7")));
        assert!(sys(&whole, json!("7.5")).is_err());
        let err = canon(&t, json!("85,000")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'85,000' is not a valid amount: it is not a number, or it has too many digits"
        );
        let err = sys(&t, json!("85000.50")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'85000.50' is not a valid amount: expected the normalised form '85000.5' (no \
             trailing zeros)"
        );
        assert!(Transform::MoneyDecimal { scale: 29 }.validate().is_err());
    }

    #[test]
    fn enum_table_round_trips_and_names_allowed_values() {
        let t = status_table();
        assert_eq!(t.validate(), Ok(()));
        assert!(t.is_reversible());
        assert_eq!(
            one(canon(&t, json!("Active")).unwrap()),
            Some(json!("active"))
        );
        assert_eq!(
            one(sys(&t, json!("active")).unwrap()),
            Some(json!("Active"))
        );
        assert_eq!(
            one(canon(&t, json!(3.0)).unwrap()),
            Some(json!("terminated"))
        );
        assert_eq!(
            one(canon(&t, json!(" on leave")).unwrap()),
            Some(json!("on_leave"))
        );
        let err = canon(&t, json!("Retired")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'Retired' is not one of the allowed values: 'Active', 'On Leave', '3'"
        );
        let err = sys(&t, json!("retired")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'retired' is not one of the allowed values: 'active', 'on_leave', 'terminated'"
        );
    }

    #[test]
    fn enum_table_problems() {
        let many_to_one = Transform::Enum {
            table: vec![
                EnumEntry {
                    system: json!("A"),
                    canonical: "active".to_owned(),
                },
                EnumEntry {
                    system: json!("Active"),
                    canonical: "active".to_owned(),
                },
            ],
        };
        assert_eq!(many_to_one.validate(), Ok(()));
        assert!(!many_to_one.is_reversible());
        let err = sys(&many_to_one, json!("active")).unwrap_err();
        assert!(err.to_string().contains("'A', 'Active'"), "{err}");

        let duplicate = Transform::Enum {
            table: vec![
                EnumEntry {
                    system: json!(1),
                    canonical: "active".to_owned(),
                },
                EnumEntry {
                    system: json!(1.0),
                    canonical: "active".to_owned(),
                },
            ],
        };
        let err = duplicate.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid transform settings: enum system value '1.0' appears more than once for the \
             code 'active'",
            "the same value and code listed twice is a config error"
        );
        assert!(Transform::Enum { table: vec![] }.validate().is_err());
    }

    fn entry(system: Value, code: &str) -> EnumEntry {
        EnumEntry {
            system,
            canonical: code.to_owned(),
        }
    }

    /// A three-value status written onto a boolean.
    fn lossy_status() -> Transform {
        Transform::Enum {
            table: vec![
                entry(json!(true), "active"),
                entry(json!(true), "on_leave"),
                entry(json!(false), "terminated"),
            ],
        }
    }

    #[test]
    fn lossy_enum_tables_are_valid_and_writable() {
        let t = lossy_status();
        assert_eq!(
            t.validate(),
            Ok(()),
            "several codes may share a system value"
        );
        assert!(t.is_reversible(), "a lossy table still writes every code");
        assert_eq!(
            one(sys(&t, json!("on_leave")).expect("a lossy code is written")),
            Some(json!(true)),
            "each code writes its own entry's value, even when it reads back as another code"
        );
        assert_eq!(one(sys(&t, json!("active")).unwrap()), Some(json!(true)));
        assert_eq!(
            one(sys(&t, json!("terminated")).unwrap()),
            Some(json!(false))
        );
    }

    #[test]
    fn lossy_enum_reads_the_first_code_and_reports_the_alternatives() {
        let t = lossy_status();
        assert_eq!(
            one(canon(&t, json!(true)).unwrap()),
            Some(json!("active")),
            "a shared value reads as the first listed code"
        );
        assert_eq!(
            t.alternatives(&[Some(&json!(true))]),
            Some(vec![json!("active"), json!("on_leave")]),
            "the codes a shared value could mean are listed in table order"
        );
        assert_eq!(
            t.alternatives(&[Some(&json!(false))]),
            None,
            "a value only one code reads as has no alternatives"
        );
        assert_eq!(
            t.alternatives(&[None]),
            None,
            "nothing read, no alternatives"
        );
        assert_eq!(
            t.alternatives(&[Some(&json!("maybe"))]),
            None,
            "an unknown value has no alternatives"
        );
        assert_eq!(
            status_table().alternatives(&[Some(&json!("Active"))]),
            None,
            "a one-to-one table never has alternatives"
        );
        assert_eq!(
            Transform::Copy.alternatives(&[Some(&json!(true))]),
            None,
            "only enum tables are lossy"
        );
    }

    #[test]
    fn lossy_text_values_still_match_loosely() {
        let t = Transform::Enum {
            table: vec![
                entry(json!("Active"), "active"),
                entry(json!("Active"), "on_leave"),
                entry(json!("Gone"), "terminated"),
            ],
        };
        assert_eq!(
            one(canon(&t, json!(" active")).unwrap()),
            Some(json!("active")),
            "entries sharing one system value are one loose match"
        );
        assert_eq!(
            t.alternatives(&[Some(&json!("ACTIVE"))]),
            Some(vec![json!("active"), json!("on_leave")]),
            "a loose match reports the alternatives of the value it matched"
        );
        let ambiguous = Transform::Enum {
            table: vec![entry(json!("Active"), "a"), entry(json!("ACTIVE"), "b")],
        };
        assert!(
            canon(&ambiguous, json!("active")).is_err(),
            "two different system values that differ only in case stay ambiguous"
        );
    }

    #[test]
    fn several_values_for_one_code_stay_read_only_in_a_lossy_table() {
        let t = Transform::Enum {
            table: vec![
                entry(json!(true), "active"),
                entry(json!(true), "on_leave"),
                entry(json!("Y"), "active"),
            ],
        };
        assert_eq!(t.validate(), Ok(()), "the table itself is valid");
        assert!(
            !t.is_reversible(),
            "a code with several system values cannot be written, lossy or not"
        );
    }

    #[test]
    fn phone_numbers_become_e164() {
        let t = phone(PhoneFormat::E164);
        for typed in [
            "(415) 555-0123",
            "415.555.0123",
            "+1 415 555 0123",
            "4155550123",
        ] {
            assert_eq!(
                one(canon(&t, json!(typed)).unwrap()),
                Some(json!("+14155550123")),
                "{typed}"
            );
        }
        assert_eq!(
            one(canon(&t, json!("+44 20 7946 0958")).unwrap()),
            Some(json!("+442079460958"))
        );
        assert_eq!(
            one(sys(&t, json!("+14155550123")).unwrap()),
            Some(json!("+14155550123"))
        );
        let national = phone(PhoneFormat::National);
        assert_eq!(
            one(sys(&national, json!("+14155550123")).unwrap()),
            Some(json!("(415) 555-0123"))
        );
        assert_eq!(
            one(sys(&national, json!("+442079460958")).unwrap()),
            Some(json!("+44 20 7946 0958"))
        );
        let international = phone(PhoneFormat::International);
        assert_eq!(
            one(sys(&international, json!("+14155550123")).unwrap()),
            Some(json!("+1 415-555-0123"))
        );
    }

    #[test]
    fn a_number_read_from_a_system_is_the_number_its_e164_text_parses_to() {
        for (typed, region) in [
            ("(415) 555-0123", "US"),
            ("020 7946 0958", "GB"),
            ("06 12 34 56 78", "FR"),
            ("030 1234567", "DE"),
            ("02 1234 5678", "IT"),
            ("+61 2 9876 5432", "US"),
        ] {
            let (e164, read) = parse_phone(typed, region).expect("a valid number");
            let parsed = parse_canonical_phone(&json!(e164), &e164).expect("canonical");
            for mode in [
                phonenumber::Mode::E164,
                phonenumber::Mode::International,
                phonenumber::Mode::National,
            ] {
                assert_eq!(
                    read.format().mode(mode).to_string(),
                    parsed.format().mode(mode).to_string(),
                    "{typed} read in {region} is remembered as canonical {e164}: it must write \
                     as that text parses ({mode:?})"
                );
            }
        }
    }

    #[test]
    fn invalid_phone_numbers_are_named() {
        let t = phone(PhoneFormat::E164);
        let err = canon(&t, json!("123")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("'123' is not a valid phone number"),
            "{err}"
        );
        let err = canon(&t, json!("call me")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("'call me' is not a valid phone number"),
            "{err}"
        );
        let err = canon(&t, json!("415-555-0123 ext. 12")).unwrap_err();
        assert!(err.to_string().contains("extension"), "{err}");
        let err = sys(&t, json!("(415) 555-0123")).unwrap_err();
        assert!(matches!(
            err,
            TransformError::InvalidCanonical {
                field_type: FieldType::Phone,
                ..
            }
        ));
        let err = Transform::Phone {
            region: "XX".to_owned(),
            system_format: PhoneFormat::E164,
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid transform settings: 'XX' is not a known phone region; use a two-letter ISO \
             country code such as US or GB"
        );
    }

    #[test]
    fn constant_always_writes_and_never_reads() {
        let t = Transform::Constant {
            value: json!("HR-SYNC"),
        };
        assert_eq!(
            t.to_canonical(&[Some(&json!("anything"))]).unwrap(),
            Vec::<Option<Value>>::new()
        );
        assert_eq!(t.to_system(&[]).unwrap(), vec![Some(json!("HR-SYNC"))]);
        assert!(t.is_reversible());
    }

    #[test]
    fn transforms_deserialise_from_tagged_json() {
        let t: Transform =
            serde_json::from_value(json!({"kind": "phone", "region": "US"})).unwrap();
        assert_eq!(t, phone(PhoneFormat::E164));
        let t: Transform =
            serde_json::from_value(json!({"kind": "timestamp", "tz": "UTC"})).unwrap();
        assert_eq!(t, ts(None, "UTC"));
        let t: Transform = serde_json::from_value(json!({"kind": "full_name"})).unwrap();
        assert_eq!(t, Transform::FullName);
        let t = Transform::MoneyMinor { exponent: 2 };
        let back: Transform = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"kind": "money_minor", "exponent": 2})
        );
    }

    #[test]
    fn canonical_values_are_checked_by_type() {
        let ok = [
            (FieldType::String, json!("x")),
            (FieldType::Date, json!("2024-02-29")),
            (FieldType::Timestamp, json!("2026-03-01T14:05:00Z")),
            (FieldType::Money, json!("-3.25")),
            (FieldType::Phone, json!("+14155550123")),
            (FieldType::Email, json!("jane.doe@example.com")),
            (FieldType::Enum, json!("on_leave")),
            (FieldType::Reference, json!("emp-1")),
            (FieldType::Bool, json!(true)),
            (FieldType::Number, json!(1.5)),
            (FieldType::Currency, json!("USD")),
            (FieldType::Date, Value::Null),
        ];
        for (ty, v) in ok {
            assert_eq!(validate_canonical(ty, &v), Ok(()), "{ty:?} {v}");
        }
        let bad = [
            (FieldType::String, json!(1)),
            (FieldType::Date, json!("2023-02-29")),
            (FieldType::Date, json!("03/15/2024")),
            (FieldType::Timestamp, json!("2026-03-01T14:05:00+00:00")),
            (FieldType::Timestamp, json!("2026-03-01T14:05:00.5Z")),
            (FieldType::Money, json!("85000.50")),
            (FieldType::Money, json!("1e3")),
            (FieldType::Money, json!(85000)),
            (FieldType::Phone, json!("4155550123")),
            (FieldType::Email, json!("jane.doe")),
            (FieldType::Email, json!("jane@localhost")),
            (FieldType::Email, json!("jane doe@example.com")),
            (FieldType::Enum, json!("")),
            (FieldType::Reference, json!(12)),
            (FieldType::Bool, json!("true")),
            (FieldType::Number, json!("1")),
            (FieldType::Currency, json!("usd")),
            (FieldType::Currency, json!("US")),
        ];
        for (ty, v) in bad {
            assert!(
                validate_canonical(ty, &v).is_err(),
                "{ty:?} {v} must be rejected"
            );
        }
        let err = validate_canonical(FieldType::Money, &json!("85000.50")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'85000.50' is not a valid amount: expected the normalised form '85000.5' (no \
             trailing zeros)"
        );
    }

    #[test]
    fn match_keys_are_trimmed_lowercase_strings() {
        assert_eq!(
            normalize_match_key(&json!("  Jane@Example.com ")),
            Some("jane@example.com".to_owned())
        );
        assert_eq!(normalize_match_key(&json!(1001)), Some("1001".to_owned()));
        assert_eq!(normalize_match_key(&json!(1001.0)), Some("1001".to_owned()));
        assert_eq!(normalize_match_key(&json!(true)), Some("true".to_owned()));
        assert_eq!(normalize_match_key(&json!("   ")), None);
        assert_eq!(normalize_match_key(&Value::Null), None);
        assert_eq!(normalize_match_key(&json!([1])), None);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "9".repeat(200);
        let err = canon(&date("%Y-%m-%d"), json!(long)).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
        assert!(err.to_string().contains('…'));
    }
}
