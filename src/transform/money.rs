//! Money: minor units (cents) and decimal amounts, to and from the canonical normalised
//! decimal text, never rounded.

use super::*;

pub(super) fn check_places(name: &str, places: u32) -> Result<(), TransformError> {
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
pub(super) fn parse_decimal_text(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// A JSON number as a decimal, via its shortest text form so that `85000.1` stays `85000.1`.
pub(super) fn decimal_from_number(number: &Number) -> Option<Decimal> {
    if let Some(int) = number.as_i64() {
        return Some(Decimal::from(int));
    }
    if let Some(int) = number.as_u64() {
        return Some(Decimal::from(int));
    }
    parse_decimal_text(&number.to_string())
}

/// A system amount (JSON number or decimal text) as a decimal; blank text is `None`.
pub(super) fn system_decimal(
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

pub(super) fn money_value(decimal: Decimal) -> Value {
    Value::String(decimal.normalize().to_string())
}

pub(super) fn read_money_minor(
    value: Option<&Value>,
    exponent: u32,
) -> Result<Option<Value>, TransformError> {
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

pub(super) fn canonical_money(value: &Value) -> Result<Decimal, TransformError> {
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

pub(super) fn too_many_decimals(value: &Value, places: u32) -> TransformError {
    TransformError::InvalidMoney {
        value: show(value),
        reason: format!(
            "this system stores at most {places} decimal place(s), and amounts are never rounded"
        ),
    }
}

pub(super) fn write_money_minor(
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

pub(super) fn read_money_decimal(value: Option<&Value>) -> Result<Option<Value>, TransformError> {
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(system_decimal(value, "an amount (a number or decimal text)")?.map(money_value))
}

pub(super) fn write_money_decimal(
    value: Option<&Value>,
    scale: u32,
) -> Result<Option<Value>, TransformError> {
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
