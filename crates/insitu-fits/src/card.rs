//! Header cards: the 80-character records of a FITS header, their typed
//! values, and their formatting and parsing rules (FITS 4.0, section 4).

use crate::FitsError;

/// Length of one header card in bytes.
pub const CARD_LEN: usize = 80;
/// Length of one FITS block in bytes.
pub const BLOCK_LEN: usize = 2880;

/// The typed value of a header card.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A character string (quoted in the file; trailing spaces are not significant).
    String(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A logical, `T` or `F` in the file.
    Logical(bool),
    /// No value: commentary cards (`COMMENT`, `HISTORY`, blank keyword) and
    /// keywords whose value is undefined.
    None,
}

impl Value {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `f64`, for integer and floating-point values.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            // Header integers are small enough in practice; this is the
            // documented lossy widening FITS readers do.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The logical, if this is a logical value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Logical(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<f32> for Value {
    /// Converts through the shortest decimal representation of the `f32`, so
    /// that `0.1f32` is written as `0.1` rather than `0.10000000149011612`.
    fn from(f: f32) -> Self {
        Value::Float(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Logical(b)
    }
}

/// One header card: keyword, value and optional comment.
///
/// For commentary cards (`COMMENT`, `HISTORY`, blank keyword, or any card
/// without the `= ` value indicator) the value is [`Value::None`] and the
/// text is in `comment`.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The keyword, without trailing spaces (upper case, at most 8 characters).
    pub keyword: String,
    /// The typed value.
    pub value: Value,
    /// The comment (after ` / `), or the text of a commentary card.
    pub comment: Option<String>,
}

/// Whether a keyword is a commentary keyword (no value indicator).
pub(crate) fn is_commentary(keyword: &str) -> bool {
    matches!(keyword, "COMMENT" | "HISTORY" | "")
}

/// Checks a keyword: 1 to 8 characters from `A-Z`, `0-9`, `_` and `-`.
pub fn validate_keyword(keyword: &str) -> Result<(), FitsError> {
    let ok = !keyword.is_empty()
        && keyword.len() <= 8
        && keyword
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FitsError::InvalidKeyword(keyword.to_owned()))
    }
}

fn check_text(keyword: &str, what: &str, text: &str) -> Result<(), FitsError> {
    if text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err(FitsError::InvalidValue {
            keyword: keyword.to_owned(),
            reason: format!("{what} must be printable ASCII (0x20-0x7E)"),
        })
    }
}

/// Formats a floating-point value for a header: at most 20 characters when
/// possible (so it can be right-justified in columns 11-30), always with a
/// decimal point or an exponent, exponent letter `E`.
pub(crate) fn format_float(keyword: &str, f: f64) -> Result<String, FitsError> {
    if !f.is_finite() {
        return Err(FitsError::InvalidValue {
            keyword: keyword.to_owned(),
            reason: "NaN and infinities cannot be written in a FITS header".to_owned(),
        });
    }
    let plain = format!("{f}");
    if plain.len() <= 20 {
        return Ok(if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        });
    }
    let with_point = |s: String| -> String {
        match s.split_once('E') {
            Some((mantissa, exp)) if !mantissa.contains('.') => format!("{mantissa}.0E{exp}"),
            _ => s,
        }
    };
    let shortest = with_point(format!("{f:E}"));
    if shortest.len() <= 20 {
        return Ok(shortest);
    }
    // Shorten the mantissa until the value fits in the fixed-format field.
    for precision in (1..=16).rev() {
        let s = with_point(format!("{f:.precision$E}"));
        if s.len() <= 20 {
            return Ok(s);
        }
    }
    Ok(shortest)
}

