//! Telegram's HTML (`parse_mode=HTML`) as the Bot API parses it: the supported tags, balanced;
//! `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric entities; any other `<` is an error. Written
//! apart from the gateway's formatter, so that one checks the other.
use crate::types::MessageEntity;

/// A parsed message: its visible text (trimmed, as Telegram stores it) and its entities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The text without tags, entities decoded, leading and trailing whitespace removed.
    pub text: String,
    /// The formatting, with offsets in UTF-16 code units of `text`.
    pub entities: Vec<MessageEntity>,
}

/// The entity type of a supported tag, by tag name.
fn entity_kind(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "a" => "text_link",
        "code" => "code",
        "pre" => "pre",
        "blockquote" => "blockquote",
        "tg-spoiler" | "span" => "spoiler",
        "tg-emoji" => "custom_emoji",
        _ => return None,
    })
}

/// An open tag: its name, its entity, where its text starts (UTF-16), and its URL.
struct Open {
    name: String,
    kind: &'static str,
    start: usize,
    url: Option<String>,
}

/// The attributes of a start tag (`href="…"`), values decoded.
fn attributes(mut rest: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return found;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            found.push((name, String::new()));
            continue;
        };
        let after = after.trim_start();
        let (value, next) = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &after[1..];
                let end = body.find(quote).unwrap_or(body.len());
                (&body[..end], body.get(end + 1..).unwrap_or(""))
            }
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        found.push((name, decode_all(value)));
        rest = next;
    }
}

/// The character an entity name stands for (`amp`, `#36`, `#x24`), if Telegram knows it.
fn entity(name: &str) -> Option<char> {
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

/// Text with its entities decoded; an `&` that starts none is kept as it is.
fn decode_all(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        match tail
            .find(';')
            .filter(|n| *n <= 10)
            .and_then(|n| Some((entity(&tail[..n])?, n)))
        {
            Some((c, n)) => {
                out.push(c);
                rest = &tail[n + 1..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a message sent with `parse_mode=HTML`. The error is what follows Telegram's
/// `Bad Request: can't parse entities: `.
pub fn parse(html: &str) -> Result<Parsed, String> {
    let mut text = String::with_capacity(html.len());
    let mut units = 0;
    let mut open: Vec<Open> = Vec::new();
    let mut entities = Vec::new();
    let mut pos = 0;
    let bytes = html.as_bytes();
    while pos < html.len() {
        match bytes[pos] {
            b'<' => {
                let Some(len) = html[pos..].find('>') else {
                    return Err(format!(
                        "Can't find end of the entity starting at byte offset {pos}"
                    ));
                };
                let inside = &html[pos + 1..pos + len];
                if let Some(name) = inside.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    let Some(top) = open.pop() else {
                        return Err(format!("Unexpected end tag at byte offset {pos}"));
                    };
                    if top.name != name {
                        return Err(format!(
                            "Unmatched end tag at byte offset {pos}, expected \"</{}>\", found \"</{name}>\"",
                            top.name
                        ));
                    }
                    let length = units - top.start;
                    let skip = top.kind == "text_link" && top.url.is_none();
                    if length > 0 && !skip {
                        entities.push(MessageEntity {
                            kind: top.kind.to_string(),
                            offset: top.start,
                            length,
                            url: top.url,
                            user: None,
                        });
                    }
                } else {
                    let name_end = inside
                        .find(|c: char| c.is_whitespace())
                        .unwrap_or(inside.len());
                    let name = inside[..name_end].to_ascii_lowercase();
                    let valid_name = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                    let kind = valid_name.then(|| entity_kind(&name)).flatten();
                    let Some(kind) = kind else {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {pos}"
                        ));
                    };
                    let attributes = attributes(&inside[name_end..]);
                    let attribute = |key: &str| {
                        attributes
                            .iter()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| v.clone())
                    };
                    if name == "span" && attribute("class").as_deref() != Some("tg-spoiler") {
                        return Err(format!(
                            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {pos}"
                        ));
                    }
                    if kind == "blockquote" && open.iter().any(|o| o.kind == "blockquote") {
                        return Err(format!(
                            "Blockquote entities can't be nested at byte offset {pos}"
                        ));
                    }
                    open.push(Open {
                        name,
                        kind,
                        start: units,
                        url: if kind == "text_link" {
                            attribute("href").filter(|h| !h.is_empty())
                        } else {
                            None
                        },
                    });
                }
                pos += len + 1;
            }
            b'&' => {
                let tail = &html[pos + 1..];
                let decoded = tail
                    .find(';')
                    .filter(|n| *n <= 10)
                    .and_then(|n| Some((entity(&tail[..n])?, n)));
                match decoded {
                    Some((c, n)) => {
                        text.push(c);
                        units += c.len_utf16();
                        pos += n + 2;
                    }
                    None => {
                        text.push('&');
                        units += 1;
                        pos += 1;
                    }
                }
            }
            _ => {
                let end = html[pos..].find(['<', '&']).map_or(html.len(), |n| pos + n);
                let run = &html[pos..end];
                text.push_str(run);
                units += run.chars().map(char::len_utf16).sum::<usize>();
                pos = end;
            }
        }
    }
    if let Some(top) = open.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            top.name
        ));
    }
    Ok(trimmed(text, entities))
}

