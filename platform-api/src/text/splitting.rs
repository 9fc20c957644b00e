//! Splitting text into parts within a limit, at the most natural places: [`split`] and its
//! numbered and steered variants, as strings, [`Span`]s or an iterator of [`Parts`].
use std::fmt::Write as _;
use std::ops::Range;

use super::layout::{Layout, bounds};
use super::window::{Break, BreakKind, Window, greedy};

/// Splits text into parts of at most `max_chars` characters at natural places (see [`greedy`]).
///
/// Preference: blank line, line break, sentence end, space. A word is only cut when it alone is
/// longer than `max_chars`, and then between grapheme clusters, so an emoji sequence or a flag
/// stays whole (only a single cluster longer than the limit is cut between characters). Whitespace
/// around cuts and at both ends is dropped; every other character is kept, in order. Empty or
/// whitespace-only text gives no parts; a `max_chars` of 0 is taken as 1.
pub fn split(text: &str, max_chars: usize) -> Vec<String> {
    split_with(text, max_chars, greedy)
}

/// Like [`split`], with `choose` deciding where each part that does not hold the rest ends.
///
/// `choose` returns an index into [`Window::breaks`]; an index out of range means [`greedy`].
pub fn split_with<F>(text: &str, max_chars: usize, choose: F) -> Vec<String>
where
    F: FnMut(&Window<'_>) -> usize,
{
    parts(text, max_chars, 0, choose)
        .map(str::to_owned)
        .collect()
}

/// Like [`split`], but when there is more than one part each ends with ` (i/N)`, counted within
/// `max_chars`.
///
/// When `max_chars` is too small to hold a suffix and a character, the parts are not numbered.
pub fn split_numbered(text: &str, max_chars: usize) -> Vec<String> {
    split_numbered_with(text, max_chars, greedy)
}

/// Like [`split_numbered`], with `choose` deciding where parts end (see [`split_with`]).
///
/// `choose` sees the room reserved for the suffix in [`Window::suffix_chars`].
pub fn split_numbered_with<F>(text: &str, max_chars: usize, choose: F) -> Vec<String>
where
    F: FnMut(&Window<'_>) -> usize,
{
    numbered_spans_with(text, max_chars, choose)
        .iter()
        .map(|span| span.body(text))
        .collect()
}

/// One part of a split text: where its text lies in the input, and its number when the text
/// has several parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte range of the part's text in the input.
    pub bytes: Range<usize>,
    /// The same range in characters (Unicode scalar values) from the input's start.
    pub chars: Range<usize>,
    /// `(i, N)` for part `i` (from 1) of `N`, or `None` for a part that is not numbered.
    pub number: Option<(usize, usize)>,
}

impl Span {
    /// The ` (i/N)` appended to the part, or an empty string.
    pub fn suffix(&self) -> String {
        self.number
            .map(|(index, total)| format!(" ({index}/{total})"))
            .unwrap_or_default()
    }

    /// Characters of [`Span::suffix`].
    pub fn suffix_chars(&self) -> usize {
        self.number.map_or(0, |(index, total)| {
            4 + decimal_digits(index) + decimal_digits(total)
        })
    }

    /// The part as it is sent: its text from `text` (the input it was split from), then its
    /// suffix.
    pub fn body(&self, text: &str) -> String {
        let part = &text[self.bytes.clone()];
        let mut body = String::with_capacity(part.len() + self.suffix_chars());
        body.push_str(part);
        if let Some((index, total)) = self.number {
            let _ = write!(body, " ({index}/{total})");
        }
        body
    }
}

/// [`split_numbered_with`]'s parts as [`Span`]s of `text`, for a caller that needs to know where
/// each part came from (to count what it costs without scanning it again).
pub fn numbered_spans_with<F>(text: &str, max_chars: usize, mut choose: F) -> Vec<Span>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let max_chars = max_chars.max(1);
    let (start, end) = bounds(text);
    if start >= end {
        return Vec::new();
    }
    let whole = |start_chars: usize, chars: usize| {
        vec![Span {
            bytes: start..end,
            chars: start_chars..start_chars + chars,
            number: None,
        }]
    };
    // A text of no more bytes than the limit has no more characters either.
    if end - start <= max_chars {
        let start_chars = text[..start].chars().count();
        return whole(start_chars, text[start..end].chars().count());
    }
    let layout = Layout::new(text);
    if layout.end_chars - layout.start_chars <= max_chars {
        return whole(layout.start_chars, layout.end_chars - layout.start_chars);
    }
    // The suffix is reserved at its widest (` (N/N)`); more parts can mean a wider N, which can
    // mean more parts again, so this repeats until the width of N no longer grows.
    let mut digits = 1;
    loop {
        let reserve = 4 + 2 * digits;
        if reserve >= max_chars {
            return collect_parts(&layout, max_chars, 0, &mut choose);
        }
        let mut numbered = collect_parts(&layout, max_chars - reserve, reserve, &mut choose);
        let total = numbered.len();
        if decimal_digits(total) > digits {
            digits = decimal_digits(total);
            continue;
        }
        if total > 1 {
            for (index, span) in numbered.iter_mut().enumerate() {
                span.number = Some((index + 1, total));
            }
        }
        return numbered;
    }
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// The parts of `text` as slices of it, without numbering: see [`split_with`].
///
/// `suffix_chars` is only passed on to `choose` in [`Window::suffix_chars`]; `max_chars` is the
/// room for the text itself (0 is taken as 1).
pub fn parts<F>(text: &str, max_chars: usize, suffix_chars: usize, choose: F) -> Parts<'_, F>
where
    F: FnMut(&Window<'_>) -> usize,
{
    Parts::new(Layout::new(text), max_chars, suffix_chars, choose)
}

/// Iterator over the parts of a text: see [`parts`].
pub struct Parts<'a, F> {
    layout: Layout<'a>,
    cursor: Cursor,
    max_chars: usize,
    suffix_chars: usize,
    choose: F,
    breaks: Vec<Break>,
}

impl<'a, F> Parts<'a, F> {
    fn new(layout: Layout<'a>, max_chars: usize, suffix_chars: usize, choose: F) -> Self {
        Parts {
            cursor: Cursor::start(&layout),
            layout,
            max_chars: max_chars.max(1),
            suffix_chars,
            choose,
            breaks: Vec::new(),
        }
    }
}

impl<'a, F> Iterator for Parts<'a, F>
where
    F: FnMut(&Window<'_>) -> usize,
{
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        next_part(
            &self.layout,
            &mut self.cursor,
            (self.max_chars, self.suffix_chars),
            &mut self.choose,
            &mut self.breaks,
        )
        .map(|(part, _)| part)
    }
}

/// Where a split stands: the next part starts at byte `pos`, after `pos_chars` characters.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    pos: usize,
    pos_chars: usize,
}

