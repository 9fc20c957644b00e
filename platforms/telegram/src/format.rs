//! Agent Markdown → Telegram messages in Telegram's HTML (`parse_mode=HTML`).
//!
//! HTML rather than MarkdownV2: MarkdownV2 needs eighteen characters escaped everywhere,
//! differently inside code and links, and one miss fails the whole message; HTML needs `<`, `>`
//! and `&` escaped, and the tags it uses are few: `b`, `i`, `s`, `code`, `pre` (with
//! `<code class="language-…">` for a fenced block's language), `a href` and `blockquote`.
//! Headings become bold lines, lists `•` or `1.` lines, tables ` | `-separated lines.
//!
//! Telegram counts a message's length after the tags are parsed (its *visible* text), at most
//! 4,096 UTF-16 code units. A reply is rendered once into its text plus where each style starts
//! and ends; the text is split with [`platform_api::text`]'s splitter at the most natural
//! places (blank line, line, sentence, word) without cutting a link, and each part is then
//! written as HTML with the styles open at its start re-opened, so every part is valid on its
//! own. A link shows its text, and its target only as the `href`; for the length budget the
//! target counts as if shown (` (url)` after the text), which is also how [`shown`] writes a
//! part as plain text: the fallback when Telegram rejects the HTML, and what the conformance
//! kit checks.
//!
//! ```
//! use platform_telegram::format::{format, shown};
//!
//! let parts = format("**Done.** See [the docs](https://example.com/docs) & `x < y`.");
//! assert_eq!(
//!     parts[0].body,
//!     r#"<b>Done.</b> See <a href="https://example.com/docs">the docs</a> &amp; <code>x &lt; y</code>."#
//! );
//! assert_eq!(shown(&parts[0].body), "Done. See the docs (https://example.com/docs) & x < y.");
//! ```
use std::fmt::Write as _;
use std::ops::Range;

use platform_api::Part;
use platform_api::media::{Formatted, MediaLimits, PartMedia, SendAs, attach, media_part};
use platform_api::text::{self, BreakKind, MarkdownWriter, Styler, Window};
use pulldown_cmark::CowStr;

/// Longest message Telegram accepts: 4,096 characters of visible text, counted as UTF-16 code
/// units (an emoji outside the Basic Multilingual Plane counts twice).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Longest caption of a file: 1,024 characters of visible text, counted as UTF-16 code units.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Largest file a bot uploads: 50 MB (counted in decimal megabytes, a little under Telegram's
/// binary ones, so that what is refused here is what people read as 50 MB).
pub const MAX_UPLOAD_BYTES: u64 = 50_000_000;
/// Largest photo a bot sends as a photo: 10 MB. A larger picture goes as a document.
pub const MAX_PHOTO_BYTES: u64 = 10_000_000;

/// A style of a stretch of text, written as an HTML tag.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Style {
    Bold,
    Italic,
    Strike,
    Code,
    /// A code block, with the language of its fence.
    Pre(Option<String>),
    Link(String),
    Quote,
    /// Text counted and shown in plain text, but not sent: a link's ` (url)`.
    Hidden,
}

impl Style {
    fn open(&self, out: &mut String) {
        match self {
            Style::Bold => out.push_str("<b>"),
            Style::Italic => out.push_str("<i>"),
            Style::Strike => out.push_str("<s>"),
            Style::Code => out.push_str("<code>"),
            Style::Pre(None) => out.push_str("<pre>"),
            Style::Pre(Some(language)) => {
                let _ = write!(out, "<pre><code class=\"language-{language}\">");
            }
            Style::Link(url) => {
                out.push_str("<a href=\"");
                escape_into(out, url, true);
                out.push_str("\">");
            }
            Style::Quote => out.push_str("<blockquote>"),
            Style::Hidden => {}
        }
    }

    fn close(&self, out: &mut String) {
        match self {
            Style::Bold => out.push_str("</b>"),
            Style::Italic => out.push_str("</i>"),
            Style::Strike => out.push_str("</s>"),
            Style::Code => out.push_str("</code>"),
            Style::Pre(None) => out.push_str("</pre>"),
            Style::Pre(Some(_)) => out.push_str("</code></pre>"),
            Style::Link(_) => out.push_str("</a>"),
            Style::Quote => out.push_str("</blockquote>"),
            Style::Hidden => {}
        }
    }
}

/// Where a style starts or ends in the rendered text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mark {
    Open(Style),
    Close,
}

