//! [`check_format`] and [`check_format_of`].
use std::collections::HashMap;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};
use unicode_segmentation::UnicodeSegmentation;

use super::corpus::corpus;
use super::report;
use crate::message::Part;
use crate::text;

/// What a platform's parts carry, so that [`check_format`] knows what text must survive.
#[derive(Clone, Copy, Debug)]
pub enum Rendering {
    /// The Markdown as written (platforms whose clients render Markdown).
    Markdown,
    /// [`text::markdown_to_plain`]'s rendering.
    Plain,
    /// The platform's own rendering of the whole reply, before it is split.
    Custom(fn(&str) -> String),
}

impl Rendering {
    fn render(self, markdown: &str) -> String {
        match self {
            Rendering::Markdown => markdown.to_string(),
            Rendering::Plain => text::markdown_to_plain(markdown),
            Rendering::Custom(render) => render(markdown),
        }
    }
}

/// Checks a formatter over every reply of the [`corpus`]: see [`check_format_of`].
pub fn check_format<F>(format: F, limit: usize, rendering: Rendering)
where
    F: Fn(&str) -> Vec<Part>,
{
    let mut problems = Vec::new();
    for reply in corpus() {
        for problem in format_findings(&format, limit, rendering, &reply.markdown) {
            problems.push(format!("[{}] {problem}", reply.name));
        }
    }
    report("check_format", &format!("limit {limit}"), &problems);
}

/// Checks what a formatter makes of one reply.
///
/// - no part has more than `limit` characters, or is empty, or bills 0 units;
/// - nothing is lost or added: once whitespace and the ` (i/N)` numbering (when every part
///   carries it) are ignored, the parts spell exactly the rendered reply (see [`Rendering`]),
///   and every letter of the Markdown appears in them, in order;
/// - nothing is cut in two: a word (no whitespace) of at most half the limit, a grapheme
///   cluster (an emoji sequence, a flag, a letter with its marks), and a link URL of at most
///   half the limit each lie within one part.
pub fn check_format_of<F>(format: F, limit: usize, rendering: Rendering, markdown: &str)
where
    F: Fn(&str) -> Vec<Part>,
{
    let problems = format_findings(&format, limit, rendering, markdown);
    report("check_format_of", &format!("limit {limit}"), &problems);
}

/// The non-whitespace characters of a text, each with the byte offset where it starts.
fn visible(text: &str) -> Vec<(usize, char)> {
    text.char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .collect()
}