impl Cursor {
    fn start(layout: &Layout<'_>) -> Self {
        Cursor {
            pos: layout.start,
            pos_chars: layout.start_chars,
        }
    }
}

fn collect_parts<F>(
    layout: &Layout<'_>,
    max_chars: usize,
    suffix_chars: usize,
    choose: &mut F,
) -> Vec<Span>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let mut cursor = Cursor::start(layout);
    let mut breaks = Vec::new();
    let mut spans = Vec::new();
    let limits = (max_chars.max(1), suffix_chars);
    loop {
        let (start, start_chars) = (cursor.pos, cursor.pos_chars);
        let Some((part, chars)) = next_part(layout, &mut cursor, limits, choose, &mut breaks)
        else {
            return spans;
        };
        spans.push(Span {
            bytes: start..start + part.len(),
            chars: start_chars..start_chars + chars,
            number: None,
        });
    }
}

/// The next part from `cursor`, with `limits` as (`max_chars`, `suffix_chars`); `breaks` is a
/// buffer for the window's breaks.
fn next_part<'a, F>(
    layout: &Layout<'a>,
    cursor: &mut Cursor,
    (max_chars, suffix_chars): (usize, usize),
    choose: &mut F,
    breaks: &mut Vec<Break>,
) -> Option<(&'a str, usize)>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let text = layout.text;
    let Cursor { pos, pos_chars } = *cursor;
    if pos >= layout.end {
        return None;
    }
    let Some((first, last)) = layout.window(pos, pos_chars, max_chars) else {
        cursor.pos = layout.end;
        return Some((&text[pos..layout.end], layout.end_chars - pos_chars));
    };
    breaks.clear();
    breaks.extend(layout.gaps[first..last].iter().map(|gap| Break {
        kind: gap.kind,
        end: gap.end - pos,
        next: gap.next - pos,
        chars: gap.end_chars - pos_chars,
    }));
    let first_gap = (!breaks.is_empty()).then_some(first);
    if breaks.is_empty() {
        let (cut, chars) = layout.cut_word(pos, max_chars);
        breaks.push(Break {
            kind: BreakKind::Grapheme,
            end: cut - pos,
            next: cut - pos,
            chars,
        });
    }
    let window = Window {
        rest: &text[pos..],
        breaks,
        max_chars,
        suffix_chars,
        layout,
        pos,
        pos_chars,
        first_gap,
    };
    let chosen = choose(&window);
    let index = if chosen < breaks.len() {
        chosen
    } else {
        greedy(&window)
    };
    let cut = breaks[index];
    cursor.pos_chars = match layout.gaps.get(first + index) {
        Some(gap) if first + index < last => gap.next_chars,
        _ => pos_chars + cut.chars,
    };
    cursor.pos = pos + cut.next;
    Some((&text[pos..pos + cut.end], cut.chars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prose::{non_whitespace, prose};
    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    fn strip_suffix(part: &str) -> &str {
        match part.rfind(" (") {
            Some(at) if part.ends_with(')') => &part[..at],
            _ => part,
        }
    }

    fn offsets<'a>(text: &'a str, part: &'a str) -> (usize, usize) {
        let start = part.as_ptr() as usize - text.as_ptr() as usize;
        (start, start + part.len())
    }

    #[test]
    fn split_prefers_natural_boundaries() {
        let cases: &[(&str, &str, usize, &[&str])] = &[
            ("fits", "Short reply.", 20, &["Short reply."]),
            ("empty", "", 10, &[]),
            ("whitespace only", " \n\t ", 10, &[]),
            (
                "paragraph",
                "First paragraph here.\n\nSecond one, longer.",
                30,
                &["First paragraph here.", "Second one, longer."],
            ),
            (
                "line before sentence",
                "Items:\n- apples. - pears and more",
                24,
                &["Items:\n- apples.", "- pears and more"],
            ),
            (
                "sentence before space",
                "It is done. Now we wait for it",
                20,
                &["It is done.", "Now we wait for it"],
            ),
            (
                "space",
                "alpha beta gamma delta",
                12,
                &["alpha beta", "gamma delta"],
            ),
            (
                "early paragraph loses to a full part",
                "Hi.\n\nThis sentence keeps going on and on",
                30,
                &["Hi.\n\nThis sentence keeps going", "on and on"],
            ),
            (
                "long word is cut",
                "see abcdefghijklmnop",
                8,
                &["see", "abcdefgh", "ijklmnop"],
            ),
            (
                "list number is not a sentence end",
                "1. one 2. two",
                9,
                &["1. one 2.", "two"],
            ),
            (
                "quoted sentence end",
                "He said “stop.” Then left quickly",
                22,
                &["He said “stop.”", "Then left quickly"],
            ),
            ("emoji sequence stays whole", "👩‍👩‍👧‍👦👩‍👩‍👧‍👦", 8, &["👩‍👩‍👧‍👦", "👩‍👩‍👧‍👦"]),
            ("flags stay whole", "🇵🇹🇧🇷🇺🇸", 3, &["🇵🇹", "🇧🇷", "🇺🇸"]),
            (
                "combining mark stays with its letter",
                "cafe\u{301}cafe\u{301}",
                4,
                &["caf", "e\u{301}ca", "fe\u{301}"],
            ),
            (
                "crlf",
                "one two\r\nthree four",
                12,
                &["one two", "three four"],
            ),
        ];
        for (name, text, max, expected) in cases {
            assert_eq!(split(text, *max), *expected, "case {name}");
        }
    }

    #[test]
    fn split_long_reply_fills_parts() {
        let sentence = "The quick brown fox jumps over the lazy dog. ";
        let text = sentence.repeat(100);
        let parts = split(&text, 1600);
        assert_eq!(parts.len(), 3);
        for part in &parts[..2] {
            assert!(part.chars().count() > 1500, "{}", part.len());
            assert!(part.ends_with('.'));
        }
        assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
    }

    #[test]
    fn split_numbered_reserves_room_for_the_suffix() {
        let cases: &[(&str, &str, usize, &[&str])] = &[
            (
                "single part has no suffix",
                "hello there",
                11,
                &["hello there"],
            ),
            (
                "two parts",
                "alpha beta gamma delta",
                17,
                &["alpha beta (1/2)", "gamma delta (2/2)"],
            ),
            (
                "limit too small for a suffix",
                "abc def",
                4,
                &["abc", "def"],
            ),
        ];
        for (name, text, max, expected) in cases {
            assert_eq!(split_numbered(text, *max), *expected, "case {name}");
        }
    }

    #[test]
    fn split_numbered_widens_for_ten_parts_or_more() {
        let text = "word ".repeat(60);
        let parts = split_numbered(&text, 20);
        assert!(parts.len() >= 10);
        let total = parts.len();
        for (index, part) in parts.iter().enumerate() {
            assert!(part.chars().count() <= 20, "{part:?}");
            assert!(
                part.ends_with(&format!(" ({}/{total})", index + 1)),
                "{part:?}"
            );
        }
    }

    #[test]
    fn chooser_out_of_range_means_greedy() {
        assert_eq!(
            split_with("alpha beta gamma", 11, |_| usize::MAX),
            split("alpha beta gamma", 11)
        );
    }

    #[test]
    fn chooser_sees_reserved_suffix() {
        let mut seen = Vec::new();
        let parts = split_numbered_with("alpha beta gamma delta", 17, |window| {
            seen.push((window.max_chars, window.suffix_chars));
            greedy(window)
        });
        assert_eq!(parts.len(), 2);
        assert_eq!(seen, [(11, 6)]);
    }

    proptest! {
        #[test]
        fn split_keeps_limits_and_text(text in prose(), max in 1usize..80) {
            let parts = split(&text, max);
            for part in &parts {
                prop_assert!(part.chars().count() <= max, "{part:?} over {max}");
                prop_assert!(!part.is_empty());
            }
            prop_assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
        }

        #[test]
        fn split_never_cuts_a_word_that_fits(text in prose(), extra in 0usize..60) {
            let words: Vec<&str> = text.split_whitespace().collect();
            let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
            let max = (longest + extra).max(1);
            let parts = split(&text, max);
            let cut: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
            prop_assert_eq!(cut, words);
        }

        #[test]
        fn split_never_splits_a_grapheme(text in prose(), max in 1usize..80) {
            let clusters_fit = text.graphemes(true).all(|g| g.chars().count() <= max);
            prop_assume!(clusters_fit);
            let boundaries: Vec<usize> = text
                .grapheme_indices(true)
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            for part in parts(&text, max, 0, greedy) {
                let (start, end) = offsets(&text, part);
                prop_assert!(boundaries.binary_search(&start).is_ok(), "start {start} of {part:?}");
                prop_assert!(boundaries.binary_search(&end).is_ok(), "end {end} of {part:?}");
            }
        }

        #[test]
        fn split_handles_any_text(text in any::<String>(), max in 1usize..40) {
            let parts = split(&text, max);
            for part in &parts {
                prop_assert!(part.chars().count() <= max);
            }
            prop_assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
        }

        #[test]
        fn split_numbered_keeps_limits_and_text(text in prose(), max in 1usize..80) {
            let parts = split_numbered(&text, max);
            let total = parts.len();
            let mut bodies = String::new();
            for (index, part) in parts.iter().enumerate() {
                prop_assert!(part.chars().count() <= max, "{part:?} over {max}");
                let body = if total > 1 && part.ends_with(&format!(" ({}/{total})", index + 1)) {
                    strip_suffix(part)
                } else {
                    part.as_str()
                };
                bodies.push_str(body);
            }
            prop_assert_eq!(non_whitespace(&bodies), non_whitespace(&text));
        }
    }
}
