//! Markdown rendered as plain text, for platforms that show text as it is (SMS).
use pulldown_cmark::CowStr;

use super::markdown::{MarkdownWriter, Styler, render_markdown};

/// Renders Markdown as plain text: markup removed, structure kept as lines.
///
/// Emphasis, strikethrough and heading marks disappear; list items stay as `- item` or `1. item`
/// lines, nested lists indented by two spaces; code keeps its content without fences or
/// backticks; links become `text (url)` unless the text already is the URL; images become
/// `alt (url)`; quoted lines start with `> `; table cells are separated by ` | `; raw HTML is kept
/// as text; horizontal rules only separate blocks. Paragraphs are separated by one blank line,
/// trailing spaces are dropped and the result has no leading or trailing blank lines. Any input
/// is accepted.
pub fn markdown_to_plain(md: &str) -> String {
    render_markdown(md, Plain::default()).0
}

/// [`markdown_to_plain`]'s styler: styles dropped, link targets shown as ` (url)`.
#[derive(Default)]
struct Plain<'a> {
    links: Vec<OpenLink<'a>>,
}

struct OpenLink<'a> {
    start: usize,
    url: CowStr<'a>,
}

impl<'a> Styler<'a> for Plain<'a> {
    fn open_link(writer: &mut MarkdownWriter<'a, Self>, url: CowStr<'a>) {
        let start = writer.out.len();
        writer.styler.links.push(OpenLink { start, url });
    }

    fn close_link(writer: &mut MarkdownWriter<'a, Self>) {
        let Some(link) = writer.styler.links.pop() else {
            return;
        };
        if link.url.is_empty() {
            return;
        }
        let label = writer.out[link.start..].trim();
        let url: &str = &link.url;
        let bare = url.strip_prefix("mailto:").unwrap_or(url);
        let (unlabelled, shows_url) = (label.is_empty(), label == url || label == bare);
        if unlabelled {
            writer.text(&link.url);
        } else if !shows_url {
            writer.text(" (");
            writer.text(&link.url);
            writer.text(")");
        }
    }

    #[inline]
    fn truncated(&mut self, len: usize) {
        for link in &mut self.links {
            link.start = link.start.min(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prose::non_whitespace;
    use proptest::prelude::*;
    use pulldown_cmark::{Event, Options, Parser, Tag};

    #[test]
    fn markdown_to_plain_renders_assistant_replies() {
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", ""),
            ("whitespace", "  \n\n \t \n", ""),
            (
                "emphasis",
                "This is **bold**, *italic*, ~~gone~~ and ***both***.",
                "This is bold, italic, gone and both.",
            ),
            (
                "headings",
                "# Plan\n\nFirst do this.\n\n## Details\nThen that.",
                "Plan\n\nFirst do this.\n\nDetails\n\nThen that.",
            ),
            (
                "bullets",
                "Shopping:\n\n* milk\n* eggs\n* bread",
                "Shopping:\n\n- milk\n- eggs\n- bread",
            ),
            (
                "ordered from three",
                "3. third\n4. fourth\n5. fifth",
                "3. third\n4. fourth\n5. fifth",
            ),
            (
                "nested",
                "1. Install\n   - run `cargo install`\n   - check the path\n2. Configure\n   1. copy the file\n   2. edit it",
                "1. Install\n  - run cargo install\n  - check the path\n2. Configure\n  1. copy the file\n  2. edit it",
            ),
            (
                "loose list stays compact",
                "- first item\n\n- second item\n\n  with more\n",
                "- first item\n- second item\n  with more",
            ),
            (
                "fenced code",
                "Run this:\n\n```bash\ncargo build --release\n  ./target/release/hermes\n```\n\nThen wait.",
                "Run this:\n\ncargo build --release\n  ./target/release/hermes\n\nThen wait.",
            ),
            (
                "inline code",
                "Use `git status` to check.",
                "Use git status to check.",
            ),
            (
                "link",
                "See [the guide](https://example.com/guide?x=1&y=2) for more.",
                "See the guide (https://example.com/guide?x=1&y=2) for more.",
            ),
            (
                "link whose text is the url",
                "[https://example.com](https://example.com)",
                "https://example.com",
            ),
            (
                "mail link",
                "Write to [ops@example.com](mailto:ops@example.com).",
                "Write to ops@example.com.",
            ),
            (
                "autolink",
                "Docs: <https://docs.rs/hermes>",
                "Docs: https://docs.rs/hermes",
            ),
            (
                "email autolink",
                "Mail <ops@example.com>",
                "Mail ops@example.com",
            ),
            (
                "image",
                "![A cat](https://example.com/cat.png)",
                "A cat (https://example.com/cat.png)",
            ),
            (
                "image without alt",
                "![](https://example.com/cat.png)",
                "https://example.com/cat.png",
            ),
            (
                "reference link",
                "Read [the RFC][rfc].\n\n[rfc]: https://www.rfc-editor.org/rfc/rfc9110",
                "Read the RFC (https://www.rfc-editor.org/rfc/rfc9110).",
            ),
            (
                "quote",
                "> Be careful.\n> Really.\n\nOk.",
                "> Be careful.\n> Really.\n\nOk.",
            ),
            ("nested quote has one marker", "> > deep", "> deep"),
            (
                "table",
                "| Plan | Price |\n|------|------:|\n| Basic | $5 |\n| Pro | $20 |",
                "Plan | Price\nBasic | $5\nPro | $20",
            ),
            (
                "breaks",
                "line one\nline two  \nline three",
                "line one\nline two\nline three",
            ),
            (
                "html",
                "Press <kbd>Ctrl</kbd>+C\n\n<div>block</div>",
                "Press <kbd>Ctrl</kbd>+C\n\n<div>block</div>",
            ),
            ("rule", "Above\n\n---\n\nBelow", "Above\n\nBelow"),
            ("blank lines collapse", "One\n\n\n\n\nTwo", "One\n\nTwo"),
            (
                "curly quotes and emoji pass through",
                "“Great idea!” she said — it’s done 🎉",
                "“Great idea!” she said — it’s done 🎉",
            ),
            (
                "escapes and entities",
                "5 \\* 3 &amp; 1 &lt; 2",
                "5 * 3 & 1 < 2",
            ),
        ];
        for (name, markdown, expected) in cases {
            assert_eq!(markdown_to_plain(markdown), *expected, "case {name}");
        }
    }

    #[test]
    fn markdown_to_plain_full_reply() {
        let reply = "## Your trip to Lisbon 🇵🇹\n\nHere’s a **3-day plan**:\n\n1. **Day 1** – Alfama and the *castle*\n2. **Day 2** – Belém:\n   - Jerónimos Monastery\n   - [Pastéis de Belém](https://pasteisdebelem.pt)\n3. **Day 3** – Sintra\n\n> Tip: buy a `Viva Viagem` card.\n\n```\nTotal: ~€250\n```\n\nHave fun!";
        let expected = "Your trip to Lisbon 🇵🇹\n\nHere’s a 3-day plan:\n\n1. Day 1 – Alfama and the castle\n2. Day 2 – Belém:\n  - Jerónimos Monastery\n  - Pastéis de Belém (https://pasteisdebelem.pt)\n3. Day 3 – Sintra\n\n> Tip: buy a Viva Viagem card.\n\nTotal: ~€250\n\nHave fun!";
        assert_eq!(markdown_to_plain(reply), expected);
    }

    #[test]
    fn markdown_to_plain_survives_odd_input() {
        for input in [
            "[",
            "[]()",
            "[x]()",
            "![](",
            "```",
            "> ",
            "- ",
            "1.",
            "|a|\n|-|",
            "*a **b* c**",
            "<",
            "&#0;",
            "\r\n\r\n",
            "- - - - - - - - - - - - - x\ny\nz",
            "[a](<b c>)",
        ] {
            let _ = markdown_to_plain(input);
        }
        let deep = format!("{}x", "- ".repeat(50));
        let plain = markdown_to_plain(&format!("{deep}\ny"));
        assert!(plain.len() < 200, "{plain:?}");
    }

    proptest! {
        #[test]
        fn markdown_to_plain_never_panics(text in any::<String>()) {
            let _ = markdown_to_plain(&text);
        }

        #[test]
        fn markdown_to_plain_never_panics_on_markdown_syntax(
            text in "[-*_`#>!\\[\\]()<>|~\\\\ \na-z0-9:/.]{0,200}"
        ) {
            let _ = markdown_to_plain(&text);
        }

        #[test]
        fn markdown_to_plain_keeps_every_link_url(
            blocks in prop::collection::vec(
                (
                    prop_oneof![Just(""), Just("# "), Just("- "), Just("1. "), Just("> "), Just("| a | ")],
                    "[a-z ]{0,12}",
                    prop_oneof![Just(""), Just("**"), Just("*"), Just("`"), Just("~~")],
                    "[a-zA-Z ]{0,10}",
                    prop_oneof![
                        "https://[a-z]{1,8}\\.com/[a-z0-9_.?=&%-]{0,20}",
                        "mailto:[a-z]{1,5}@[a-z]{1,5}\\.org",
                        "[a-z]{1,8}\\.html",
                    ],
                    prop_oneof![Just("link"), Just("image"), Just("auto"), Just("same")],
                ),
                1..8,
            )
        ) {
            let mut markdown = String::new();
            for (prefix, before, emphasis, label, url, shape) in &blocks {
                let link = match *shape {
                    "link" => format!("[{emphasis}{label}{emphasis}]({url})"),
                    "image" => format!("![{label}]({url})"),
                    "auto" if url.contains("://") => format!("<{url}>"),
                    _ => format!("[{url}]({url})"),
                };
                markdown.push_str(&format!("{prefix}{before} {link} tail\n\n"));
            }
            let mut options = Options::empty();
            options.insert(Options::ENABLE_TABLES);
            options.insert(Options::ENABLE_STRIKETHROUGH);
            let urls: Vec<String> = Parser::new_ext(&markdown, options)
                .filter_map(|event| match event {
                    Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                        Some(dest_url.into_string())
                    }
                    _ => None,
                })
                .collect();
            let plain = markdown_to_plain(&markdown);
            let squeezed = non_whitespace(&plain);
            for url in &urls {
                let bare = url.strip_prefix("mailto:").unwrap_or(url);
                prop_assert!(
                    squeezed.contains(&non_whitespace(bare)),
                    "{url:?} missing from {plain:?} (markdown {markdown:?})"
                );
            }
        }
    }
}