/// A rendered reply: its text as shown, and the styles over it (properly nested, in order).
#[derive(Debug, Default)]
struct Rich {
    text: String,
    marks: Vec<(usize, Mark)>,
}

impl Rich {
    /// Byte ranges of the text where a part must not end: each link with its ` (url)`.
    fn links(&self) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut stack: Vec<(usize, &Style)> = Vec::new();
        for (at, mark) in &self.marks {
            match mark {
                Mark::Open(style) => stack.push((*at, style)),
                Mark::Close => match stack.pop() {
                    Some((start, Style::Link(_))) => ranges.push(start..*at),
                    Some((_, Style::Hidden)) => {
                        // The ` (url)` right after a link belongs to it.
                        if let Some(last) = ranges.last_mut() {
                            last.end = *at;
                        }
                    }
                    _ => {}
                },
            }
        }
        ranges
    }

    /// The HTML of the text in `range`: the styles open at its start re-opened, every style
    /// closed at its end, and no tag around nothing.
    fn html(&self, range: Range<usize>) -> String {
        let mut out = String::with_capacity(range.len() + range.len() / 4);
        let mut wanted: Vec<&Style> = Vec::new();
        let mut written = 0;
        let mut pos = range.start;
        fn emit(out: &mut String, wanted: &[&Style], written: &mut usize, text: &str) {
            if text.is_empty() || wanted.contains(&&Style::Hidden) {
                return;
            }
            for style in &wanted[*written..] {
                style.open(out);
            }
            *written = wanted.len();
            escape_into(out, text, false);
        }
        for (at, mark) in &self.marks {
            if *at >= range.end {
                break;
            }
            if *at > pos {
                emit(&mut out, &wanted, &mut written, &self.text[pos..*at]);
                pos = *at;
            }
            match mark {
                Mark::Open(style) => wanted.push(style),
                Mark::Close => {
                    if let Some(style) = wanted.pop()
                        && written > wanted.len()
                    {
                        style.close(&mut out);
                        written = wanted.len();
                    }
                }
            }
        }
        emit(&mut out, &wanted, &mut written, &self.text[pos..range.end]);
        for style in wanted[..written].iter().rev() {
            style.close(&mut out);
        }
        out
    }
}

/// Escapes text for Telegram's HTML: `&`, `<` and `>`, and `"` inside an attribute.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Escapes text for Telegram's HTML (`&`, `<`, `>`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text, false);
    out
}

/// Formats agent Markdown into Telegram messages in HTML, each with at most
/// [`MAX_MESSAGE_CHARS`] of visible text (targets of links counted as shown by [`shown`]).
/// Empty Markdown gives no parts.
pub fn format(markdown: &str) -> Vec<Part> {
    let rich = render_rich(markdown);
    split(&rich)
        .into_iter()
        .map(|range| Part::plain(rich.html(range)))
        .collect()
}

/// Formats a reply with files: one file a message (`sendPhoto`, `sendVoice`, `sendAudio`,
/// `sendVideo` or `sendDocument`). When the whole text fits in a caption ([`MAX_CAPTION_CHARS`],
/// measured as [`shown`] writes it, so that its plain-text fallback fits too) it is the first
/// file's caption; otherwise the text goes first as its own messages and the files follow
/// without captions. Files over [`MAX_UPLOAD_BYTES`] are refused and named in the text; a
/// picture Telegram would not take as a photo (over [`MAX_PHOTO_BYTES`], or neither JPEG nor
/// PNG) goes as a document.
pub fn format_media(markdown: &str, media: Vec<PartMedia>) -> Formatted {
    let limits = MediaLimits {
        files_per_message: 1,
        bytes_per_file: MAX_UPLOAD_BYTES,
        bytes_per_message: MAX_UPLOAD_BYTES,
    };
    let mut out = attach(markdown, media, limits, "Telegram", format);
    // `attach` puts the first file on the first part: keep it there only as the caption of
    // the whole text, else send it after the text.
    let texts = out.parts.iter().filter(|p| !p.body.is_empty()).count();
    if let Some(first) = out.parts.first_mut()
        && !first.body.is_empty()
        && (texts > 1 || utf16_len(&shown(&first.body)) > MAX_CAPTION_CHARS)
    {
        let media = std::mem::take(&mut first.media);
        if !media.is_empty() {
            out.parts.insert(texts, media_part(media));
        }
    }
    for m in out.parts.iter_mut().flat_map(|p| p.media.iter_mut()) {
        let photo = matches!(m.content_type.as_str(), "image/jpeg" | "image/png");
        if m.send_as == SendAs::Photo && (!photo || m.size > MAX_PHOTO_BYTES) {
            m.send_as = SendAs::Document;
        }
    }
    out
}

