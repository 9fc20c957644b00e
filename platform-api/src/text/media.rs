//! The media an agent's reply asks for, following Hermes Agent's conventions.
//!
//! Hermes writes `MEDIA:<path>` anywhere in a line (optionally quoted with `` ` ``, `"` or `'`,
//! spaces allowed after the colon, the tag matched in any case) and two flags for the whole reply,
//! `[[as_document]]` and `[[audio_as_voice]]`. Like Hermes, a tag inside a code block, an inline
//! code span or a block quote is an example, not a request, and stays in the text; so is one in a
//! link, where it is part of an address. Flags there are examples too (Hermes honours them
//! anywhere, but a reply explaining the flags in code must not trigger them). Markdown images with an http(s) URL are media too.
//! [`extract_media`] finds them all and returns the text left to send.

use std::ops::Range;
use std::path::PathBuf;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// An agent's reply split into the text to send and the media it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaReply {
    /// The reply with its media tags, images and flags removed.
    pub text: String,
    /// The media, in the order the reply names them.
    pub media: Vec<MediaRef>,
    /// `[[as_document]]`: send every file as a document rather than a photo or video.
    pub as_document: bool,
    /// `[[audio_as_voice]]`: send audio as a voice note.
    pub audio_as_voice: bool,
}

/// One file or image the reply asks to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Where the bytes come from.
    pub source: MediaSource,
    /// The image's alt text, usable as a caption; `None` for a `MEDIA:` tag or an empty alt.
    pub alt: Option<String>,
}

/// Where a media reference points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// An absolute path on the agent's machine, as written; the host checks it against
    /// `HERMES_MEDIA_DIRS` before reading it.
    Path(PathBuf),
    /// An http(s) URL from a Markdown image.
    Url(String),
}

/// Extensions Hermes delivers (`MEDIA_DELIVERY_EXTS`): an unquoted path may contain spaces
/// when it ends in one of them, as `/tmp/my chart.png` does.
const DELIVERY_EXTS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "bmp", "tiff", "svg", "mp4", "mov", "avi", "mkv", "webm",
    "mp3", "wav", "ogg", "opus", "m4a", "flac", "pdf", "docx", "doc", "odt", "rtf", "txt", "md",
    "epub", "xlsx", "xls", "ods", "csv", "tsv", "json", "xml", "yaml", "yml", "pptx", "ppt", "odp",
    "key", "zip", "tar", "gz", "tgz", "bz2", "xz", "7z", "rar", "apk", "ipa", "html", "htm",
];

/// Characters that may follow a path's extension, as in Hermes's lookahead.
const AFTER_EXT: &[char] = &['`', '"', '\'', ',', ';', ':', ')', ']', '}'];

/// Characters Hermes trims from the end of a path: punctuation of the sentence around it.
const TRAILING_PUNCTUATION: &[char] = &['`', '"', '\'', ',', '.', ';', ':', ')', '}', ']'];

/// Linux's limit on a path's length, its closing NUL included: no tag's path is read beyond it,
/// which also keeps a long line full of tags from being scanned to its end once per tag.
const PATH_MAX: usize = 4096;

const TAG: &str = "MEDIA:";
const AS_DOCUMENT: &str = "[[as_document]]";
const AUDIO_AS_VOICE: &str = "[[audio_as_voice]]";

