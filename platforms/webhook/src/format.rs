//! Agent Markdown → webhook parts: the Markdown is kept (the receiving system decides how to
//! show it) and split into numbered parts within [`MAX_PART_CHARS`].
//!
//! ```
//! use platform_webhook::format::format;
//!
//! let parts = format("**Done.** See [the docs](https://example.com/docs).");
//! assert_eq!(parts.len(), 1);
//! assert_eq!(parts[0].body, "**Done.** See [the docs](https://example.com/docs).");
//! ```
use platform_api::media::MediaLimits;
use platform_api::{Formatted, Part, PartMedia, text};

/// Longest part, in characters, numbering included.
pub const MAX_PART_CHARS: usize = 4000;

/// Formats agent Markdown into the parts the webhook POSTs: split at paragraphs, lines,
/// sentences or words, numbered ` (i/N)` when there are several. Empty Markdown gives no parts.
pub fn format(markdown: &str) -> Vec<Part> {
    text::split_numbered(markdown, MAX_PART_CHARS)
        .into_iter()
        .map(Part::plain)
        .collect()
}

/// What one POST carries: the receiver fetches files by URL, so the limits are generous
/// (10 files, 25 MB each).
pub const MEDIA_LIMITS: MediaLimits = MediaLimits {
    files_per_message: 10,
    bytes_per_file: 25_000_000,
    bytes_per_message: 250_000_000,
};

/// Formats a reply that comes with files: they ride on the parts ([`MEDIA_LIMITS`]), listed in
/// the POST's `media`; a file over 25 MB is left out and named in the text.
pub fn format_media(markdown: &str, media: Vec<PartMedia>) -> Formatted {
    platform_api::media::attach(markdown, media, MEDIA_LIMITS, "the JSON webhook", format)
}

/// Where a part stands in its reply, read back from its ` (i/N)` suffix: `(1, 1)` when it has
/// none (a reply that fits in one part is not numbered).
pub fn numbering(body: &str) -> (usize, usize) {
    let parsed = body
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" ("))
        .and_then(|(_, fraction)| fraction.split_once('/'))
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match parsed {
        Some((index, count)) if count >= 2 && (1..=count).contains(&index) => (index, count),
        _ => (1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_replies_are_numbered_and_the_numbers_read_back() {
        let reply = "A sentence that goes on for a while. ".repeat(300);
        let parts = format(&reply);
        assert_eq!(parts.len(), 3);
        for (i, part) in parts.iter().enumerate() {
            assert!(part.body.chars().count() <= MAX_PART_CHARS);
            assert_eq!(numbering(&part.body), (i + 1, 3));
        }
        assert_eq!(numbering("Short reply"), (1, 1));
        assert_eq!(numbering("Odd (3/2)"), (1, 1));
        assert_eq!(numbering("Odd (0/2)"), (1, 1));
        assert_eq!(numbering("Fraction (x/2)"), (1, 1));
        assert!(format(" \n ").is_empty());
    }
}
