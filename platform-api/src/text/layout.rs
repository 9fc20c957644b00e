//! A text's layout for splitting: where its text starts and ends, and every gap between its
//! words with its kind (space, sentence, line, paragraph), found once.
use std::ops::Range;

use super::grapheme::{char_at, is_boundary, next_char, previous_char};
use super::stops::Stops;
use super::window::BreakKind;

#[cfg(doc)]
use super::window::greedy;

/// A place between words, found once per text, with positions from the start of the text.
#[derive(Clone, Copy, Debug)]
pub(super) struct Gap {
    pub(super) kind: BreakKind,
    /// Byte where the text before the gap ends.
    pub(super) end: usize,
    /// Byte where the text after the gap starts.
    pub(super) next: usize,
    /// Characters before `end`.
    pub(super) end_chars: usize,
    /// Characters before `next`.
    pub(super) next_chars: usize,
}

/// A text with its surrounding whitespace located and every gap between words found, so that
/// parts can be chosen (and look-aheads simulated) without scanning the text again.
#[derive(Clone, Debug)]
pub(super) struct Layout<'a> {
    pub(super) text: &'a str,
    pub(super) start: usize,
    pub(super) start_chars: usize,
    pub(super) end: usize,
    pub(super) end_chars: usize,
    pub(super) gaps: Gaps,
}

/// The gaps of a text in order, with those that are not plain spaces also listed by kind, so that
/// the latest gap of the most natural kind in a range is found without visiting every gap.
#[derive(Clone, Debug)]
pub(super) struct Gaps {
    all: Vec<Gap>,
    /// Indices in `all` of the sentence, line and paragraph gaps, in that order of kinds.
    by_kind: [Vec<usize>; 3],
}

impl Gaps {
    fn with_capacity(capacity: usize) -> Self {
        Gaps {
            all: Vec::with_capacity(capacity),
            by_kind: Default::default(),
        }
    }

    fn push(&mut self, gap: Gap) {
        let list = match gap.kind {
            BreakKind::Grapheme | BreakKind::Space => None,
            BreakKind::Sentence => Some(0),
            BreakKind::Line => Some(1),
            BreakKind::Paragraph => Some(2),
        };
        if let Some(list) = list {
            self.by_kind[list].push(self.all.len());
        }
        self.all.push(gap);
    }

    /// Records the whitespace at bytes `run` of the text's body (which starts at byte `start`
    /// of `text`), `chars` its characters counted from the text's start, with `newlines` line
    /// ends in it: its kind comes from them and from the word before it, and its edges are moved
    /// off any grapheme cluster they would split (a gap left without a boundary is dropped).
    fn add(
        &mut self,
        text: &str,
        start: usize,
        run: Range<usize>,
        chars: Range<usize>,
        newlines: usize,
    ) {
        let body = &text[start..];
        let bytes = body.as_bytes();
        let last = match run.start.checked_sub(1).map(|j| bytes[j]) {
            Some(byte) if byte.is_ascii() => char::from(byte),
            Some(_) => body[..run.start].chars().next_back().unwrap_or('\0'),
            None => '\0',
        };
        let kind = match newlines {
            0 if ends_sentence(last, || before_last(body, run.start)) => BreakKind::Sentence,
            0 => BreakKind::Space,
            1 => BreakKind::Line,
            _ => BreakKind::Paragraph,
        };
        let gap = Gap {
            kind,
            end: start + run.start,
            next: start + run.end,
            end_chars: chars.start,
            next_chars: chars.end,
        };
        // Between ASCII neighbours the gap's edges are always cluster boundaries.
        if last.is_ascii() && bytes[run.end].is_ascii() {
            self.push(gap);
        } else if let Some(gap) = align_gap(text, gap) {
            self.push(gap);
        }
    }

    /// The index of the latest gap of the most natural kind in `range`, as [`greedy`] chooses
    /// within one half; `None` for an empty range.
    fn best_in(&self, range: Range<usize>) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        for list in self.by_kind.iter().rev() {
            let before_end = list.partition_point(|&index| index < range.end);
            if let Some(&index) = before_end.checked_sub(1).and_then(|at| list.get(at))
                && index >= range.start
            {
                return Some(index);
            }
        }
        // Only spaces are left, and the last of them is the latest.
        Some(range.end - 1)
    }
}

impl std::ops::Deref for Gaps {
    type Target = [Gap];

