//! Agent Markdown → Telegram HTML and Discord messages never panics, and every part is one the
//! platform accepts: Telegram's visible text within 4,096 UTF-16 units, only the tags Telegram
//! knows, each closed in the part that opened it; Discord's parts within 2,000 characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use platform_discord::format as discord;
use platform_telegram::format as telegram;

/// The tags Telegram's `parse_mode=HTML` takes, of those the formatter writes.
const TELEGRAM_TAGS: [&str; 7] = ["b", "i", "s", "code", "pre", "a", "blockquote"];

/// Checks that `html` opens only known tags and closes each in order; panics otherwise.
fn assert_balanced(html: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        let tag = &rest[at + 1..];
        let end = tag
            .find('>')
            .unwrap_or_else(|| panic!("unclosed tag in {html:?}"));
        let inside = &tag[..end];
        rest = &tag[end + 1..];
        match inside.strip_prefix('/') {
            Some(name) => assert_eq!(open.pop(), Some(name), "closing </{name}> in {html:?}"),
            None => {
                let name = inside.split(' ').next().unwrap_or_default();
                assert!(TELEGRAM_TAGS.contains(&name), "tag <{inside}> in {html:?}");
                open.push(name);
            }
        }
    }
    assert!(open.is_empty(), "{open:?} left open in {html:?}");
}

fuzz_target!(|markdown: &str| {
    for part in telegram::format(markdown) {
        assert_balanced(&part.body);
        let shown = telegram::shown(&part.body);
        assert!(
            telegram::utf16_len(&shown) <= telegram::MAX_MESSAGE_CHARS,
            "{} units",
            telegram::utf16_len(&shown)
        );
    }
    for part in discord::format(markdown) {
        assert!(part.body.chars().count() <= discord::MAX_MESSAGE_CHARS);
        assert!(!part.body.is_empty());
    }
});