/// Splits an agent's Markdown reply into the text to send and the media it asks for.
///
/// An unquoted path runs, spaces included, to the first extension Hermes delivers that ends a
/// word (`MEDIA:/tmp/my chart.png`), or else to the first space; sentence punctuation after it
/// is not part of it. A path that would run past [`PATH_MAX`] bytes is not one.
///
/// A `MEDIA:` tag counts only with an absolute path (`/…`); a relative, `~` or Windows path is
/// not one on the host and stays in the text. An image's alt text leaves the text with the
/// image and travels as [`MediaRef::alt`]: the picture arrives next to the text, so repeating
/// its description there would say it twice. Lines left blank by a removal go, and so does the
/// blank line that would otherwise double up around them. A reply without tags, images or
/// flags comes back unchanged.
///
/// ```
/// use platform_api::text::{MediaSource, extract_media};
///
/// let reply = extract_media("Here is the chart.\n\nMEDIA:/srv/media/chart.png\n[[as_document]]");
/// assert_eq!(reply.text, "Here is the chart.");
/// assert_eq!(reply.media[0].source, MediaSource::Path("/srv/media/chart.png".into()));
/// assert!(reply.as_document);
/// ```
pub fn extract_media(reply: &str) -> MediaReply {
    let Scan { protected, images } = scan_markdown(reply);
    let mut found = images;
    let mut as_document = false;
    let mut audio_as_voice = false;
    for (flag, seen) in [
        (AS_DOCUMENT, &mut as_document),
        (AUDIO_AS_VOICE, &mut audio_as_voice),
    ] {
        for (start, _) in reply.match_indices(flag) {
            let range = start..start + flag.len();
            if !overlaps(&protected, &range) {
                *seen = true;
                found.push(Found { range, media: None });
            }
        }
    }
    found.extend(media_tags(reply, &protected));
    found.sort_by_key(|f| f.range.start);

    let mut kept: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        if kept
            .last()
            .is_none_or(|last| last.range.end <= f.range.start)
        {
            kept.push(f);
        }
    }
    if kept.is_empty() {
        return MediaReply {
            text: reply.to_owned(),
            ..MediaReply::default()
        };
    }
    let text = remove(reply, kept.iter().map(|f| f.range.clone()));
    MediaReply {
        text,
        media: kept.into_iter().filter_map(|f| f.media).collect(),
        as_document,
        audio_as_voice,
    }
}

/// Something to remove from the reply, and the media it names, if any (a flag names none).
struct Found {
    range: Range<usize>,
    media: Option<MediaRef>,
}

/// What the Markdown parser tells about the reply: where tags are examples, and its images.
struct Scan {
    protected: Vec<Range<usize>>,
    images: Vec<Found>,
}

fn scan_markdown(reply: &str) -> Scan {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut protected = Vec::new();
    let mut images = Vec::new();
    let mut image: Option<(Range<usize>, String, String)> = None;
    for (event, range) in Parser::new_ext(reply, options).into_offset_iter() {
        match event {
            Event::Text(text) | Event::Code(text) if image.is_some() => {
                if let Some((_, _, alt)) = image.as_mut() {
                    alt.push_str(&text);
                }
            }
            Event::Code(_)
            | Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::Link { .. }) => {
                protected.push(range);
            }
            Event::Start(Tag::Image { dest_url, .. }) if image.is_none() => {
                image = Some((range, dest_url.into_string(), String::new()));
            }
            Event::End(TagEnd::Image) => {
                if let Some((range, url, alt)) = image.take()
                    && is_http(&url)
                {
                    let alt = alt.trim();
                    images.push(Found {
                        range,
                        media: Some(MediaRef {
                            source: MediaSource::Url(url),
                            alt: (!alt.is_empty()).then(|| alt.to_owned()),
                        }),
                    });
                }
            }
            _ => {}
        }
    }
    images.retain(|f| !overlaps(&protected, &f.range));
    Scan { protected, images }
}

fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn overlaps(ranges: &[Range<usize>], range: &Range<usize>) -> bool {
    ranges
        .iter()
        .any(|r| r.start < range.end && range.start < r.end)
}

fn inside(ranges: &[Range<usize>], at: usize) -> bool {
    ranges.iter().any(|r| r.contains(&at))
}