/// Formats one card into its 80 bytes.
pub fn format_card(card: &Card) -> Result<[u8; CARD_LEN], FitsError> {
    let kw = card.keyword.as_str();
    if kw != "END" || card.value != Value::None {
        validate_keyword(kw)?;
    }
    let mut line = format!("{kw:<8}");
    if is_commentary(kw) {
        let text = card.comment.as_deref().unwrap_or("");
        check_text(kw, "commentary text", text)?;
        if text.len() > CARD_LEN - 8 {
            return Err(FitsError::InvalidValue {
                keyword: kw.to_owned(),
                reason: format!("commentary text longer than 72 characters: {text:?}"),
            });
        }
        line.push_str(text);
    } else if kw == "END" && card.value == Value::None {
        // END card: keyword only.
    } else {
        line.push_str("= ");
        let field = match &card.value {
            Value::String(s) => {
                check_text(kw, "string value", s)?;
                let escaped = s.replace('\'', "''");
                let quoted = format!("'{escaped:<8}'");
                format!("{quoted:<20}")
            }
            Value::Int(i) => format!("{i:>20}"),
            Value::Float(f) => format!("{:>20}", format_float(kw, *f)?),
            Value::Logical(b) => format!("{:>20}", if *b { "T" } else { "F" }),
            Value::None => " ".repeat(20),
        };
        line.push_str(&field);
        if line.trim_end().len() > CARD_LEN {
            return Err(FitsError::InvalidValue {
                keyword: kw.to_owned(),
                reason: "value does not fit in one 80-character card".to_owned(),
            });
        }
        if line.len() > CARD_LEN {
            line.truncate(CARD_LEN);
        }
        if let Some(comment) = card.comment.as_deref().filter(|c| !c.is_empty()) {
            check_text(kw, "comment", comment)?;
            let room = CARD_LEN.saturating_sub(line.len() + 3);
            if room > 0 {
                line.push_str(" / ");
                line.push_str(&comment[..comment.len().min(room)]);
            }
        }
    }
    let mut out = [b' '; CARD_LEN];
    let bytes = line.as_bytes();
    let n = bytes.len().min(CARD_LEN);
    out[..n].copy_from_slice(&bytes[..n]);
    Ok(out)
}

/// Parses one 80-byte card. `index` (0-based card number in the file) is
/// only used for error messages.
pub(crate) fn parse_card(raw: &[u8], index: usize) -> Result<Card, FitsError> {
    let bad = |reason: &str| FitsError::BadCard {
        card: index,
        text: String::from_utf8_lossy(raw).trim_end().to_owned(),
        reason: reason.to_owned(),
    };
    if raw.len() != CARD_LEN {
        return Err(bad("card is not 80 bytes long"));
    }
    if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad("card contains non-printable or non-ASCII bytes"));
    }
    // All bytes are ASCII, so byte slicing below is on char boundaries.
    let text = std::str::from_utf8(raw).map_err(|_| bad("card is not ASCII"))?;
    let (kw_field, rest) = text.split_at(8);
    let keyword = kw_field.trim_end();
    if keyword.contains(' ')
        || !keyword
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(bad("invalid keyword (allowed: A-Z 0-9 _ -, at most 8)"));
    }
    let keyword = keyword.to_owned();
    if keyword == "END" {
        return Ok(Card {
            keyword,
            value: Value::None,
            comment: None,
        });
    }
    if is_commentary(&keyword) || !rest.starts_with("= ") {
        let t = rest.trim_end();
        return Ok(Card {
            keyword,
            value: Value::None,
            comment: (!t.is_empty()).then(|| t.to_owned()),
        });
    }
    let field = &rest[2..];
    let trimmed = field.trim_start();
    if let Some(after_quote) = trimmed.strip_prefix('\'') {
        let mut value = String::new();
        let mut chars = after_quote.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if matches!(chars.peek(), Some((_, '\''))) {
                    value.push('\'');
                    chars.next();
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                value.push(c);
            }
        }
        let end = end.ok_or_else(|| bad("string value without closing quote"))?;
        let tail = after_quote[end..].trim();
        let comment = if tail.is_empty() {
            None
        } else if let Some(c) = tail.strip_prefix('/') {
            let c = c.trim();
            (!c.is_empty()).then(|| c.to_owned())
        } else {
            return Err(bad("unexpected text after string value"));
        };
        let value = value.trim_end().to_owned();
        return Ok(Card {
            keyword,
            value: Value::String(value),
            comment,
        });
    }
    let (value_text, comment) = match field.split_once('/') {
        Some((v, c)) => {
            let c = c.trim();
            (v.trim(), (!c.is_empty()).then(|| c.to_owned()))
        }
        None => (field.trim(), None),
    };
    let value = parse_scalar(value_text).ok_or_else(|| bad("unparseable value"))?;
    Ok(Card {
        keyword,
        value,
        comment,
    })
}