/// The text as Telegram keeps it: leading and trailing whitespace removed, entities moved
/// along (and cut to the text).
pub fn trimmed(text: String, entities: Vec<MessageEntity>) -> Parsed {
    let start = text.len() - text.trim_start().len();
    let lead: usize = text[..start].chars().map(char::len_utf16).sum();
    let kept = text.trim().to_string();
    let total: usize = kept.chars().map(char::len_utf16).sum();
    let entities = entities
        .into_iter()
        .filter_map(|mut e| {
            let begin = e.offset.saturating_sub(lead).min(total);
            let end = (e.offset + e.length).saturating_sub(lead).min(total);
            (end > begin).then(|| {
                e.offset = begin;
                e.length = end - begin;
                e
            })
        })
        .collect();
    Parsed {
        text: kept,
        entities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_entities_and_text_is_decoded() {
        let parsed = parse(
            " <b>Hi</b> &amp; <a href=\"https://e.com/?a=1&amp;b=2\">docs</a> &lt;x&gt; &#36; &nbsp;\n",
        )
        .unwrap();
        assert_eq!(parsed.text, "Hi & docs <x> $ &nbsp;");
        assert_eq!(parsed.entities.len(), 2);
        assert_eq!(
            (
                parsed.entities[0].kind.as_str(),
                parsed.entities[0].offset,
                parsed.entities[0].length
            ),
            ("bold", 0, 2)
        );
        assert_eq!(
            parsed.entities[1].url.as_deref(),
            Some("https://e.com/?a=1&b=2")
        );
        assert_eq!(parsed.entities[1].offset, 5);
    }

    #[test]
    fn malformed_html_is_refused_as_telegram_does() {
        for (html, error) in [
            (
                "<foo>x</foo>",
                "Unsupported start tag \"foo\" at byte offset 0",
            ),
            (
                "a < b",
                "Can't find end of the entity starting at byte offset 2",
            ),
            ("1 < 2 > 0", "Unsupported start tag \"\" at byte offset 2"),
            (
                "<b>open",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            (
                "<b><i>x</b></i>",
                "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"",
            ),
            ("x</b>", "Unexpected end tag at byte offset 1"),
            (
                "<b",
                "Can't find end of the entity starting at byte offset 0",
            ),
            (
                "<blockquote><blockquote>x</blockquote></blockquote>",
                "Blockquote entities can't be nested at byte offset 12",
            ),
        ] {
            assert_eq!(parse(html).unwrap_err(), error, "{html}");
        }
    }

    #[test]
    fn offsets_count_utf16_units() {
        let parsed = parse("👋 <i>hi</i>").unwrap();
        assert_eq!(
            (parsed.entities[0].offset, parsed.entities[0].length),
            (3, 2)
        );
        let parsed = parse("<pre><code class=\"language-rust\">fn main() {}</code></pre>").unwrap();
        assert_eq!(parsed.text, "fn main() {}");
        assert_eq!(parsed.entities.len(), 2);
    }
}