/// The whole reply as [`shown`] writes its parts, before it is split: what the conformance kit
/// compares the parts with.
pub fn render(markdown: &str) -> String {
    render_rich(markdown).text
}

/// A part in plain text: tags dropped, entities decoded, and each link's target after its
/// text as ` (url)` (unless the text is the target). The text Telegram shows, plus the targets.
pub fn shown(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut links: Vec<(usize, String)> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(tag) = rest.strip_prefix('<') {
            let end = tag.find('>').unwrap_or(tag.len());
            let inside = &tag[..end];
            rest = tag.get(end + 1..).unwrap_or("");
            if let Some(name) = inside.strip_prefix('/') {
                if name.trim().eq_ignore_ascii_case("a")
                    && let Some((start, url)) = links.pop()
                {
                    let label = out[start..].trim();
                    if !url.is_empty() && label != url && !label.is_empty() {
                        let _ = write!(out, " ({url})");
                    }
                }
            } else if let Some(attributes) = inside.strip_prefix("a ") {
                links.push((out.len(), href(attributes)));
            }
        } else if let Some(entity) = rest.strip_prefix('&') {
            match entity.find(';').filter(|n| *n <= 10) {
                Some(end) => {
                    match decode_entity(&entity[..end]) {
                        Some(c) => out.push(c),
                        None => out.push_str(&rest[..end + 2]),
                    }
                    rest = &entity[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = entity;
                }
            }
        } else {
            let end = rest.find(['<', '&']).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// The `href` of a tag's attributes, decoded.
fn href(attributes: &str) -> String {
    let Some(at) = attributes.find("href=") else {
        return String::new();
    };
    let value = &attributes[at + "href=".len()..];
    let value = match value.chars().next() {
        Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or_default(),
        _ => value.split_whitespace().next().unwrap_or_default(),
    };
    shown(value)
}

/// The character of an HTML entity's name (`amp`, `#36`, `#x24`), for those Telegram knows.
fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// UTF-16 code units of a text: how Telegram measures it.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The byte ranges of `rich.text` that become parts.
fn split(rich: &Rich) -> Vec<Range<usize>> {
    let text = rich.text.as_str();
    let links = rich.links();
    let offset = |part: &str| part.as_ptr() as usize - text.as_ptr() as usize;
    let mut ranges = Vec::new();
    for part in text::parts(text, MAX_MESSAGE_CHARS, 0, |w: &Window<'_>| {
        choose(w, offset(w.rest), &links, MAX_MESSAGE_CHARS)
    }) {
        let start = offset(part);
        if utf16_len(part) <= MAX_MESSAGE_CHARS {
            ranges.push(start..start + part.len());
            continue;
        }
        // Characters outside the Basic Multilingual Plane count twice: half the limit in
        // characters always fits.
        let half = MAX_MESSAGE_CHARS / 2;
        for piece in text::parts(part, half, 0, |w: &Window<'_>| {
            choose(w, offset(w.rest), &links, MAX_MESSAGE_CHARS)
        }) {
            let start = offset(piece);
            ranges.push(start..start + piece.len());
        }
    }
    ranges
}

/// Where a part ends: among the breaks that keep it within `max_units` UTF-16 code units and
/// do not cut a link, the latest of the most natural kind that leaves the part at least half
/// full (see [`text::greedy`]); [`text::greedy`]'s choice when there is none.
fn choose(window: &Window<'_>, base: usize, links: &[Range<usize>], max_units: usize) -> usize {
    let mut units = 0;
    let mut counted = 0;
    let mut best: Option<(bool, BreakKind, usize)> = None;
    for (index, cut) in window.breaks.iter().enumerate() {
        units += utf16_len(&window.rest[counted..cut.end]);
        counted = cut.end;
        if units > max_units {
            break;
        }
        let at = base + cut.end;
        if links.iter().any(|link| link.start < at && at < link.end) {
            continue;
        }
        let full = cut.chars * 2 >= window.max_chars;
        let candidate = (full, cut.kind, index);
        if best.is_none_or(|b| (b.0, b.1) <= (full, cut.kind)) {
            best = Some(candidate);
        }
    }
    best.map_or_else(|| text::greedy(window), |(_, _, index)| index)
}

/// What a Markdown style or link opened, so that its end closes the same.
enum Opened<'a> {
    /// A style (or nothing, when the style was already in effect).
    Style(bool),
    /// A link: where its text starts, its target, and whether it became an `<a>`.
    Link {
        start: usize,
        url: CowStr<'a>,
        styled: bool,
    },
}