fn parse_scalar(s: &str) -> Option<Value> {
    match s {
        "" => return Some(Value::None),
        "T" => return Some(Value::Logical(true)),
        "F" => return Some(Value::Logical(false)),
        _ => {}
    }
    let numeric_chars = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'E' | b'e' | b'D' | b'd'));
    if !numeric_chars || !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Int(i));
    }
    s.replace(['D', 'd'], "E")
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(k: &str, v: impl Into<Value>, c: Option<&str>) -> Card {
        Card {
            keyword: k.to_owned(),
            value: v.into(),
            comment: c.map(str::to_owned),
        }
    }

    fn text(c: &Card) -> String {
        String::from_utf8(format_card(c).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn fixed_format_layout() {
        let t = text(&card("SIMPLE", true, Some("conforms")));
        assert_eq!(&t[..30], "SIMPLE  =                    T");
        assert_eq!(&t[30..43], " / conforms  ");
        let t = text(&card("NAXIS1", 720i64, None));
        assert_eq!(&t[..30], "NAXIS1  =                  720");
        let t = text(&card("OBJECT", "M31", Some("target")));
        assert_eq!(&t[..20], "OBJECT  = 'M31     '");
        assert!(t[20..].starts_with("           / target"));
        let t = text(&card("CDELT1", -1.0 / 3600.0, None));
        assert_eq!(t.as_bytes()[29], b'4');
        assert!(t[10..30].trim().len() <= 20);
        assert_eq!(t.len(), 80);
    }

    #[test]
    fn strings_escape_and_roundtrip() {
        let c = card("ORIGIN", "it's here", Some("a / b"));
        let raw = format_card(&c).unwrap();
        assert!(String::from_utf8_lossy(&raw).contains("'it''s here'"));
        let back = parse_card(&raw, 0).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn numbers_roundtrip() {
        for f in [
            0.0,
            -0.5,
            1e20,
            1.5e-12,
            83.8221,
            -1.0 / 3600.0,
            123_456.789,
        ] {
            let back = parse_card(&format_card(&card("X", f, None)).unwrap(), 0).unwrap();
            let g = back.value.as_f64().unwrap();
            assert!((g - f).abs() <= f.abs() * 1e-15, "{f} -> {g}");
        }
        let back = parse_card(&format_card(&card("N", -42i64, None)).unwrap(), 0).unwrap();
        assert_eq!(back.value, Value::Int(-42));
        let back = parse_card(&format_card(&card("L", false, None)).unwrap(), 0).unwrap();
        assert_eq!(back.value, Value::Logical(false));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(validate_keyword("lower").is_err());
        assert!(validate_keyword("TOOLONGKW").is_err());
        assert!(validate_keyword("BAD KEY").is_err());
        assert!(validate_keyword("").is_err());
        assert!(validate_keyword("DATE-OBS").is_ok());
        assert!(format_card(&card("X", f64::NAN, None)).is_err());
        assert!(format_card(&card("X", "é", None)).is_err());
        assert!(format_card(&card("X", "a".repeat(80).as_str(), None)).is_err());
        let mut raw = [b' '; 80];
        raw[..20].copy_from_slice(b"OBJECT  = 'unclosed ");
        assert!(parse_card(&raw, 3).is_err());
        raw[..20].copy_from_slice(b"NAXIS   = banana    ");
        assert!(parse_card(&raw, 3).is_err());
        raw[..20].copy_from_slice(b"naxis   = 1         ");
        assert!(parse_card(&raw, 3).is_err());
        assert!(parse_card(&raw[..40], 3).is_err());
    }
}