/// Every `MEDIA:` tag outside code and quotes that names an absolute path.
fn media_tags(reply: &str, protected: &[Range<usize>]) -> Vec<Found> {
    let upper = reply.to_ascii_uppercase();
    let mut found = Vec::new();
    for (at, _) in upper.match_indices(TAG) {
        if inside(protected, at) {
            continue;
        }
        let after = at + TAG.len();
        let line_end = reply[after..].find('\n').map_or(reply.len(), |i| after + i);
        let mut read_end = line_end.min(after + PATH_MAX);
        while !reply.is_char_boundary(read_end) {
            read_end -= 1;
        }
        let Some((path, end)) = tag_path(&reply[after..read_end]) else {
            continue;
        };
        let cut_short = read_end < line_end && after + end == read_end;
        if !path.starts_with('/') || cut_short {
            continue;
        }
        let mut start = at;
        let before = reply[..at].chars().next_back();
        if let Some(quote @ ('`' | '"' | '\'')) = before
            && !inside(protected, at - quote.len_utf8())
        {
            start -= quote.len_utf8();
        }
        found.push(Found {
            range: start..after + end,
            media: Some(MediaRef {
                source: MediaSource::Path(PathBuf::from(path)),
                alt: None,
            }),
        });
    }
    found
}

/// The path after `MEDIA:` in `rest` (the tag's line) and where the tag ends in `rest`.
fn tag_path(rest: &str) -> Option<(&str, usize)> {
    let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let body = &rest[skipped..];
    let first = body.chars().next()?;
    if matches!(first, '`' | '"' | '\'') {
        let close = body[1..].find(first)?;
        let path = body[1..1 + close].trim();
        return (!path.is_empty()).then_some((path, skipped + close + 2));
    }
    let raw = unquoted_path(body);
    let path = raw.trim_end_matches(TRAILING_PUNCTUATION);
    let closing = usize::from(body[path.len()..].starts_with(['`', '"', '\'']));
    (!path.is_empty()).then_some((path, skipped + path.len() + closing))
}

/// An unquoted path: up to the first known extension that ends a word, spaces included, or else
/// the first word.
fn unquoted_path(body: &str) -> &str {
    for (dot, _) in body.match_indices('.') {
        let ext_start = dot + 1;
        let after = &body[ext_start..];
        let ext_len = after
            .find(|c: char| c.is_whitespace() || AFTER_EXT.contains(&c))
            .unwrap_or(after.len());
        let ext = &after[..ext_len];
        if dot > 0 && DELIVERY_EXTS.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
            let path = &body[..ext_start + ext_len];
            if !path.starts_with(char::is_whitespace) {
                return path;
            }
        }
    }
    let end = body
        .find(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\''))
        .unwrap_or(body.len());
    &body[..end]
}

