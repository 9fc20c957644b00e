//! What a chooser sees when a text does not fit in one part ([`Window`], its [`Break`]s), and
//! the default choice, [`greedy`].
use std::ops::Range;

use super::layout::Layout;

/// How natural a place to cut text is; later variants are preferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BreakKind {
    /// Inside a word longer than the limit, between two grapheme clusters.
    Grapheme,
    /// Between two words.
    Space,
    /// After a sentence: `.`, `!`, `?` or `…` (maybe followed by a closing quote), then a space.
    Sentence,
    /// At a line break.
    Line,
    /// At a blank line between paragraphs.
    Paragraph,
}

/// A place where a part may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Break {
    /// How natural the place is.
    pub kind: BreakKind,
    /// Byte offset in [`Window::rest`] where the part's text ends; whitespace after it is dropped.
    pub end: usize,
    /// Byte offset in [`Window::rest`] where the next part's text starts.
    pub next: usize,
    /// Characters (Unicode scalar values) in the part if it ends here.
    pub chars: usize,
}

/// What a chooser sees when the rest of the text does not fit in one part.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    /// The text from the start of this part to the end of the input.
    pub rest: &'a str,
    /// Every place where this part may end within the limit, in text order; never empty.
    pub breaks: &'a [Break],
    /// Most characters the part's text may have.
    pub max_chars: usize,
    /// Characters that will be appended to the part (its ` (i/N)` suffix), outside `max_chars`.
    pub suffix_chars: usize,
    pub(super) layout: &'a Layout<'a>,
    pub(super) pos: usize,
    pub(super) pos_chars: usize,
    /// When the breaks are the layout's gaps from this index on, rather than a cut in a word.
    pub(super) first_gap: Option<usize>,
}

impl std::fmt::Debug for Window<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("rest", &self.rest)
            .field("breaks", &self.breaks)
            .field("max_chars", &self.max_chars)
            .field("suffix_chars", &self.suffix_chars)
            .finish_non_exhaustive()
    }
}

impl<'a> Window<'a> {
    /// The same window offering only its first `len` breaks, for choosing among those.
    pub fn truncated(&self, len: usize) -> Window<'a> {
        Window {
            breaks: &self.breaks[..len.min(self.breaks.len())],
            ..*self
        }
    }

    /// Characters of the whole text before this part.
    pub fn start_chars(&self) -> usize {
        self.pos_chars
    }

    /// The parts [`greedy`] makes of the text after `breaks[index]`, with the same limit, each as
    /// its range of bytes and its range of characters within [`Window::rest`]. Cheap: the text is
    /// not scanned again. Empty for an index out of range.
    pub fn greedy_after(&self, index: usize) -> GreedyParts<'a> {
        let (pos, pos_chars) = match self.breaks.get(index) {
            Some(cut) => (self.pos + cut.next, self.next_chars(cut)),
            None => (self.layout.end, self.layout.end_chars),
        };
        GreedyParts {
            layout: self.layout,
            base: self.pos,
            base_chars: self.pos_chars,
            pos,
            pos_chars,
            max_chars: self.max_chars,
        }
    }

    /// Characters before the start of the part that follows `cut`, counted from the text's start.
    fn next_chars(&self, cut: &Break) -> usize {
        if cut.next == cut.end {
            return self.pos_chars + cut.chars;
        }
        let end = self.pos + cut.end;
        let gaps = &self.layout.gaps;
        let index = gaps.partition_point(|gap| gap.end < end);
        gaps.get(index)
            .filter(|gap| gap.end == end)
            .map_or(self.pos_chars + cut.chars, |gap| gap.next_chars)
    }
}

/// The default choice of where a part ends: the index in `window.breaks` of the latest break of
/// the most natural kind among those that leave the part at least half full.
///
/// Breaks in the first half of the limit are only used when the second half has none, so a
/// paragraph break early on does not win over filling the part up to a line, sentence or word
/// break. Returns 0 for an empty `window.breaks`.
pub fn greedy(window: &Window<'_>) -> usize {
    let breaks = window.breaks;
    // Without gaps, the window's one break is a cut inside a word too long for the part.
    match window.first_gap {
        Some(first) if !breaks.is_empty() => {
            let gaps = first..first + breaks.len();
            window
                .layout
                .pick_gap(gaps, window.pos_chars, window.max_chars)
                - first
        }
        _ => 0,
    }
}

/// The parts [`greedy`] would make of the rest of a text: see [`Window::greedy_after`].
pub struct GreedyParts<'a> {
    layout: &'a Layout<'a>,
    base: usize,
    base_chars: usize,
    pos: usize,
    pos_chars: usize,
    max_chars: usize,
}