/// The [`Styler`] that records [`Rich`] text's styles over [`text::markdown_to_plain`]'s
/// layout, where plain text drops them.
#[derive(Default)]
struct Marks<'a> {
    marks: Vec<(usize, Mark)>,
    opened: Vec<Opened<'a>>,
    /// Styles whose start comes with the next text (so a tag never wraps a separator).
    waiting: Vec<Style>,
    /// The styles in effect, innermost last, including `waiting`.
    active: Vec<Style>,
}

type Writer<'a> = MarkdownWriter<'a, Marks<'a>>;

fn render_rich(markdown: &str) -> Rich {
    let (text, marks) = text::render_markdown(markdown, Marks::default());
    Rich {
        text,
        marks: marks.marks,
    }
}

/// Whether a link target can be an `<a href>`: Telegram takes web and `tg://` links.
fn linkable(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("tg://")
}

/// A fence's language, when it is a plain word Telegram can take as a class name.
fn language(info: &str) -> Option<String> {
    let word = info.split_whitespace().next()?;
    let ok = word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-#_.".contains(c));
    ok.then(|| word.to_string())
}

impl Marks<'_> {
    fn in_link(&self) -> bool {
        self.active.iter().any(|s| matches!(s, Style::Link(_)))
    }

    fn in_code(&self) -> bool {
        self.active
            .iter()
            .any(|s| matches!(s, Style::Code | Style::Pre(_)))
    }

    /// Starts `style` with the next text, unless `allowed` is false or it is in effect already
    /// (Telegram refuses a quote in a quote, and a bold in a bold says nothing more).
    fn open_style(&mut self, style: Style, allowed: bool) -> bool {
        let redundant = self.active.contains(&style)
            || (matches!(style, Style::Quote) && self.active.contains(&Style::Quote))
            || self.in_code();
        if !allowed || redundant {
            return false;
        }
        self.active.push(style.clone());
        self.waiting.push(style);
        true
    }

    fn close_style(writer: &mut Writer<'_>, styled: bool) {
        if !styled {
            return;
        }
        let at = writer.out().trim_end().len();
        let marks = writer.styler_mut();
        marks.active.pop();
        if marks.waiting.pop().is_some() {
            // It never started: no text came.
            return;
        }
        let at = at.max(marks.marks.last().map_or(0, |(pos, _)| *pos));
        marks.marks.push((at, Mark::Close));
    }

    fn pop_opened(writer: &mut Writer<'_>) {
        match writer.styler_mut().opened.pop() {
            Some(Opened::Style(styled) | Opened::Link { styled, .. }) => {
                Self::close_style(writer, styled);
            }
            None => {}
        }
    }
}