/// `reply` without `ranges` (sorted, disjoint), tidied where they were: no doubled spaces, no
/// space before punctuation, no lines left blank, no doubled blank lines, no blank start or
/// whitespace at the end.
fn remove(reply: &str, ranges: impl Iterator<Item = Range<usize>>) -> String {
    let mut out = String::with_capacity(reply.len());
    let mut touched = Vec::new();
    let mut cursor = 0;
    for range in ranges {
        let range = range.start.max(cursor)..range.end.max(cursor);
        out.push_str(&reply[cursor..range.start]);
        cursor = range.end;
        let next = reply[cursor..].chars().next();
        if next.is_none_or(|c| {
            matches!(
                c,
                ' ' | '\t' | '\n' | '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}'
            )
        }) {
            out.truncate(out.trim_end_matches([' ', '\t']).len());
        }
        if out.is_empty() || out.ends_with('\n') {
            cursor = reply.len() - reply[cursor..].trim_start_matches([' ', '\t']).len();
        }
        touched.push(out.len());
    }
    out.push_str(&reply[cursor..]);

    let mut text = String::with_capacity(out.len());
    let mut last_blank = true;
    let mut dropped = false;
    let mut start = 0;
    let mut marks = touched.into_iter().peekable();
    for line in out.split_inclusive('\n') {
        let end = start + line.len();
        let mut was_touched = false;
        while marks
            .next_if(|&m| m < end || (m == end && !line.ends_with('\n')))
            .is_some()
        {
            was_touched = true;
        }
        start = end;
        let blank = line.trim().is_empty();
        if blank && (was_touched || text.is_empty() || (last_blank && dropped)) {
            dropped = true;
            continue;
        }
        text.push_str(line);
        if !blank {
            dropped = false;
        }
        last_blank = blank;
    }
    text.truncate(text.trim_end().len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prose::prose;
    use proptest::prelude::*;

    fn path(p: &str) -> MediaRef {
        MediaRef {
            source: MediaSource::Path(PathBuf::from(p)),
            alt: None,
        }
    }

    fn url(u: &str, alt: Option<&str>) -> MediaRef {
        MediaRef {
            source: MediaSource::Url(u.to_owned()),
            alt: alt.map(str::to_owned),
        }
    }

    /// Extracts `reply`, checks its text and media, and returns it for its flags.
    fn assert_reply(reply: &str, text: &str, media: &[MediaRef]) -> MediaReply {
        let got = extract_media(reply);
        assert_eq!(got.text, text, "{reply}");
        assert_eq!(got.media, media, "{reply}");
        got
    }

    /// `reply` names no media: it comes back as it is, without media or flags.
    fn assert_untouched(reply: &str) {
        let got = extract_media(reply);
        assert_eq!(got.text, reply);
        assert!(got.media.is_empty(), "{reply}");
        assert!(!got.as_document && !got.audio_as_voice, "{reply}");
    }

    #[test]
    fn media_tags_are_read_and_removed() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("alone", "MEDIA:/srv/a.png", "", &["/srv/a.png"]),
            (
                "after text",
                "Here it is.\n\nMEDIA:/srv/a.png",
                "Here it is.",
                &["/srv/a.png"],
            ),
            (
                "between paragraphs",
                "One.\n\nMEDIA:/srv/a.png\n\nTwo.",
                "One.\n\nTwo.",
                &["/srv/a.png"],
            ),
            (
                "in a sentence",
                "The chart MEDIA:/srv/a.png shows it.",
                "The chart shows it.",
                &["/srv/a.png"],
            ),
            (
                "end of a sentence",
                "The chart: MEDIA:/srv/a.png",
                "The chart:",
                &["/srv/a.png"],
            ),
            (
                "space after the colon",
                "MEDIA:   /srv/a.png",
                "",
                &["/srv/a.png"],
            ),
            ("lower case", "media:/srv/a.png", "", &["/srv/a.png"]),
            (
                "path with spaces",
                "MEDIA:/srv/my chart.png\nDone.",
                "Done.",
                &["/srv/my chart.png"],
            ),
            (
                "double quotes",
                "MEDIA:\"/srv/my chart.png\" done",
                "done",
                &["/srv/my chart.png"],
            ),
            (
                "single quotes",
                "MEDIA:'/srv/x y/z.pdf'",
                "",
                &["/srv/x y/z.pdf"],
            ),
            (
                "backticked path",
                "MEDIA: `/srv/my chart.png`",
                "",
                &["/srv/my chart.png"],
            ),
            (
                "quoted tag",
                "Sent \"MEDIA:/srv/a.png\" now",
                "Sent now",
                &["/srv/a.png"],
            ),
            (
                "no extension",
                "MEDIA:/srv/Makefile\nok",
                "ok",
                &["/srv/Makefile"],
            ),
            (
                "unknown extension stops at the space",
                "MEDIA:/srv/run.log is attached",
                "is attached",
                &["/srv/run.log"],
            ),
            (
                "trailing punctuation stays in the text",
                "(see MEDIA:/srv/a.png).",
                "(see).",
                &["/srv/a.png"],
            ),
            (
                "two on one line",
                "MEDIA:/srv/a.png, MEDIA:/srv/b.jpg",
                ",",
                &["/srv/a.png", "/srv/b.jpg"],
            ),
            (
                "several in order",
                "First:\nMEDIA:/srv/1.png\nMEDIA:/srv/2.ogg\nThen:\nMEDIA:/srv/3.pdf\nBye.",
                "First:\nThen:\nBye.",
                &["/srv/1.png", "/srv/2.ogg", "/srv/3.pdf"],
            ),
            (
                "unicode",
                "Voilà 🎉\n\nMEDIA:/srv/médias/日本 写真.jpg\n\nÀ bientôt.",
                "Voilà 🎉\n\nÀ bientôt.",
                &["/srv/médias/日本 写真.jpg"],
            ),
            (
                "odd whitespace",
                "\n\n  MEDIA:\t/srv/a.png  \r\n\n\nText\t\n\n",
                "Text",
                &["/srv/a.png"],
            ),
        ];
        for (name, reply, text, paths) in cases {
            let got = extract_media(reply);
            assert_eq!(got.text, *text, "{name}");
            let want: Vec<MediaRef> = paths.iter().map(|p| path(p)).collect();
            assert_eq!(got.media, want, "{name}");
            assert!(!got.as_document && !got.audio_as_voice, "{name}");
        }
    }

    #[test]
    fn paths_that_are_not_absolute_stay_text() {
        for reply in [
            "MEDIA:chart.png",
            "MEDIA:./out/chart.png",
            "MEDIA:~/chart.png",
            "MEDIA:C:\\Users\\me\\chart.png",
            "MEDIA:C:/Users/me/chart.png",
            "MEDIA:\"relative dir/a.png\"",
            "MEDIA:",
            "MEDIA:   ",
            "MEDIA:\n/srv/a.png",
            "social media: none",
        ] {
            assert_untouched(reply);
        }
    }

    #[test]
    fn examples_in_code_and_quotes_stay() {
        for reply in [
            "Write `MEDIA:/srv/a.png` on its own line.",
            "```\nMEDIA:/srv/a.png\n[[as_document]]\n```",
            "~~~md\n![x](https://example.com/x.png)\n~~~",
            "    MEDIA:/srv/a.png indented code",
            "> MEDIA:/srv/a.png\n> [[audio_as_voice]]",
            "Use `![x](https://example.com/x.png)` for images.",
            "`[[as_document]]` sends files as documents.",
            "[the file](https://example.com/MEDIA:/srv/a.png)",
            "[![badge](https://e.com/b.svg)](https://e.com)",
            "MEDIA:\"/srv/unterminated.png",
        ] {
            assert_untouched(reply);
        }
        assert_reply(
            "```\nMEDIA:/srv/example.png\n```\n\nMEDIA:/srv/real.png",
            "```\nMEDIA:/srv/example.png\n```",
            &[path("/srv/real.png")],
        );

        assert_reply(
            "Run `make`MEDIA:/srv/out.pdf",
            "Run `make`",
            &[path("/srv/out.pdf")],
        );
    }

    #[test]
    fn images_with_web_urls_are_media() {
        assert_reply(
            "Two cats:\n\n![A cat](https://example.com/cat.jpg)\n\n![](HTTP://example.com/b.png)",
            "Two cats:",
            &[
                url("https://example.com/cat.jpg", Some("A cat")),
                url("HTTP://example.com/b.png", None),
            ],
        );

        assert_reply(
            "Look ![a *big* `dog`](https://e.com/d.png \"Rex\") there.",
            "Look there.",
            &[url("https://e.com/d.png", Some("a big dog"))],
        );

        for reply in [
            "![local](images/a.png)",
            "![data](data:image/png;base64,AAAA)",
            "![ftp](ftp://example.com/a.png)",
            "[not an image](https://example.com/a.png)",
        ] {
            assert_untouched(reply);
        }
    }

    #[test]
    fn images_and_tags_keep_their_order() {
        assert_reply(
            "![one](https://e.com/1.png)\nMEDIA:/srv/2.png\n![three](https://e.com/3.png)",
            "",
            &[
                url("https://e.com/1.png", Some("one")),
                path("/srv/2.png"),
                url("https://e.com/3.png", Some("three")),
            ],
        );
    }

    #[test]
    fn flags_apply_to_the_whole_reply() {
        let got = extract_media("[[audio_as_voice]]\nMEDIA:/srv/say.ogg");
        assert_eq!(got.text, "");
        assert!(got.audio_as_voice && !got.as_document);
        assert_eq!(got.media, [path("/srv/say.ogg")]);

        let got = extract_media("Full size: [[as_document]] MEDIA:/srv/a.png and the rest.");
        assert_eq!(got.text, "Full size: and the rest.");
        assert!(got.as_document && !got.audio_as_voice);

        let got = extract_media("Just a flag.\n\n[[as_document]]\n\n[[audio_as_voice]]");
        assert_eq!(got.text, "Just a flag.");
        assert!(got.as_document && got.audio_as_voice);
        assert!(got.media.is_empty());
    }

    #[test]
    fn a_path_longer_than_path_max_is_not_one() {
        let longest = format!("/srv/{}.png", "a".repeat(PATH_MAX - 10));
        assert_reply(&format!("MEDIA:{longest} ok"), "ok", &[path(&longest)]);
        for name in ["a".repeat(PATH_MAX), "é".repeat(PATH_MAX / 2)] {
            assert_untouched(&format!("MEDIA:/srv/{name}.png"));
            assert_untouched(&format!("MEDIA:/srv/{name}"));
        }
    }

    #[test]
    fn long_replies_keep_everything_else() {
        let paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(40);
        let mut reply = String::new();
        let mut want_text = Vec::new();
        let mut want_media = Vec::new();
        for i in 0..200 {
            reply.push_str(&format!("{paragraph}{i}\n\nMEDIA:/srv/media/{i}.png\n\n"));
            want_text.push(format!("{paragraph}{i}"));
            want_media.push(path(&format!("/srv/media/{i}.png")));
        }
        let got = extract_media(&reply);
        assert_eq!(got.text, want_text.join("\n\n"));
        assert_eq!(got.media, want_media);
    }

    /// Replies made of the pieces tags, quotes, code and images are built from, in any order.
    fn tangled() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "MEDIA:",
            "media:",
            "/srv/",
            "my ",
            "a.png",
            ".PDF",
            "é",
            "日本",
            " ",
            "\t",
            "\n",
            "\n\n",
            "\r\n",
            "`",
            "```\n",
            "\"",
            "'",
            "> ",
            "    ",
            "[[as_document]]",
            "[[audio_as_voice]]",
            "![cat](https://e.com/c.png)",
            "](",
            ")",
            "[",
            ".",
            ",",
            "~/",
        ]);
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn tangled_replies_give_paths_they_contain(reply in tangled()) {
            let got = extract_media(&reply);
            prop_assert!(got.text.len() <= reply.len());
            for media in &got.media {
                if let MediaSource::Path(path) = &media.source {
                    let path = path.to_str().unwrap_or_default();
                    prop_assert!(path.starts_with('/') && reply.contains(path), "{path:?}");
                }
            }
            if got.media.is_empty() && !got.as_document && !got.audio_as_voice {
                prop_assert_eq!(got.text, reply);
            }
        }

        #[test]
        fn text_without_tags_is_unchanged(text in prose()) {
            let got = extract_media(&text);
            prop_assert_eq!(got.text, text);
            prop_assert!(got.media.is_empty());
        }

        #[test]
        fn a_tag_after_any_text_is_found(text in prose()) {
            let reply = format!("{text}\n\nMEDIA:/srv/a.png\n");
            let got = extract_media(&reply);
            prop_assert_eq!(got.media, vec![path("/srv/a.png")]);
            prop_assert_eq!(got.text, text.trim_end());
        }
    }
}