impl Iterator for GreedyParts<'_> {
    type Item = (Range<usize>, Range<usize>);

    fn next(&mut self) -> Option<(Range<usize>, Range<usize>)> {
        let layout = self.layout;
        let pos = self.pos;
        if pos >= layout.end {
            return None;
        }
        let pos_chars = self.pos_chars;
        let (end, end_chars, next, next_chars) = match layout.window(pos, pos_chars, self.max_chars)
        {
            None => (layout.end, layout.end_chars, layout.end, layout.end_chars),
            Some((first, last)) if first == last => {
                let (cut, chars) = layout.cut_word(pos, self.max_chars);
                (cut, pos_chars + chars, cut, pos_chars + chars)
            }
            Some((first, last)) => {
                let gap = layout.gaps[layout.pick_gap(first..last, pos_chars, self.max_chars)];
                (gap.end, gap.end_chars, gap.next, gap.next_chars)
            }
        };
        self.pos = next;
        self.pos_chars = next_chars;
        Some((
            pos - self.base..end - self.base,
            pos_chars - self.base_chars..end_chars - self.base_chars,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prose::prose;
    use crate::text::splitting::split_with;
    use proptest::prelude::*;

    /// [`greedy`]'s rule visiting every one of `len` candidates in text order (so with
    /// growing characters), `candidate(index)` giving each one's kind and characters.
    fn pick(
        len: usize,
        max_chars: usize,
        candidate: impl Fn(usize) -> (BreakKind, usize),
    ) -> usize {
        let (mut second_half, mut high) = (0, len);
        while second_half < high {
            let middle = (second_half + high) / 2;
            if candidate(middle).1.saturating_mul(2) < max_chars {
                second_half = middle + 1;
            } else {
                high = middle;
            }
        }
        // Scanning from the end, the first break of a kind is its latest, and a paragraph break
        // cannot be beaten.
        let best_in = |range: Range<usize>| {
            let mut best: Option<(BreakKind, usize)> = None;
            for index in range.rev() {
                let (kind, _) = candidate(index);
                if best.is_none_or(|(found, _)| kind > found) {
                    best = Some((kind, index));
                    if kind == BreakKind::Paragraph {
                        break;
                    }
                }
            }
            best.map(|(_, index)| index)
        };
        best_in(second_half..len)
            .or_else(|| best_in(0..second_half))
            .unwrap_or(0)
    }

    #[test]
    fn truncated_window_keeps_its_first_breaks() {
        let mut lens = Vec::new();
        let _ = split_with("one two three four five six", 10, |window| {
            lens.push((window.breaks.len(), window.truncated(1).breaks.len()));
            lens.push((window.truncated(99).breaks.len(), 0));
            greedy(window)
        });
        assert_eq!(lens[..2], [(2, 1), (2, 0)]);
    }

    proptest! {
        #[test]
        fn greedy_looks_up_what_visiting_every_break_finds(text in prose(), max in 1usize..80) {
            let mut mismatches = Vec::new();
            let _ = split_with(&text, max, |window| {
                for len in 1..=window.breaks.len() {
                    let window = window.truncated(len);
                    let breaks = window.breaks;
                    let visited =
                        pick(len, window.max_chars, |i| (breaks[i].kind, breaks[i].chars));
                    if greedy(&window) != visited {
                        mismatches.push((window.rest.to_owned(), len));
                    }
                }
                greedy(window)
            });
            prop_assert!(mismatches.is_empty(), "{mismatches:?}");
        }

        #[test]
        fn greedy_after_matches_splitting_the_rest(text in prose(), max in 1usize..80) {
            let mut mismatches = Vec::new();
            let mut part = 0;
            let _ = split_with(&text, max, |window| {
                // Every part but the last is chosen, so this window is part number `part`.
                let here = window.start_chars();
                for index in 0..window.breaks.len() {
                    let after: Vec<&str> = window
                        .greedy_after(index)
                        .map(|(range, chars)| {
                            let part = &window.rest[range.clone()];
                            assert_eq!(part.chars().count(), chars.len());
                            assert_eq!(window.rest[..range.start].chars().count(), chars.start);
                            part
                        })
                        .collect();
                    // The same text split again, cut here at `index` and greedily elsewhere
                    // (the text before a cut can decide a break's kind, so the rest is not
                    // split on its own).
                    let whole = split_with(&text, max, |other| {
                        if other.start_chars() == here { index } else { greedy(other) }
                    });
                    let expected = whole.get(part + 1..).unwrap_or_default();
                    if after != expected {
                        mismatches.push((after.join("|"), expected.join("|")));
                    }
                }
                part += 1;
                let before = &text[..text.len() - window.rest.len()];
                if window.start_chars() != before.chars().count() {
                    mismatches.push(("start_chars".to_owned(), before.to_owned()));
                }
                if window.greedy_after(window.breaks.len()).count() != 0 {
                    mismatches.push(("past the last break".to_owned(), String::new()));
                }
                greedy(window)
            });
            prop_assert!(mismatches.is_empty(), "{mismatches:?}");
        }
    }
}