    fn deref(&self) -> &[Gap] {
        &self.all
    }
}

impl<'a> Layout<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let (start, end) = bounds(text);
        let start_chars = text[..start].chars().count();
        let body = &text[start..end];
        let bytes = body.as_bytes();
        let mut gaps = Gaps::with_capacity(bytes.len() / 4);
        // Characters are counted as bytes less the bytes that continue a multi-byte character;
        // those only follow a non-ASCII byte, which is always a stop.
        let mut continuation = 0;
        let mut stops = Stops::new(bytes);
        while let Some(at) = stops.next() {
            // The common gap, one space between ASCII words, takes the short way.
            if bytes[at] == b' '
                && let Some(&after) = bytes.get(at + 1)
                && after.is_ascii_graphic()
                && let Some(&last) = at.checked_sub(1).and_then(|j| bytes.get(j))
                && last.is_ascii()
            {
                let chars = start_chars + at - continuation;
                let sentence = ends_sentence(char::from(last), || before_last(body, at));
                gaps.push(Gap {
                    kind: if sentence {
                        BreakKind::Sentence
                    } else {
                        BreakKind::Space
                    },
                    end: start + at,
                    next: start + at + 1,
                    end_chars: chars,
                    next_chars: chars + 1,
                });
                continue;
            }
            let Some(c) = char_at(body, at) else {
                break;
            };
            if !c.is_whitespace() {
                continuation += c.len_utf8() - 1;
                stops.skip_to(at + c.len_utf8());
                continue;
            }
            let (next, newlines, run_chars) = whitespace_run(body, at);
            if next >= bytes.len() {
                break;
            }
            let chars = start_chars + at - continuation;
            continuation += (next - at) - run_chars;
            stops.skip_to(next);
            gaps.add(text, start, at..next, chars..chars + run_chars, newlines);
        }
        Layout {
            text,
            start,
            start_chars,
            end,
            end_chars: start_chars + bytes.len() - continuation,
            gaps,
        }
    }

    /// The gaps within the limit of a part starting at `pos`, as a range of `gaps`, or `None`
    /// when the rest of the text fits in the part.
    pub(super) fn window(
        &self,
        pos: usize,
        pos_chars: usize,
        max_chars: usize,
    ) -> Option<(usize, usize)> {
        if self.end_chars - pos_chars <= max_chars {
            return None;
        }
        let first = self.gaps.partition_point(|gap| gap.end <= pos);
        let last = self.gaps[first..].partition_point(|gap| gap.end_chars - pos_chars <= max_chars);
        Some((first, first + last))
    }

    /// What [`greedy`] chooses among the non-empty range `gaps` of a part starting after
    /// `pos_chars` characters, as an index in `self.gaps`, with the gaps' kinds looked up rather
    /// than visited.
    pub(super) fn pick_gap(&self, gaps: Range<usize>, pos_chars: usize, max_chars: usize) -> usize {
        let second_half = gaps.start
            + self.gaps[gaps.clone()]
                .partition_point(|gap| (gap.end_chars - pos_chars).saturating_mul(2) < max_chars);
        self.gaps
            .best_in(second_half..gaps.end)
            .or_else(|| self.gaps.best_in(gaps.start..second_half))
            .unwrap_or(gaps.start)
    }

    /// The cut inside a word longer than the limit: the last grapheme boundary within it.
    /// Returns the byte where it falls and the characters before it in the part.
    pub(super) fn cut_word(&self, pos: usize, max_chars: usize) -> (usize, usize) {
        let text = self.text;
        let body = &text[pos..self.end];
        let hard = pos
            + body
                .char_indices()
                .nth(max_chars)
                .map_or(body.len(), |(offset, _)| offset);
        let mut cut = hard;
        while cut > pos && !is_boundary(text, cut) {
            cut = previous_char(text, cut);
        }
        if cut == pos {
            // A single cluster longer than the whole limit: the limit wins.
            cut = hard;
        }
        (cut, text[pos..cut].chars().count())
    }
}

/// Moves the edges of a gap off any grapheme cluster that a whitespace character shares with
/// its neighbour (a prepended mark before it, a combining mark after it); `None` when no cluster
/// boundary is left to cut at.
fn align_gap(text: &str, mut gap: Gap) -> Option<Gap> {
    while gap.end < gap.next && !is_boundary(text, gap.end) {
        gap.end = next_char(text, gap.end);
        gap.end_chars += 1;
    }
    while gap.next > gap.end && !is_boundary(text, gap.next) {
        gap.next = previous_char(text, gap.next);
        gap.next_chars -= 1;
    }
    (is_boundary(text, gap.end) && is_boundary(text, gap.next)).then_some(gap)
}

