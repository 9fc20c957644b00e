//! SMS encodings and billed segments.
//!
//! A message whose every character is in the GSM-7 alphabet (3GPP TS 23.038, basic set plus the
//! extension table) is sent as GSM-7: 160 septets fit one SMS; longer messages are sent as
//! concatenated segments of 153 septets each (the rest of each segment carries the header that
//! joins them). One character outside GSM-7 makes the whole message UCS-2: 70 UTF-16 code units in
//! one SMS, 67 per segment beyond that. A character never straddles two segments: an extension
//! character's escape septet and its code stay together, and so do the two halves of a surrogate
//! pair, which can leave a segment one unit short.
//!
//! ```
//! use hermes_twilio::segments::{segments, Encoding};
//!
//! assert_eq!(segments("Meeting at 5pm"), (Encoding::Gsm7, 1));
//! assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
//! assert_eq!(segments("See you 👋"), (Encoding::Ucs2, 1));
//! ```

/// Septets in a single GSM-7 message.
pub const GSM7_SINGLE: usize = 160;
/// Septets in each segment of a concatenated GSM-7 message.
pub const GSM7_SEGMENT: usize = 153;
/// UTF-16 code units in a single UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units in each segment of a concatenated UCS-2 message.
pub const UCS2_SEGMENT: usize = 67;

/// The character encoding a message is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 7-bit default alphabet.
    Gsm7,
    /// UTF-16, for anything outside GSM-7.
    Ucs2,
}

impl Encoding {
    /// The name Twilio and the rest of hermes use for it: `GSM-7` or `UCS-2`.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// Septets per ASCII character in GSM-7: 1 in the basic set, 2 in the extension table, 0 when
/// it has no GSM-7 form (control characters other than LF, CR and form feed, and the backtick).
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut c = 0x20;
    while c < 0x7f {
        table[c] = 1;
        c += 1;
    }
    table[b'\n' as usize] = 1;
    table[b'\r' as usize] = 1;
    table[0x0c] = 2;
    table[b'`' as usize] = 0;
    let extension = b"^{}\\[~]|";
    let mut i = 0;
    while i < extension.len() {
        table[extension[i] as usize] = 2;
        i += 1;
    }
    table
};

/// Septets `c` takes in GSM-7 (2 for the extension table), or `None` if GSM-7 cannot carry it.
pub fn gsm_septets(c: char) -> Option<usize> {
    if c.is_ascii() {
        return match ASCII_SEPTETS[c as usize] {
            0 => None,
            n => Some(usize::from(n)),
        };
    }
    match c {
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        '€' => Some(2),
        _ => None,
    }
}

/// The characters of `text` that are not a single GSM-7 septet (extension characters and
/// everything GSM-7 cannot carry), each as its byte offset and its character index. Text without
/// any is counted by its length. [`gsm_normalize_located`] finds them as it normalizes; this
/// finds them in text as it is.
pub fn irregular_chars(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut located = Located::default();
    let mut i = 0;
    loop {
        i = find_irregular(text.as_bytes(), i);
        let Some(c) = text[i..].chars().next() else {
            return found;
        };
        located.note(&mut found, i, c);
        i += c.len_utf8();
    }
}

/// Counts characters through the irregular ones, which are the only ones that can take more
/// than one byte.
#[derive(Default)]
struct Located {
    /// Bytes so far that continue a multi-byte character.
    continuation: usize,
}

impl Located {
    /// Notes `c`, found at byte `offset`, in `found` if it is not a single septet.
    fn note(&mut self, found: &mut Vec<(usize, usize)>, offset: usize, c: char) {
        if gsm_septets(c) != Some(1) {
            found.push((offset, offset - self.continuation));
        }
        self.continuation += c.len_utf8() - 1;
    }
}

/// Whether a byte is not a one-septet character by itself: any byte of a non-ASCII character
/// (most of which still are one septet, and are looked up whole), and ASCII outside GSM-7's basic
/// set. The same as [`ASCII_SEPTETS`] differing from 1, written as comparisons so that a block of
/// bytes is tested at once.
fn irregular_byte(byte: u8) -> bool {
    byte >= 0x7b
        || (byte < 0x20 && byte != b'\n' && byte != b'\r')
        || ((b'['..=b'`').contains(&byte) && byte != b'_')
}

