//! Names and plain text: a full name split into given and family names, lowercased text,
//! and the shape of an email address.

use super::*;

pub(super) fn read_full_name(value: Option<&Value>) -> Result<Values, TransformError> {
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
pub(super) fn full_name_parts(canonical: &[Option<&Value>]) -> Result<Values, TransformError> {
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

pub(super) fn write_full_name(parts: &Values) -> Option<Value> {
    let words: Vec<&str> = parts.iter().flatten().filter_map(Value::as_str).collect();
    (!words.is_empty()).then(|| Value::String(words.join(" ")))
}

pub(super) fn read_lowercase(value: Option<&Value>) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(system_text(value, false, "text")?.map(|text| Value::String(text.to_lowercase())))
}

// Emails

/// Why `text` does not have the basic shape local@domain.tld, if it does not.
pub(super) fn email_problem(text: &str) -> Option<&'static str> {
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
