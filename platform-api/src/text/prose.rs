//! Realistic prose for the property tests of rendering and splitting: words with accents,
//! combining marks, emoji, flags, CJK and URLs, between the separators replies use.
use proptest::prelude::*;

pub(super) fn non_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn word() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9]{1,6}",
            Just("é".to_owned()),
            Just("e\u{301}".to_owned()),
            Just("👩‍💻".to_owned()),
            Just("🇵🇹".to_owned()),
            Just("日本".to_owned()),
            Just("’".to_owned()),
            Just(".".to_owned()),
            Just("!".to_owned()),
            Just("https://x.io/a?b=c".to_owned()),
        ],
        1..4,
    )
    .prop_map(|pieces| pieces.concat())
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just(" "),
        1 => Just("  "),
        1 => Just("\n"),
        1 => Just("\n\n"),
        1 => Just(". "),
        1 => Just("\r\n"),
        1 => Just("\u{a0}"),
    ]
}

pub(super) fn prose() -> impl Strategy<Value = String> {
    prop::collection::vec((word(), separator()), 0..60).prop_map(|items| {
        items
            .into_iter()
            .map(|(word, sep)| format!("{word}{sep}"))
            .collect()
    })
}