/// The offset of the first irregular byte (see [`irregular_byte`]) of `bytes` at or after
/// `from`, or the length of `bytes`.
fn find_irregular(bytes: &[u8], from: usize) -> usize {
    const BLOCK: usize = 32;
    let mut i = from;
    // Most replies are long runs of plain ASCII: a whole block is tested without a branch per
    // byte, which the compiler turns into a few vector instructions.
    while let Some(block) = bytes.get(i..i + BLOCK) {
        if block
            .iter()
            .fold(false, |any, &byte| any | irregular_byte(byte))
        {
            break;
        }
        i += BLOCK;
    }
    bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&byte| irregular_byte(byte)))
        .map_or(bytes.len(), |at| i + at)
}

/// The encoding `text` is sent in: GSM-7 unless one of its characters needs UCS-2.
pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The encoding `text` is sent in and how many segments it is billed as.
///
/// Empty text is `(Gsm7, 0)`: Twilio refuses an empty body, so it is never billed.
pub fn segments(text: &str) -> (Encoding, u32) {
    let mut counter = Counter::new();
    counter.push_str(text);
    counter.segments()
}

/// Counts segments as text is appended, for callers that compare many prefixes of one text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter {
    gsm: Packer,
    ucs2: Packer,
    needs_ucs2: bool,
}

impl Counter {
    /// A counter for empty text.
    pub fn new() -> Self {
        Counter::default()
    }

    /// Appends one character.
    pub fn push(&mut self, c: char) {
        // Both packings are kept because one later character can switch the whole text to UCS-2.
        match gsm_septets(c) {
            Some(septets) => self.gsm.push(septets, GSM7_SEGMENT),
            None => self.needs_ucs2 = true,
        }
        self.ucs2.push(c.len_utf16(), UCS2_SEGMENT);
    }

    /// Appends every character of `text`.
    pub fn push_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // Runs of one-septet ASCII are the bulk of most replies and are counted in one step.
            let run = i;
            while i < bytes.len()
                && bytes[i].is_ascii()
                && ASCII_SEPTETS[usize::from(bytes[i])] == 1
            {
                i += 1;
            }
            if i > run {
                self.gsm.push_ones(i - run, GSM7_SEGMENT);
                self.ucs2.push_ones(i - run, UCS2_SEGMENT);
            }
            if let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) {
                self.push(c);
                i += c.len_utf8();
            }
        }
    }

    /// Appends `count` characters that are one unit in either encoding, such as ASCII letters.
    pub fn push_plain(&mut self, count: usize) {
        self.gsm.push_ones(count, GSM7_SEGMENT);
        self.ucs2.push_ones(count, UCS2_SEGMENT);
    }

    /// The encoding of the text so far and its billed segments (0 while empty).
    pub fn segments(&self) -> (Encoding, u32) {
        if self.needs_ucs2 {
            (Encoding::Ucs2, self.ucs2.segments(UCS2_SINGLE))
        } else {
            (Encoding::Gsm7, self.gsm.segments(GSM7_SINGLE))
        }
    }
}

/// Units of one encoding, packed into segments without splitting a character.
#[derive(Clone, Copy, Debug, Default)]
struct Packer {
    total: usize,
    full: usize,
    fill: usize,
}

impl Packer {
    fn push(&mut self, units: usize, per_segment: usize) {
        self.total += units;
        if self.fill + units > per_segment {
            self.full += 1;
            self.fill = units;
        } else {
            self.fill += units;
        }
    }

    fn push_ones(&mut self, count: usize, per_segment: usize) {
        if count == 0 {
            return;
        }
        self.total += count;
        let room = per_segment - self.fill;
        if count <= room {
            self.fill += count;
        } else {
            let over = count - room;
            self.full += 1 + (over - 1) / per_segment;
            self.fill = (over - 1) % per_segment + 1;
        }
    }

    fn segments(&self, single: usize) -> u32 {
        let segments = match self.total {
            0 => 0,
            total if total <= single => 1,
            _ => self.full + usize::from(self.fill > 0),
        };
        u32::try_from(segments).unwrap_or(u32::MAX)
    }
}

