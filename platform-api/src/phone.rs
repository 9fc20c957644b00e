//! Phone numbers: E.164 normalisation and redaction for logs.

/// Normalises a phone number to E.164 (`+15551234567`).
///
/// Spaces, dashes, dots and parentheses are dropped. A number without `+` is taken as E.164
/// without its plus when it has 11 to 15 digits, and as a North American number when it has 10.
pub fn normalize(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => match trimmed.strip_prefix("00") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        },
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(format!(
                    "{trimmed:?} is not a phone number in E.164 form like +15551234567"
                ));
            }
        }
    }
    let digits = match (plus, digits.len()) {
        (false, 10) => format!("1{digits}"),
        _ => digits,
    };
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(format!(
            "{trimmed:?} is not a phone number in E.164 form like +15551234567"
        ));
    }
    Ok(format!("+{digits}"))
}

/// Redacts a phone number for logs: `+15551234567` → `+1555***4567`.
///
/// Anything that does not look like a phone number keeps its first and last two characters.
pub fn redact(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if number.starts_with('+') && chars.len() >= 9 {
        let head: String = chars[..5].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}***{tail}")
    } else if chars.len() > 6 {
        let head: String = chars[..2].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}***{tail}")
    } else {
        "***".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_common_spellings() {
        for (input, want) in [
            ("+15551234567", "+15551234567"),
            (" +1 (555) 123-4567 ", "+15551234567"),
            ("15551234567", "+15551234567"),
            ("5551234567", "+15551234567"),
            ("+44 20 7946 0958", "+442079460958"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+1.555.123.4567", "+15551234567"),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "",
            "+",
            "abc",
            "+1555",
            "+1234567890123456",
            "555-CALL-NOW",
            "+0123456789",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redacts_numbers() {
        assert_eq!(redact("+15551234567"), "+1555***4567");
        assert_eq!(redact("+442079460958"), "+4420***0958");
        assert_eq!(redact("123456789"), "12***89");
        assert_eq!(redact("12"), "***");
    }
}
