//! Agent Markdown → WhatsApp's own markup (`*bold*`, `_italic_`, `~strike~`, `` `code` ``,
//! ```` ``` ```` blocks, `- ` lists and `> ` quotes), at most 1,600 characters a message
//! (Twilio's limit), split and numbered like SMS. WhatsApp has no headings, tables or hidden
//! links: a heading is bold, a table is laid out as lines, a link's target follows its text.
use platform_api::media::MediaLimits;
use platform_api::text::{self, MarkdownWriter, Style, Styler, render_markdown};
use platform_api::{Formatted, Part, PartMedia};
use pulldown_cmark::CowStr;

/// Twilio's limit on a WhatsApp message's body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1600;

/// What one WhatsApp message carries through Twilio: one file, of up to 16 MB.
pub const MEDIA_LIMITS: MediaLimits = MediaLimits {
    files_per_message: 1,
    bytes_per_file: 16_000_000,
    bytes_per_message: 16_000_000,
};

/// Formats a reply: WhatsApp markup, split into numbered parts of at most
/// [`MAX_MESSAGE_CHARS`] characters, each billed as one message.
pub fn format(markdown: &str) -> Vec<Part> {
    text::split_numbered(&render(markdown), MAX_MESSAGE_CHARS)
        .into_iter()
        .map(Part::plain)
        .collect()
}

/// Formats a reply with files: one file a message (the first with the text's first part),
/// a file over 16 MB named in the text instead.
pub fn format_media(markdown: &str, media: Vec<PartMedia>) -> Formatted {
    platform_api::media::attach(markdown, media, MEDIA_LIMITS, "WhatsApp", format)
}

/// Agent Markdown in WhatsApp's markup, unsplit.
pub fn render(markdown: &str) -> String {
    render_markdown(markdown, Marks::default()).0
}

/// What a style or link opened, to close it the same way.
enum Opened<'a> {
    /// A style written with this mark on both sides (empty: not marked).
    Mark(&'static str),
    /// A code block: its closing fence goes on a line of its own.
    Block,
    /// A link to this URL, whose text starts at this byte.
    Link(CowStr<'a>, usize),
}

/// The WhatsApp styler: writes each style's marks around its text.
#[derive(Default)]
struct Marks<'a> {
    opened: Vec<Opened<'a>>,
    /// Inside inline code or a code block: WhatsApp styles nothing there.
    code: usize,
}

type Writer<'a> = MarkdownWriter<'a, Marks<'a>>;

impl<'a> Styler<'a> for Marks<'a> {
    const TRIM_CR: bool = true;

    fn open(writer: &mut Writer<'a>, style: Style<'a>) {
        let in_code = writer.styler().code > 0;
        let opened = match style {
            _ if in_code => Opened::Mark(""),
            Style::Strong | Style::Heading => Opened::Mark("*"),
            Style::Emphasis => Opened::Mark("_"),
            Style::Strikethrough => Opened::Mark("~"),
            Style::Code => Opened::Mark("`"),
            Style::CodeBlock(_) => Opened::Block,
            // The writer starts every quoted line with "> ".
            Style::Quote => Opened::Mark(""),
        };
        match &opened {
            Opened::Mark("") => {}
            Opened::Mark(mark) => {
                writer.flush();
                writer.push_raw(mark);
            }
            Opened::Block => {
                writer.flush();
                writer.push_raw("```\n");
            }
            Opened::Link(..) => {}
        }
        let marks = writer.styler_mut();
        if matches!(style, Style::Code | Style::CodeBlock(_)) {
            marks.code += 1;
        }
        marks.opened.push(opened);
    }

    fn close(writer: &mut Writer<'a>) {
        match writer.styler_mut().opened.pop() {
            Some(Opened::Mark(mark)) => {
                if mark == "`" {
                    writer.styler_mut().code -= 1;
                }
                writer.push_raw(mark);
            }
            Some(Opened::Block) => {
                writer.styler_mut().code -= 1;
                if !writer.out().ends_with('\n') {
                    writer.push_raw("\n");
                }
                writer.push_raw("```");
            }
            Some(Opened::Link(..)) | None => {}
        }
    }

    fn open_link(writer: &mut Writer<'a>, url: CowStr<'a>) {
        let start = writer.out().len();
        writer.styler_mut().opened.push(Opened::Link(url, start));
    }

    /// A link's target follows its text as ` (url)`, unless the text is the target.
    fn close_link(writer: &mut Writer<'a>) {
        let Some(Opened::Link(url, start)) = writer.styler_mut().opened.pop() else {
            return;
        };
        let shown = writer.out().get(start..).unwrap_or("").trim();
        if url.is_empty() || shown == url.as_ref() {
            return;
        }
        if shown.is_empty() {
            writer.text(&url);
        } else {
            writer.push_raw(&format!(" ({url})"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_whatsapp_markup() {
        assert_eq!(
            render("# Plan\n\nThis is **bold**, *italic*, ~~gone~~ and `code`."),
            "*Plan*\n\nThis is *bold*, _italic_, ~gone~ and `code`."
        );
        assert_eq!(
            render("- one\n- **two**\n\n> quoted"),
            "- one\n- *two*\n\n> quoted"
        );
        assert_eq!(
            render("```rust\nfn main() {}\n```\n\nafter"),
            "```\nfn main() {}\n```\n\nafter"
        );
        assert_eq!(
            render("See [the docs](https://example.com/d) or <https://example.com>."),
            "See the docs (https://example.com/d) or https://example.com."
        );
        assert_eq!(render("`**not bold**`"), "`**not bold**`");
    }

    #[test]
    fn long_replies_split_into_numbered_messages_of_1600_characters() {
        let paragraph = "word ".repeat(150);
        let markdown = [paragraph.trim(); 5].join("\n\n");
        let parts = format(&markdown);
        assert!(parts.len() >= 2, "{}", parts.len());
        for (i, part) in parts.iter().enumerate() {
            assert!(part.body.chars().count() <= MAX_MESSAGE_CHARS);
            assert!(
                part.body.ends_with(&format!("({}/{})", i + 1, parts.len())),
                "{}",
                part.body
            );
            assert_eq!(part.segments, 1);
        }
    }

    #[test]
    fn one_file_a_message() {
        let file = |name: &str| PartMedia {
            token: name.to_string(),
            name: name.to_string(),
            content_type: "image/png".to_string(),
            size: 1000,
            send_as: Default::default(),
            bytes: None,
            url: None,
        };
        let formatted = format_media("Two pictures", vec![file("a.png"), file("b.png")]);
        assert_eq!(formatted.parts.len(), 2);
        assert!(formatted.parts.iter().all(|p| p.media.len() == 1));
        assert_eq!(formatted.parts[0].body, "Two pictures");
    }
}
