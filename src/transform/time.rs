//! Dates and timestamps: strftime formats checked on sample values, time zones, and the
//! canonical `YYYY-MM-DD` and RFC 3339 UTC forms.

use super::*;

pub(super) fn format_items_problem(format: &str) -> Option<String> {
    if format.trim().is_empty() {
        return Some("the format is empty".to_owned());
    }
    StrftimeItems::new(format)
        .any(|item| matches!(item, Item::Error))
        .then(|| format!("'{format}' contains a % code that is not a known strftime code"))
}

pub(super) fn sample_dates() -> Vec<NaiveDate> {
    [(2024, 12, 31), (2001, 2, 3), (1999, 11, 22)]
        .into_iter()
        .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .collect()
}

/// Why dates in `format` cannot be read, if they cannot.
pub(super) fn date_read_problem(format: &str) -> Option<String> {
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
pub(super) fn date_write_problem(format: &str) -> Option<String> {
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

pub(super) fn read_date(
    value: Option<&Value>,
    format: &str,
) -> Result<Option<Value>, TransformError> {
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

pub(super) fn canonical_date(value: &Value) -> Result<NaiveDate, TransformError> {
    let ty = FieldType::Date;
    let text = canonical_str(ty, value)?;
    NaiveDate::parse_from_str(text, CANONICAL_DATE_FORMAT)
        .ok()
        .filter(|date| render(date.format(CANONICAL_DATE_FORMAT)).as_deref() == Some(text))
        .ok_or_else(|| invalid_canonical(ty, value, "expected a real date in the form YYYY-MM-DD"))
}

pub(super) fn write_date(
    value: Option<&Value>,
    format: &str,
) -> Result<Option<Value>, TransformError> {
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

pub(super) fn parse_tz(tz: &str) -> Result<Tz, TransformError> {
    Tz::from_str(tz.trim()).map_err(|_| {
        TransformError::Config(format!(
            "'{}' is not a known time zone; use an IANA name such as America/New_York or UTC",
            shorten(tz)
        ))
    })
}

pub(super) fn sample_instants() -> Vec<DateTime<Utc>> {
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
pub(super) fn timestamp_problem(format: &str, zone: Tz) -> Option<String> {
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
pub(super) fn parse_timestamp(
    text: &str,
    format: &str,
    zone: Tz,
) -> Result<DateTime<Utc>, TransformError> {
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

pub(super) fn read_timestamp(
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

pub(super) fn canonical_timestamp(value: &Value) -> Result<DateTime<Utc>, TransformError> {
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

pub(super) fn write_timestamp(
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
