//! Characters and grapheme clusters at byte offsets of a text.
use unicode_segmentation::GraphemeCursor;

/// Whether `offset` (a char boundary of `text`) is also a grapheme cluster boundary.
pub(super) fn is_boundary(text: &str, offset: usize) -> bool {
    let bytes = text.as_bytes();
    if offset == 0 || offset >= bytes.len() {
        return true;
    }
    let (before, after) = (bytes[offset - 1], bytes[offset]);
    // No ASCII character extends or joins a cluster; only CR LF stays together.
    if before.is_ascii() && after.is_ascii() {
        return !(before == b'\r' && after == b'\n');
    }
    GraphemeCursor::new(offset, text.len(), true)
        .is_boundary(text, 0)
        .unwrap_or(true)
}

pub(super) fn char_at(text: &str, offset: usize) -> Option<char> {
    match text.as_bytes().get(offset) {
        Some(&byte) if byte.is_ascii() => Some(char::from(byte)),
        Some(_) => text.get(offset..).and_then(|rest| rest.chars().next()),
        None => None,
    }
}

pub(super) fn next_char(text: &str, offset: usize) -> usize {
    text[offset..]
        .chars()
        .next()
        .map_or(text.len(), |c| offset + c.len_utf8())
}

pub(super) fn previous_char(text: &str, offset: usize) -> usize {
    text[..offset]
        .chars()
        .next_back()
        .map_or(0, |c| offset - c.len_utf8())
}
