//! Phone numbers: parsed in a region, held in E.164, written in the system's format; parsed
//! numbers are remembered so a busy batch does not parse the same text twice.

use super::*;

/// The phonenumber region for `region` and its country calling code.
pub(super) fn parse_region(
    region: &str,
) -> Result<(phonenumber::country::Id, u16), TransformError> {
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

pub(super) fn read_phone(
    value: Option<&Value>,
    region: &str,
) -> Result<Option<Value>, TransformError> {
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
pub(super) fn parse_phone(
    text: &str,
    region: &str,
) -> Result<(String, PhoneNumber), TransformError> {
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

pub(super) fn canonical_phone(value: &Value) -> Result<PhoneNumber, TransformError> {
    let text = canonical_str(FieldType::Phone, value)?;
    crate::memo::remember(&PHONES_CANONICAL, text.to_owned(), || {
        parse_canonical_phone(value, text)
    })
}

/// A canonical phone value, which must already be in E.164.
pub(super) fn parse_canonical_phone(
    value: &Value,
    text: &str,
) -> Result<PhoneNumber, TransformError> {
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

pub(super) fn write_phone(
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
pub(super) fn format_phone(
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
