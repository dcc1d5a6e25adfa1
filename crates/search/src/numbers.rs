//! Decimals as search sees them: a value and the range its written precision implies.
//! `1.50` has two decimals, so it stands for [1.495, 1.505]; `100` stands for [99.5, 100.5];
//! `1.5e2` for [145, 155]. Index entries and query values share this rule.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decimal {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid number")]
pub struct NumberError(pub String);

/// Parses a FHIR decimal (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), leniently
/// accepting a leading `+` and leading zeros.
pub fn parse(text: &str) -> Result<Decimal, NumberError> {
    let bad = || NumberError(text.to_string());
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    let at = |i: usize| b.get(i).copied();
    while at(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
    }
    if i == int_start {
        return Err(bad());
    }
    let mut decimals: i32 = 0;
    if at(i) == Some(b'.') {
        i += 1;
        let frac_start = i;
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == frac_start {
            return Err(bad());
        }
        decimals = (i - frac_start) as i32;
    }
    let mut exponent: i32 = 0;
    if matches!(at(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_text = text.get(i..).ok_or_else(bad)?;
        let digits = exp_text.trim_start_matches(['+', '-']);
        if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) {
            return Err(bad());
        }
        exponent = exp_text.parse().map_err(|_| bad())?;
        i = b.len();
    }
    if i != b.len() {
        return Err(bad());
    }
    let value: f64 = text.parse().map_err(|_| bad())?;
    if !value.is_finite() {
        return Err(bad());
    }
    let half_unit = 0.5 * 10f64.powi(exponent - decimals);
    Ok(Decimal {
        value,
        low: value - half_unit,
        high: value + half_unit,
    })
}

/// A JSON number from a resource. With serde_json's `arbitrary_precision` the number keeps
/// its written text, so `1.50` keeps its two decimals.
pub fn from_json(n: &serde_json::Number) -> Option<Decimal> {
    parse(n.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn decimals_set_the_range() {
        let d = parse("1.50").unwrap();
        assert!(close(d.value, 1.5) && close(d.low, 1.495) && close(d.high, 1.505));
        let d = parse("100").unwrap();
        assert!(close(d.low, 99.5) && close(d.high, 100.5));
        let d = parse("-0.1").unwrap();
        assert!(close(d.low, -0.15) && close(d.high, -0.05));
    }

    #[test]
    fn exponent_scales_the_range() {
        let d = parse("1.5e2").unwrap();
        assert!(close(d.value, 150.0) && close(d.low, 145.0) && close(d.high, 155.0));
        let d = parse("5E-1").unwrap();
        assert!(close(d.low, 0.45) && close(d.high, 0.55));
    }

    #[test]
    fn json_numbers_keep_their_written_precision() {
        let v: serde_json::Value = serde_json::from_str("[1.50, 7]").unwrap();
        let d = from_json(v[0].as_number().unwrap()).unwrap();
        assert!(close(d.high, 1.505));
        let d = from_json(v[1].as_number().unwrap()).unwrap();
        assert!(close(d.high, 7.5));
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for text in [
            "", "abc", "1.", ".5", "1e", "1.2.3", "5kg", "1e+", "NaN", "inf",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