/// Replaces typographic characters that have a GSM-7 equivalent, so that a curly quote or a dash
/// does not make a whole reply UCS-2 (and up to three times as many segments).
///
/// Curly and angle quotes and primes become `'` or `"`, dashes, bullets and the middle dot `-`,
/// `…` `...`, arrows `->`, `<-`, `<->`, `=>`, `×` `x`, `≤ ≥ ≠` `<= >= !=`, odd spaces (no-break,
/// thin, ideographic…) and tabs a space, line and paragraph separators line breaks; zero-width
/// spaces, word joiners, soft hyphens and byte-order marks are removed.
/// Everything else is kept as it is: letters like `é` or `ü` are GSM-7 already, others (`ç`, `ł`,
/// emoji, the zero-width joiner inside emoji sequences) have no GSM-7 form to turn into.
pub fn gsm_normalize(text: &str) -> String {
    gsm_normalize_located(text).0
}

/// [`gsm_normalize`], with the result's irregular characters as [`irregular_chars`] finds them.
pub fn gsm_normalize_located(text: &str) -> (String, Vec<(usize, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut located = Located::default();
    let mut i = 0;
    loop {
        let at = find_irregular(text.as_bytes(), i);
        out.push_str(&text[i..at]);
        let Some(c) = text[at..].chars().next() else {
            return (out, found);
        };
        i = at + c.len_utf8();
        let start = out.len();
        push_normalized(&mut out, c);
        for (offset, pushed) in out[start..].char_indices() {
            located.note(&mut found, start + offset, pushed);
        }
    }
}

fn push_normalized(out: &mut String, c: char) {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{2035}'
        | '\u{2039}' | '\u{203A}' | '\u{02BC}' => out.push('\''),
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{2036}'
        | '\u{00AB}' | '\u{00BB}' => out.push('"'),
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' | '\u{2022}' | '\u{2023}' | '\u{2043}' | '\u{25E6}' => out.push('-'),
        '\u{00B7}' => out.push('-'),
        '\u{2026}' => out.push_str("..."),
        '\u{2192}' | '\u{27F6}' => out.push_str("->"),
        '\u{2190}' | '\u{27F5}' => out.push_str("<-"),
        '\u{2194}' => out.push_str("<->"),
        '\u{21D2}' => out.push_str("=>"),
        '\u{00D7}' => out.push('x'),
        '\u{2264}' => out.push_str("<="),
        '\u{2265}' => out.push_str(">="),
        '\u{2260}' => out.push_str("!="),
        '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
            out.push(' ')
        }
        '\u{2028}' => out.push('\n'),
        '\u{2029}' => out.push_str("\n\n"),
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => {}
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_segments_of_known_messages() {
        let emoji = "😀";
        let cases: &[(&str, String, Encoding, u32)] = &[
            ("empty", String::new(), Encoding::Gsm7, 0),
            ("one char", "a".into(), Encoding::Gsm7, 1),
            ("160 plain", "a".repeat(160), Encoding::Gsm7, 1),
            ("161 plain", "a".repeat(161), Encoding::Gsm7, 2),
            ("306 plain", "a".repeat(306), Encoding::Gsm7, 2),
            ("307 plain", "a".repeat(307), Encoding::Gsm7, 3),
            ("1530 plain", "a".repeat(1530), Encoding::Gsm7, 10),
            ("1600 plain", "a".repeat(1600), Encoding::Gsm7, 11),
            (
                "euro counts double",
                format!("{}€", "a".repeat(158)),
                Encoding::Gsm7,
                1,
            ),
            (
                "euro tips over",
                format!("{}€", "a".repeat(159)),
                Encoding::Gsm7,
                2,
            ),
            ("brackets count double", "[]".repeat(40), Encoding::Gsm7, 1),
            (
                "escape stays with its char",
                format!("{}€{}", "a".repeat(152), "a".repeat(152)),
                Encoding::Gsm7,
                3,
            ),
            (
                "escape fits at the segment end",
                format!("{}€{}", "a".repeat(151), "a".repeat(153)),
                Encoding::Gsm7,
                2,
            ),
            (
                "some accents are not gsm",
                "Café über Ñandú? ¡Sí!".into(),
                Encoding::Ucs2,
                1,
            ),
            (
                "gsm letters",
                "Smörgåsbord für Æsir, £5 §2".into(),
                Encoding::Gsm7,
                1,
            ),
            ("70 ucs2", "ç".repeat(70), Encoding::Ucs2, 1),
            ("71 ucs2", "ç".repeat(71), Encoding::Ucs2, 2),
            ("134 ucs2", "ç".repeat(134), Encoding::Ucs2, 2),
            ("135 ucs2", "ç".repeat(135), Encoding::Ucs2, 3),
            ("one emoji", format!("Done {emoji}"), Encoding::Ucs2, 1),
            ("35 emoji are 70 units", emoji.repeat(35), Encoding::Ucs2, 1),
            ("36 emoji", emoji.repeat(36), Encoding::Ucs2, 2),
            (
                "emoji makes long text ucs2",
                format!("{}{emoji}", "a".repeat(150)),
                Encoding::Ucs2,
                3,
            ),
            (
                "surrogate pair is not split",
                format!("{}{emoji}{}", "a".repeat(66), "a".repeat(66)),
                Encoding::Ucs2,
                3,
            ),
            ("backtick is not gsm", "`ls`".into(), Encoding::Ucs2, 1),
            ("tab is not gsm", "a\tb".into(), Encoding::Ucs2, 1),
            ("curly quote is not gsm", "it’s".into(), Encoding::Ucs2, 1),
        ];
        for (name, text, encoding, count) in cases {
            assert_eq!(segments(text), (*encoding, *count), "case {name}");
        }
    }

    #[test]
    fn irregular_bytes_match_the_septet_table() {
        for byte in 0..=u8::MAX {
            let one_septet = byte.is_ascii() && ASCII_SEPTETS[usize::from(byte)] == 1;
            assert_eq!(irregular_byte(byte), !one_septet, "byte {byte:#04x}");
        }
    }

    #[test]
    fn irregular_chars_are_located() {
        assert_eq!(
            irregular_chars("a€b😀[ é\tç"),
            [(1, 1), (5, 3), (9, 4), (13, 7), (14, 8)]
        );
        assert!(irregular_chars("Plain text, 100% GSM-7.\n").is_empty());
    }

    #[test]
    fn labels() {
        assert_eq!(Encoding::Gsm7.label(), "GSM-7");
        assert_eq!(Encoding::Ucs2.label(), "UCS-2");
        assert_eq!(encoding("plain"), Encoding::Gsm7);
        assert_eq!(encoding("ção"), Encoding::Ucs2);
    }

    #[test]
    fn gsm_alphabet() {
        let basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
        for c in basic.chars() {
            assert_eq!(gsm_septets(c), Some(1), "{c:?}");
        }
        for c in "\u{c}^{}\\[~]|€".chars() {
            assert_eq!(gsm_septets(c), Some(2), "{c:?}");
        }
        for c in "`\tçáíóúłœ\u{0}😀’".chars() {
            assert_eq!(gsm_septets(c), None, "{c:?}");
        }
    }

    #[test]
    fn normalizes_typography_to_gsm() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain", "Hello, world!", "Hello, world!"),
            ("curly single", "It’s ‘fine’ ‚ok′", "It's 'fine' 'ok'"),
            ("curly double", "“Yes” „ja“ 5″", "\"Yes\" \"ja\" 5\""),
            ("guillemets", "«oui» ‹non›", "\"oui\" 'non'"),
            ("dashes", "a–b—c―d −1 ‐x‑y‒z", "a-b-c-d -1 -x-y-z"),
            ("ellipsis", "Wait…", "Wait..."),
            (
                "spaces",
                "a\u{a0}b\u{2009}c\u{202f}d\u{3000}e\u{205f}f\tg",
                "a b c d e f g",
            ),
            ("invisible", "a\u{200b}b\u{feff}c\u{2060}d\u{ad}e", "abcde"),
            ("bullets", "• one\n◦ two", "- one\n- two"),
            ("middle dot", "Map · Tickets", "Map - Tickets"),
            ("arrows", "a → b ← c ↔ d ⇒ e", "a -> b <- c <-> d => e"),
            ("math", "2×3 ≤ 7 ≥ 1 ≠ 0", "2x3 <= 7 >= 1 != 0"),
            ("separators", "a\u{2028}b\u{2029}c", "a\nb\n\nc"),
            ("gsm accents untouched", "é ü Ñ ß", "é ü Ñ ß"),
            ("other accents untouched", "ç ł ő", "ç ł ő"),
            ("emoji untouched", "👍 🇵🇹", "👍 🇵🇹"),
            ("zwj kept", "👩\u{200d}💻", "👩\u{200d}💻"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(gsm_normalize(input), *expected, "case {name}");
        }
        assert_eq!(
            encoding(&gsm_normalize("“Smart” quotes – and… more ‘stuff’")),
            Encoding::Gsm7
        );
    }

    fn reference_segments(text: &str) -> (Encoding, u32) {
        let encoding = encoding(text);
        let (units, single, per): (Vec<usize>, usize, usize) = match encoding {
            Encoding::Gsm7 => (
                text.chars().filter_map(gsm_septets).collect(),
                GSM7_SINGLE,
                GSM7_SEGMENT,
            ),
            Encoding::Ucs2 => (
                text.chars().map(char::len_utf16).collect(),
                UCS2_SINGLE,
                UCS2_SEGMENT,
            ),
        };
        let total: usize = units.iter().sum();
        if total == 0 {
            return (encoding, 0);
        }
        if total <= single {
            return (encoding, 1);
        }
        let mut segments = 1;
        let mut fill = 0;
        for unit in units {
            if fill + unit > per {
                segments += 1;
                fill = 0;
            }
            fill += unit;
        }
        (encoding, segments)
    }

    proptest! {
        #[test]
        fn segments_match_a_reference_packing(
            text in prop::collection::vec(
                prop_oneof![
                    8 => Just("a"), 2 => Just("€"), 2 => Just("["), 1 => Just("é"),
                    1 => Just("ç"), 1 => Just("😀"), 2 => Just(" "),
                ],
                0..400,
            ).prop_map(|pieces| pieces.concat())
        ) {
            prop_assert_eq!(segments(&text), reference_segments(&text));
        }

        #[test]
        fn segments_of_any_text_match_the_reference(text in any::<String>()) {
            prop_assert_eq!(segments(&text), reference_segments(&text));
        }

        #[test]
        fn appending_never_lowers_the_count(text in any::<String>(), more in any::<String>()) {
            let longer = format!("{text}{more}");
            prop_assert!(segments(&text).1 <= segments(&longer).1);
        }

        #[test]
        fn normalize_keeps_everything_it_does_not_replace(text in any::<String>()) {
            let normalized = gsm_normalize(&text);
            prop_assert_eq!(gsm_normalize(&normalized), normalized.clone());
            let replaced = |c: char| gsm_normalize(&c.to_string()) != c.to_string();
            let output = |c: char| c.is_whitespace() || "'\"-.<>=!x".contains(c);
            let kept = |s: &str| -> String {
                s.chars().filter(|&c| !replaced(c) && !output(c)).collect()
            };
            prop_assert_eq!(kept(&normalized), kept(&text));
        }

        #[test]
        fn irregular_chars_match_counting_each_char(
            text in prop::collection::vec(
                prop_oneof![
                    6 => "[ -~]{1,40}", 1 => Just("€".to_owned()), 1 => Just("’".to_owned()), 1 => Just("…".to_owned()),
                    1 => Just("😀".to_owned()), 1 => Just("é".to_owned()), 1 => Just("\t".to_owned()), 1 => any::<char>().prop_map(String::from),
                ],
                0..80,
            ).prop_map(|pieces| pieces.concat())
        ) {
            let expected: Vec<(usize, usize)> = text
                .char_indices()
                .enumerate()
                .filter(|&(_, (_, c))| gsm_septets(c) != Some(1))
                .map(|(index, (offset, _))| (offset, index))
                .collect();
            prop_assert_eq!(irregular_chars(&text), expected);
            let (normalized, found) = gsm_normalize_located(&text);
            prop_assert_eq!(found, irregular_chars(&normalized));
        }
    }
}