pub(super) fn format_findings<F>(
    format: &F,
    limit: usize,
    rendering: Rendering,
    markdown: &str,
) -> Vec<String>
where
    F: Fn(&str) -> Vec<Part>,
{
    let mut problems = Vec::new();
    let parts = format(markdown);
    let count = parts.len();
    let numbered = count > 1
        && parts
            .iter()
            .enumerate()
            .all(|(i, p)| p.body.ends_with(&format!(" ({}/{count})", i + 1)));
    let mut bodies = Vec::with_capacity(count);
    for (i, part) in parts.iter().enumerate() {
        let chars = part.body.chars().count();
        if chars > limit {
            problems.push(format!(
                "part {}/{count} has {chars} characters, over the limit of {limit}",
                i + 1
            ));
        }
        if part.segments == 0 {
            problems.push(format!("part {}/{count} bills 0 units", i + 1));
        }
        let body = if numbered {
            let suffix = format!(" ({}/{count})", i + 1);
            &part.body[..part.body.len() - suffix.len()]
        } else {
            part.body.as_str()
        };
        if body.trim().is_empty() {
            problems.push(format!("part {}/{count} is empty: {:?}", i + 1, part.body));
        }
        bodies.push(body);
    }

    let rendered = rendering.render(markdown);
    let expected = visible(&rendered);
    let got: Vec<char> = bodies
        .iter()
        .flat_map(|b| b.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let diverges = expected
        .iter()
        .map(|(_, c)| *c)
        .zip(got.iter().copied())
        .position(|(a, b)| a != b)
        .or_else(|| (expected.len() != got.len()).then(|| expected.len().min(got.len())));
    if let Some(at) = diverges {
        let around = |chars: &mut dyn Iterator<Item = char>| -> String {
            chars.skip(at.saturating_sub(20)).take(40).collect()
        };
        problems.push(format!(
            "the parts do not spell the rendered reply: from visible character {at}, expected {:?}, got {:?}{}",
            around(&mut expected.iter().map(|(_, c)| *c)),
            around(&mut got.iter().copied()),
            if count > 1 && !numbered {
                " (numbering is only ignored when every part ends with its own ` (i/N)`)"
            } else {
                ""
            }
        ));
    }
    letters_findings(markdown, &got, &mut problems);
    if diverges.is_some() {
        // Where a part ends can only be judged once the parts spell the reply.
        return problems;
    }

    // The part each visible character of the rendered reply landed in.
    let mut part_of = Vec::with_capacity(expected.len());
    for (i, body) in bodies.iter().enumerate() {
        part_of.extend(body.chars().filter(|c| !c.is_whitespace()).map(|_| i));
    }
    // Byte offset in `rendered` → index of the visible character starting there.
    let index_at: HashMap<usize, usize> = expected
        .iter()
        .enumerate()
        .map(|(index, (offset, _))| (*offset, index))
        .collect();
    let split = |start: usize, len_bytes: usize| -> Option<(usize, usize)> {
        let text = rendered.get(start..start + len_bytes)?;
        let mut indices = text
            .char_indices()
            .filter(|(_, c)| !c.is_whitespace())
            .filter_map(|(offset, _)| index_at.get(&(start + offset)).copied());
        let first = indices.next()?;
        let last = indices.next_back().unwrap_or(first);
        (part_of[first] != part_of[last]).then_some((part_of[first] + 1, part_of[last] + 1))
    };

    for (offset, word) in words(&rendered) {
        if word.chars().count() * 2 > limit {
            continue;
        }
        if let Some((a, b)) = split(offset, word.len()) {
            problems.push(format!(
                "the word {word:?} is cut between parts {a} and {b}"
            ));
        }
    }
    for (offset, cluster) in rendered.grapheme_indices(true) {
        if cluster.chars().count() < 2 || cluster.chars().any(char::is_whitespace) {
            continue;
        }
        if let Some((a, b)) = split(offset, cluster.len()) {
            problems.push(format!(
                "the character {cluster:?} ({} code points) is cut between parts {a} and {b}",
                cluster.chars().count()
            ));
        }
    }
    for url in link_urls(markdown) {
        if url.chars().count() * 2 > limit {
            continue;
        }
        let Some(offset) = rendered.find(&url) else {
            problems.push(format!("the link URL {url} is not in the rendered reply"));
            continue;
        };
        if let Some((a, b)) = split(offset, url.len()) {
            problems.push(format!(
                "the link URL {url} is cut between parts {a} and {b}"
            ));
        }
    }
    problems
}

/// The words of a text (runs without whitespace), each with its byte offset.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (offset, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(offset),
            (true, Some(from)) => {
                words.push((from, &text[from..offset]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        words.push((from, &text[from..]));
    }
    words
}

/// Every letter of the Markdown must reach the parts, in order: markup is punctuation (or the
/// language of a code fence), so a letter that went missing is text the user will not see.
fn letters_findings(markdown: &str, got: &[char], problems: &mut Vec<String>) {
    let letters = content_letters(markdown);
    let mut sent = got.iter().filter(|c| c.is_alphabetic());
    for (position, letter) in letters.iter().enumerate() {
        if !sent.any(|c| c == letter) {
            let context: String = letters
                .iter()
                .skip(position.saturating_sub(20))
                .take(40)
                .collect();
            problems.push(format!(
                "the letters of the Markdown do not all reach the parts in order: matching runs out at letter {position} ({letter:?}) among {context:?}, so a word at or before it is missing"
            ));
            return;
        }
    }
}

/// The letters of the Markdown, without the info strings of code fences (```rust).
fn content_letters(markdown: &str) -> Vec<char> {
    let mut fences = Vec::new();
    for (event, range) in Parser::new_ext(markdown, markdown_options()).into_offset_iter() {
        if let Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) = event {
            let line_end = markdown
                .get(range.start..)
                .and_then(|rest| rest.find('\n'))
                .map_or(range.end, |n| range.start + n);
            fences.push(range.start..line_end);
        }
    }
    markdown
        .char_indices()
        .filter(|(offset, c)| c.is_alphabetic() && !fences.iter().any(|f| f.contains(offset)))
        .map(|(_, c)| c)
        .collect()
}

/// The Markdown extensions [`text::markdown_to_plain`] understands.
fn markdown_options() -> Options {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options
}

/// The URLs of the Markdown's links and images, and bare `http(s)://` words in its text.
pub(super) fn link_urls(markdown: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                let url = dest_url.to_string();
                if url.starts_with("http://") || url.starts_with("https://") {
                    urls.push(url);
                }
            }
            Event::Text(text) => {
                for word in text.split_whitespace() {
                    if word.starts_with("http://") || word.starts_with("https://") {
                        let url = word.trim_end_matches(|c: char| ".,;:!?)]}>'\"".contains(c));
                        urls.push(url.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    urls.sort();
    urls.dedup();
    urls
}
