//! Text helpers shared by platforms: Markdown to plain text, and splitting into parts.
//!
//! [`markdown_to_plain`] renders agent Markdown for platforms that show text as it is (SMS);
//! [`render_markdown`] lays it out the same way for a platform that keeps styles (Telegram's
//! HTML), telling its [`Styler`] where styles, links and code open and close. [`split`] /
//! [`split_numbered`] cut text into parts within a platform's limit at the most natural places.
//! A platform whose parts cost differently depending on where they end (SMS segments) steers the
//! cut with [`split_numbered_with`] and its own chooser, which sees every candidate break in a
//! [`Window`], can look ahead with [`Window::greedy_after`], and can fall back on [`greedy`].
//! Before any of that, [`extract_media`] takes out the media a reply asks for (`MEDIA:` tags,
//! web images, the `[[as_document]]` and `[[audio_as_voice]]` flags).
//!
//! ```
//! use platform_api::text::{markdown_to_plain, split_numbered};
//!
//! let plain = markdown_to_plain("**Done.** See [the docs](https://example.com/docs).");
//! assert_eq!(plain, "Done. See the docs (https://example.com/docs).");
//! let parts = split_numbered("One sentence here. Another one there.", 26);
//! assert_eq!(parts, ["One sentence here. (1/2)", "Another one there. (2/2)"]);
//! ```

mod grapheme;
mod layout;
mod markdown;
mod media;
mod plain;
#[cfg(test)]
mod prose;
mod splitting;
mod stops;
mod window;

pub use markdown::{MarkdownWriter, Style, Styler, render_markdown};
pub use media::{MediaRef, MediaReply, MediaSource, extract_media};
pub use plain::markdown_to_plain;
pub use splitting::{
    Parts, Span, numbered_spans_with, parts, split, split_numbered, split_numbered_with, split_with,
};
pub use window::{Break, BreakKind, GreedyParts, Window, greedy};
