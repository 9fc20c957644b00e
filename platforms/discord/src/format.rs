//! Agent Markdown → Discord messages: Discord renders Markdown, so it is kept as written and
//! split into numbered messages of at most [`MAX_MESSAGE_CHARS`] characters.
//!
//! Parts end at paragraphs, lines, sentences or words, and never inside a fenced code block
//! when a place outside one leaves the part at least a quarter full: each part then opens and
//! closes its own fences, and Discord shows the code as code. Nothing is added to the text, so
//! a single code block longer than a message is still cut inside.
//!
//! ```
//! use platform_discord::format::format;
//!
//! let parts = format("**Done.** See [the docs](https://example.com/docs).");
//! assert_eq!(parts.len(), 1);
//! assert_eq!(parts[0].body, "**Done.** See [the docs](https://example.com/docs).");
//! ```
use std::ops::Range;

use platform_api::media::{MediaLimits, attach};
use platform_api::text::{self, Window};
use platform_api::{Formatted, Part, PartMedia};

/// Longest message Discord accepts, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// What one message can carry: 10 files, and 10 MiB, the upload limit of a bot in a server
/// without boosts, for each file and (as Discord counts the whole upload) for all of them.
pub const MEDIA_LIMITS: MediaLimits = MediaLimits {
    files_per_message: 10,
    bytes_per_file: 10 * 1024 * 1024,
    bytes_per_message: 10 * 1024 * 1024,
};

/// Formats a reply with files: the files ride on its messages, the first ten (within 10 MiB)
/// on the first one and the others in messages of their own after the text; a file over
/// 10 MiB is refused and named at the end of the text. Discord shows an image inline, and
/// any other file (a voice note too: a bot's voice message needs a waveform the gateway does
/// not have) as a file to play or download.
pub fn format_media(markdown: &str, media: Vec<PartMedia>) -> Formatted {
    attach(markdown, media, MEDIA_LIMITS, "Discord", format)
}

/// Formats agent Markdown into Discord messages, numbered ` (i/N)` when there are several.
/// Empty Markdown gives no parts.
pub fn format(markdown: &str) -> Vec<Part> {
    let blocks = code_blocks(markdown);
    text::split_numbered_with(markdown, MAX_MESSAGE_CHARS, |window| {
        choose(window, &blocks)
    })
    .into_iter()
    .map(Part::plain)
    .collect()
}

/// Where a part ends: [`text::greedy`]'s choice, unless it falls inside a code block; then the
/// most natural break outside every block that leaves the part half full (or, failing that, a
/// quarter full).
fn choose(window: &Window<'_>, blocks: &[Range<usize>]) -> usize {
    let greedy = text::greedy(window);
    let inside = |index: usize| {
        let at = window.start_chars() + window.breaks[index].chars;
        blocks
            .iter()
            .any(|block| block.start < at && at < block.end)
    };
    if window.breaks.is_empty() || !inside(greedy) {
        return greedy;
    }
    let best_outside = |min_chars: usize| {
        (0..window.breaks.len())
            .filter(|&i| window.breaks[i].chars >= min_chars && !inside(i))
            .max_by_key(|&i| (window.breaks[i].kind, i))
    };
    best_outside(window.max_chars / 2)
        .or_else(|| best_outside(window.max_chars / 4))
        .unwrap_or(greedy)
}

/// The fenced code blocks of Markdown, as ranges of character offsets from the start of the
/// opening fence line to the end of the closing one (or of the text, when never closed).
fn code_blocks(markdown: &str) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    // The open fence: its character, its length, and where its line starts.
    let mut open: Option<(char, usize, usize)> = None;
    let mut offset = 0;
    for line in markdown.split_inclusive('\n') {
        let chars = line.chars().count();
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        let fence = if indent <= 3 {
            let rest = &content[indent..];
            ['`', '~'].into_iter().find_map(|mark| {
                let len = rest.len() - rest.trim_start_matches(mark).len();
                (len >= 3).then_some((mark, len, rest[len..].trim()))
            })
        } else {
            None
        };
        match (open, fence) {
            (None, Some((mark, len, info))) if !(mark == '`' && info.contains('`')) => {
                open = Some((mark, len, offset));
            }
            (Some((mark, len, start)), Some((close, close_len, "")))
                if close == mark && close_len >= len =>
            {
                let end = offset + content.chars().count();
                blocks.push(start..end);
                open = None;
            }
            _ => {}
        }
        offset += chars;
    }
    if let Some((_, _, start)) = open {
        blocks.push(start..offset);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether every part opens and closes its own fences.
    fn balanced(body: &str) -> bool {
        body.lines()
            .filter(|l| l.trim_start().starts_with("```"))
            .count()
            % 2
            == 0
    }

    #[test]
    fn code_blocks_are_found_by_their_fences() {
        let md = "Intro\n```rust\nfn main() {}\n```\nmid\n~~~~\n```\nstill code\n~~~~\nend";
        let blocks = code_blocks(md);
        assert_eq!(blocks.len(), 2);
        let text: Vec<char> = md.chars().collect();
        let first: String = text[blocks[0].clone()].iter().collect();
        assert_eq!(first, "```rust\nfn main() {}\n```");
        let second: String = text[blocks[1].clone()].iter().collect();
        assert_eq!(second, "~~~~\n```\nstill code\n~~~~");
        assert_eq!(code_blocks("```\nnever closed"), vec![0..16]);
        assert!(code_blocks("inline ```code``` only").is_empty());
    }

    #[test]
    fn parts_end_outside_code_blocks() {
        // The block starts before half the limit and ends past it: the latest natural breaks
        // within the limit are its own lines.
        let prose = "Some words that explain the code below in detail. ".repeat(12);
        let code = format!(
            "```python\n{}```",
            "print('a line of code here')\n".repeat(50)
        );
        let md = format!("{prose}\n\n{code}\n\nAnd a closing remark.");
        let parts = format(&md);
        assert!(parts.len() >= 2, "{parts:?}");
        for part in &parts {
            assert!(part.body.chars().count() <= MAX_MESSAGE_CHARS);
            assert!(balanced(&part.body), "unbalanced fences:\n{}", part.body);
        }
        // Without the chooser the same text would be cut inside the block.
        let plain = text::split_numbered(&md, MAX_MESSAGE_CHARS);
        assert!(
            plain.iter().any(|p| !balanced(p)),
            "the test text must need the chooser"
        );
    }

    #[test]
    fn short_replies_are_one_part_and_long_ones_are_numbered() {
        assert_eq!(format("Hi **there**")[0].body, "Hi **there**");
        assert!(format("  \n ").is_empty());
        let long = "A sentence that goes on for a while. ".repeat(120);
        let parts = format(&long);
        assert_eq!(parts.len(), 3);
        assert!(parts[2].body.ends_with(" (3/3)"));
    }
}