impl<'a> Styler<'a> for Marks<'a> {
    const BULLET: &'static str = "• ";
    /// A quote is a `<blockquote>`.
    const QUOTE_PREFIX: &'static str = "";
    const TRIM_CR: bool = true;

    fn open(writer: &mut Writer<'a>, style: text::Style<'a>) {
        let marks = writer.styler_mut();
        let styled = match style {
            text::Style::Emphasis => marks.open_style(Style::Italic, true),
            text::Style::Strong | text::Style::Heading => marks.open_style(Style::Bold, true),
            text::Style::Strikethrough => marks.open_style(Style::Strike, true),
            // Telegram does not nest code in a link, nor anything in code.
            text::Style::Code => {
                let allowed = !marks.in_link();
                marks.open_style(Style::Code, allowed)
            }
            text::Style::CodeBlock(info) => marks.open_style(Style::Pre(language(&info)), true),
            text::Style::Quote => marks.open_style(Style::Quote, true),
        };
        marks.opened.push(Opened::Style(styled));
    }

    fn close(writer: &mut Writer<'a>) {
        Self::pop_opened(writer);
    }

    fn open_link(writer: &mut Writer<'a>, url: CowStr<'a>) {
        let start = writer.out().len();
        let marks = writer.styler_mut();
        let allowed = linkable(&url) && !marks.in_link();
        let styled = marks.open_style(Style::Link(url.to_string()), allowed);
        marks.opened.push(Opened::Link { start, url, styled });
    }

    /// Ends a link: its target follows as ` (url)`, hidden in HTML where the link carries it,
    /// shown where it could not be a link; an empty link shows its target.
    fn close_link(writer: &mut Writer<'a>) {
        let Some(Opened::Link { start, url, styled }) = writer.styler_mut().opened.pop() else {
            // Unbalanced events cannot come from the parser; keep the stack as it was.
            return;
        };
        let label = writer
            .out()
            .get(start..)
            .unwrap_or_default()
            .trim()
            .to_string();
        Self::close_style(writer, styled);
        if url.is_empty() {
            return;
        }
        let bare = url.strip_prefix("mailto:").unwrap_or(&url);
        if label.is_empty() {
            writer.text(&url);
        } else if label != *url && label != bare {
            if styled {
                let at = writer.out().len();
                writer
                    .styler_mut()
                    .marks
                    .push((at, Mark::Open(Style::Hidden)));
                writer.push_raw(" (");
                writer.push_raw(&url);
                writer.push_raw(")");
                let at = writer.out().len();
                writer.styler_mut().marks.push((at, Mark::Close));
            } else {
                writer.text(" (");
                writer.text(&url);
                writer.text(")");
            }
        }
    }

    /// Starts the styles waiting for text.
    fn text_starts(&mut self, at: usize) {
        for style in self.waiting.drain(..) {
            self.marks.push((at, Mark::Open(style)));
        }
    }

    fn truncated(&mut self, len: usize) {
        for (at, _) in self.marks.iter_mut().rev() {
            if *at <= len {
                break;
            }
            *at = len;
        }
    }

    fn finish(writer: &mut Writer<'a>) {
        while !writer.styler().opened.is_empty() {
            Self::pop_opened(writer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(markdown: &str) -> Vec<String> {
        format(markdown).into_iter().map(|p| p.body).collect()
    }

    #[test]
    fn markdown_becomes_telegram_html() {
        assert_eq!(
            bodies("# Plan\n\nSome *it* and ~~old~~ and **bold _both_**."),
            ["<b>Plan</b>\n\nSome <i>it</i> and <s>old</s> and <b>bold <i>both</i></b>."]
        );
        assert_eq!(
            bodies("```rust\nfn main() {}\n```"),
            ["<pre><code class=\"language-rust\">fn main() {}</code></pre>"]
        );
        assert_eq!(
            bodies("> quoted **line**\n> more"),
            ["<blockquote>quoted <b>line</b>\nmore</blockquote>"]
        );
        assert_eq!(bodies("- one\n- two\n  1. sub"), ["• one\n• two\n  1. sub"]);
        assert_eq!(bodies("a < b && c > d"), ["a &lt; b &amp;&amp; c &gt; d"]);
        assert_eq!(
            bodies("[x](https://e.com/?a=1&b=\"2\")"),
            ["<a href=\"https://e.com/?a=1&amp;b=&quot;2&quot;\">x</a>"]
        );
    }

    #[test]
    fn links_telegram_cannot_carry_show_their_target() {
        assert_eq!(
            bodies("[write](mailto:a@example.com) or <https://e.com>"),
            ["write (mailto:a@example.com) or <a href=\"https://e.com\">https://e.com</a>"]
        );
        assert_eq!(bodies("[](https://e.com)"), ["https://e.com"]);
        // Code inside a link stays plain: Telegram does not nest entities in code.
        assert_eq!(
            bodies("[`cargo`](https://doc.rust-lang.org/cargo)"),
            ["<a href=\"https://doc.rust-lang.org/cargo\">cargo</a>"]
        );
    }

    #[test]
    fn shown_reads_parts_back_as_plain_text() {
        let html = "<b>Hi</b> &amp; <a href=\"https://e.com/?a=1&amp;b=2\">docs</a> &#36;&#x24; &unknown; <code>&lt;x&gt;</code>";
        assert_eq!(
            shown(html),
            "Hi & docs (https://e.com/?a=1&b=2) $$ &unknown; <x>"
        );
        assert_eq!(
            shown("<a href=\"https://e.com\">https://e.com</a>"),
            "https://e.com"
        );
    }

    #[test]
    fn every_part_is_valid_on_its_own() {
        let code: String = (0..400)
            .map(|i| format!("let value_{i} = compute({i}); // step {i}\n"))
            .collect();
        let markdown = format!(
            "**Intro** text.\n\n```rust\n{code}```\n\n> {}",
            "quoted words ".repeat(500)
        );
        let parts = bodies(&markdown);
        assert!(parts.len() >= 4, "{}", parts.len());
        for part in &parts {
            let visible = shown(part);
            assert!(
                utf16_len(&visible) <= MAX_MESSAGE_CHARS,
                "{}",
                utf16_len(&visible)
            );
            let opens = part.matches("<pre>").count();
            assert_eq!(opens, part.matches("</pre>").count(), "{part}");
            assert_eq!(
                part.matches("<blockquote>").count(),
                part.matches("</blockquote>").count()
            );
        }
        assert!(parts[1].starts_with("<pre><code class=\"language-rust\">let value_"));
        assert!(parts.last().unwrap().starts_with("<blockquote>"));
    }

    #[test]
    fn characters_outside_the_bmp_count_twice() {
        let flags = "🇺🇸🇯🇵🇩🇪".repeat(1000);
        let parts = bodies(&flags);
        assert!(parts.len() >= 3);
        for part in &parts {
            assert!(utf16_len(part) <= MAX_MESSAGE_CHARS);
        }
        assert_eq!(parts.concat(), flags);
    }

    #[test]
    fn links_are_not_cut() {
        let filler = "word ".repeat(800);
        let markdown = format!(
            "{filler}[a link with a long label that sits across the limit](https://example.com/x) {filler}"
        );
        for part in bodies(&markdown) {
            assert_eq!(part.matches("<a ").count(), part.matches("</a>").count());
            if part.contains("<a ") {
                assert!(part.contains(">a link with a long label that sits across the limit</a>"));
            }
        }
    }

    #[test]
    fn carriage_returns_ending_lines_are_dropped() {
        // `&#13;` is a `\r` of its own; plain text keeps it, Telegram's lines drop it.
        assert_eq!(bodies("a&#13;b"), ["ab"]);
        assert_eq!(text::markdown_to_plain("a&#13;b"), "a\rb");
    }

    fn file(name: &str, content_type: &str, send_as: SendAs, size: u64) -> PartMedia {
        PartMedia {
            token: format!("t-{name}"),
            name: name.to_string(),
            content_type: content_type.to_string(),
            size,
            send_as,
            bytes: None,
            url: None,
        }
    }

    #[test]
    fn a_reply_that_fits_in_a_caption_rides_on_the_first_file() {
        let media = vec![
            file("a.png", "image/png", SendAs::Photo, 10),
            file("b.pdf", "application/pdf", SendAs::Document, 10),
        ];
        let out = format_media("**Two** files.", media.clone());
        assert_eq!(out.parts.len(), 2);
        assert_eq!(out.parts[0].body, "<b>Two</b> files.");
        assert_eq!(out.parts[0].media, media[..1]);
        assert_eq!(
            (out.parts[1].body.as_str(), &out.parts[1].media[..]),
            ("", &media[1..])
        );

        // Exactly 1,024 characters fit; one more, and the text goes on its own.
        let fits = "x".repeat(MAX_CAPTION_CHARS);
        assert_eq!(format_media(&fits, media[..1].to_vec()).parts.len(), 1);
        let over = "x".repeat(MAX_CAPTION_CHARS + 1);
        let out = format_media(&over, media[..1].to_vec());
        assert_eq!(out.parts.len(), 2);
        assert!(out.parts[0].media.is_empty());
        assert_eq!(out.parts[1].media, media[..1]);

        // A link's target counts: the plain-text fallback shows it.
        let link = format!(
            "[{}](https://example.com/{})",
            "y".repeat(1000),
            "z".repeat(30)
        );
        assert_eq!(format_media(&link, media[..1].to_vec()).parts.len(), 2);
    }

    #[test]
    fn files_alone_and_pictures_telegram_would_not_take_as_photos() {
        let out = format_media(
            " ",
            vec![
                file("big.jpg", "image/jpeg", SendAs::Photo, MAX_PHOTO_BYTES + 1),
                file("icon.svg", "image/svg+xml", SendAs::Photo, 100),
                file("ok.jpg", "image/jpeg", SendAs::Photo, MAX_PHOTO_BYTES),
            ],
        );
        let how: Vec<SendAs> = out.parts.iter().map(|p| p.media[0].send_as).collect();
        assert_eq!(how, [SendAs::Document, SendAs::Document, SendAs::Photo]);
        assert!(
            out.parts
                .iter()
                .all(|p| p.body.is_empty() && p.media.len() == 1)
        );
        assert!(format_media("", Vec::new()).parts.is_empty());
    }

    #[test]
    fn nothing_gives_no_parts() {
        assert!(format("").is_empty());
        assert!(format(" \n\t ").is_empty());
    }
}