/// Where the text of `text` starts and ends once whitespace around it is dropped, keeping any
/// whitespace that shares a grapheme cluster with a visible character.
pub(super) fn bounds(text: &str) -> (usize, usize) {
    let mut start = text.len() - text.trim_start().len();
    while start > 0 && !is_boundary(text, start) {
        start = previous_char(text, start);
    }
    let mut end = text.trim_end().len();
    while end < text.len() && !is_boundary(text, end) {
        end = next_char(text, end);
    }
    (start, end.max(start))
}

/// The whitespace of `body` from byte `at`: where it ends, how many line ends it holds
/// ([`newline_weight`]) and how many characters it is.
fn whitespace_run(body: &str, at: usize) -> (usize, usize, usize) {
    let bytes = body.as_bytes();
    let (mut i, mut newlines, mut chars) = (at, 0, 0);
    while let Some(&byte) = bytes.get(i) {
        if byte == b' ' {
            i += 1;
        } else if let Some(c) = char_at(body, i).filter(|c| c.is_whitespace()) {
            i += c.len_utf8();
            newlines += newline_weight(c, bytes.get(i).copied());
        } else {
            break;
        }
        chars += 1;
    }
    (i, newlines, chars)
}

/// The character before the last one of `body[..end]`, or `'\0'`.
fn before_last(body: &str, end: usize) -> char {
    let mut before = body[..end].chars().rev();
    before.next();
    before.next().unwrap_or('\0')
}

/// How many line ends a whitespace character adds, given the byte after it; `\r\n` counts
/// once, U+2029 as a blank line.
fn newline_weight(c: char, next: Option<u8>) -> usize {
    match c {
        '\n' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' => 1,
        '\r' => usize::from(next != Some(b'\n')),
        '\u{2029}' => 2,
        _ => 0,
    }
}

/// Whether a word ending in `last`, preceded by `before_last()` (only worked out when it matters),
/// ends a sentence. A `.` after a digit is taken for a list number or a version (`1. item`, `v2.`)
/// rather than a sentence end.
fn ends_sentence(last: char, before_last: impl FnOnce() -> char) -> bool {
    match last {
        '!' | '?' | '…' => true,
        '.' => !before_last().is_ascii_digit(),
        '"' | '\'' | ')' | ']' | '’' | '”' | '»' => {
            matches!(before_last(), '.' | '!' | '?' | '…')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prose::prose;
    use proptest::prelude::*;

    /// The byte-at-a-time scan the block scan replaced, as a reference.
    fn reference_layout(text: &str) -> Layout<'_> {
        let (start, end) = bounds(text);
        let start_chars = text[..start].chars().count();
        let body = &text[start..end];
        let bytes = body.as_bytes();
        let mut gaps = Gaps::with_capacity(bytes.len() / 4);
        let mut chars = start_chars;
        let mut i = 0;
        while i < bytes.len() {
            // Printable ASCII is taken in runs; anything else is decoded to tell whitespace.
            loop {
                let run = i;
                while i < bytes.len() && bytes[i].is_ascii_graphic() {
                    i += 1;
                }
                chars += i - run;
                match char_at(body, i) {
                    Some(c) if !c.is_whitespace() => {
                        chars += 1;
                        i += c.len_utf8();
                    }
                    _ => break,
                }
            }
            if i >= bytes.len() {
                break;
            }
            let (next, newlines, run_chars) = whitespace_run(body, i);
            if next >= bytes.len() {
                break;
            }
            gaps.add(text, start, i..next, chars..chars + run_chars, newlines);
            chars += run_chars;
            i = next;
        }
        Layout {
            text,
            start,
            start_chars,
            end,
            end_chars: chars,
            gaps,
        }
    }

    proptest! {
        #[test]
        fn block_scan_finds_the_gaps_a_byte_scan_finds(text in prose(), noise in any::<String>()) {
            for text in [text.as_str(), noise.as_str(), &format!("{text}{noise}{text}")] {
                let (fast, slow) = (Layout::new(text), reference_layout(text));
                prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            }
        }
    }
}
