//! Whether the tests run in continuous integration, where a missing service (PostgreSQL, Prism)
//! fails a test instead of skipping it.

/// Whether the `CI` variable says so: unset, empty, `false`, `0`, `no` and `off` mean no;
/// `true`, `1`, `yes` and any other value mean yes (some CI services set it to their name).
pub fn in_ci() -> bool {
    let value = std::env::var_os("CI");
    ci_flag(value.as_ref().map(|v| v.to_string_lossy()).as_deref())
}

fn ci_flag(value: Option<&str>) -> bool {
    let Some(value) = value else {
        return false;
    };
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "no" | "off"
    )
}

#[cfg(test)]
mod tests {
    use super::ci_flag;

    #[test]
    fn ci_is_read_as_a_boolean() {
        let cases = [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("FALSE"), false),
            (Some("0"), false),
            (Some("no"), false),
            (Some("off"), false),
            (Some("true"), true),
            (Some("True"), true),
            (Some("1"), true),
            (Some("yes"), true),
            (Some("woodpecker"), true),
        ];
        for (value, expected) in cases {
            assert_eq!(ci_flag(value), expected, "CI={value:?}");
        }
    }
}
