//! Enum tables: system values to canonical codes and back, including lossy tables where
//! several codes write one system value.

use super::*;

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub(super) fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (decimal_from_number(x), decimal_from_number(y));
            x == y || (p.is_some() && p == q)
        }
        _ => a == b,
    }
}

pub(super) fn find_system_entry<'t>(
    table: &'t [EnumEntry],
    value: &Value,
) -> Option<&'t EnumEntry> {
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

pub(super) fn read_enum(
    value: Option<&Value>,
    table: &[EnumEntry],
) -> Result<Option<Value>, TransformError> {
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

pub(super) fn write_enum(
    value: Option<&Value>,
    table: &[EnumEntry],
) -> Result<Option<Value>, TransformError> {
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

pub(super) fn enum_write_problem(table: &[EnumEntry]) -> Option<String> {
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

pub(super) fn validate_enum_table(table: &[EnumEntry]) -> Result<(), TransformError> {
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
