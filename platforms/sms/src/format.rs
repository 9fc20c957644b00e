//! Agent Markdown → SMS parts: plain text, GSM-7 friendly, split within Twilio's limits.
//!
//! [`format()`] renders the Markdown as plain text ([`text::markdown_to_plain`]), replaces
//! typography that would force UCS-2 ([`gsm_normalize`]), splits the result into bodies of at most
//! [`MAX_PART_CHARS`] characters numbered ` (i/N)` when there are several, and labels each with
//! its encoding and billed segments. Where a part ends is chosen to save segments: see
//! [`format()`].
//!
//! ```
//! use platform_sms::format::format;
//!
//! let parts = format("**Done!** It’s booked — see <https://example.com/b/42>.");
//! assert_eq!(parts.len(), 1);
//! assert_eq!(parts[0].body, "Done! It's booked - see https://example.com/b/42.");
//! assert_eq!(parts[0].encoding.as_deref(), Some("GSM-7"));
//! assert_eq!(parts[0].segments, 1);
//! ```

use std::ops::Range;

use platform_api::media::MediaLimits;
use platform_api::text::{self, Window};
use platform_api::{Formatted, Part, PartMedia};

use hermes_twilio::segments::{
    Counter, Encoding, GSM7_SEGMENT, GSM7_SINGLE, UCS2_SEGMENT, UCS2_SINGLE, gsm_normalize_located,
    gsm_septets,
};

/// Twilio's limit on one message body, in characters.
pub const MAX_PART_CHARS: usize = 1600;

/// Formats agent Markdown into the parts the SMS platform sends.
///
/// A part that cannot hold the rest of the reply ends at the most natural break that fills it
/// ([`text::greedy`]), unless an earlier break that makes this part a segment shorter lowers the
/// reply's total: 1,600 GSM-7 characters are billed as 11 segments and 1,530 as 10, and the 70 in
/// between often fit in the next part's last segment for free. The reply is never billed more
/// segments than filling every part would cost. Empty or whitespace-only Markdown gives no parts.
pub fn format(markdown: &str) -> Vec<Part> {
    let (plain, special) = gsm_normalize_located(&text::markdown_to_plain(markdown));
    let mut chooser = FewerSegments::new(&plain, special);
    let spans = text::numbered_spans_with(&plain, MAX_PART_CHARS, |window| chooser.choose(window));
    spans
        .iter()
        .map(|span| {
            // Each part is counted from the irregular characters the chooser knows, not scanned
            // again.
            let (encoding, segments) =
                chooser.cost(span.bytes.clone(), span.chars.clone(), span.suffix_chars());
            Part {
                body: span.body(&plain),
                encoding: Some(encoding.label().to_owned()),
                segments,
                edit: None,
                media: Vec::new(),
            }
        })
        .collect()
}

/// Twilio's limits on one MMS: 10 files and 5 MB of media in all, so 5 MB a file too.
pub const MMS_LIMITS: MediaLimits = MediaLimits {
    files_per_message: 10,
    bytes_per_file: 5_000_000,
    bytes_per_message: 5_000_000,
};

/// What an MMS is billed as: per message, whatever the length of its text.
pub const MMS_ENCODING: &str = "MMS";

/// Formats a reply that comes with files as MMS: the files ride on the parts within Twilio's
/// limits ([`MMS_LIMITS`]: the first ten on the first part, more in media-only messages after
/// the text), a file over 5 MB is left out and named in the text. A part with files is an MMS,
/// billed as one message ([`MMS_ENCODING`], one unit) whatever its text, which [`format()`]
/// already keeps within Twilio's 1,600 characters.
pub fn format_media(markdown: &str, media: Vec<PartMedia>) -> Formatted {
    let mut formatted = platform_api::media::attach(markdown, media, MMS_LIMITS, "MMS", format);
    for part in formatted.parts.iter_mut().filter(|p| !p.media.is_empty()) {
        part.encoding = Some(MMS_ENCODING.to_string());
        part.segments = 1;
    }
    formatted
}

/// Chooses where a part that cannot hold the rest of a text ends, so that the text is billed as
/// few segments as its natural breaks allow.
///
/// [`text::greedy`] fills the part, but filling is not what is billed. So the greedy break is
/// compared with up to two earlier breaks that cost this part a segment less: the one the greedy
/// rule picks among them, and the last of them. Each candidate is scored as this part's segments
/// plus those of the rest of the text split greedily ([`Window::greedy_after`]), numbering suffix
/// included; an earlier break is taken only when its score is strictly lower. The greedy
/// continuation is always one of the candidates, so the text is never billed more than the greedy
/// split would be (with suffixes counted at their reserved width, which is exact below ten
/// parts).
///
/// One chooser serves one text. It knows where the characters that are not one GSM-7 septet
/// are, so that a part without any is counted from its length alone and one with some from the
/// few places they are at, and it remembers the cost of greedy look-aheads by where they start,
/// since the candidates' look-aheads and the next part's often run through the same cuts.
struct FewerSegments<'t> {
    text: &'t str,
    /// Byte offsets and character indices of the characters that are not a single GSM-7 septet
    /// ([`irregular_chars`]).
    special: Vec<(usize, usize)>,
    /// `tally[k]` counts the kinds of `special[..k]`.
    tally: Vec<Tally>,
    /// Segments of a greedy split of the text's last `remaining` bytes, by (`remaining`,
    /// `max_chars`, `suffix_chars`): a handful of entries, so a list.
    known: Vec<((usize, usize, usize), u32)>,
}

impl<'t> FewerSegments<'t> {
    /// A chooser for `text`, whose irregular characters are `special`.
    fn new(text: &'t str, special: Vec<(usize, usize)>) -> Self {
        let mut tally = Vec::with_capacity(special.len() + 1);
        let mut sum = Tally::default();
        tally.push(sum);
        for &(offset, _) in &special {
            if let Some(c) = text.get(offset..).and_then(|rest| rest.chars().next()) {
                sum.add(c);
            }
            tally.push(sum);
        }
        FewerSegments {
            text,
            special,
            tally,
            known: Vec::new(),
        }
    }

    fn choose(&mut self, window: &Window<'_>) -> usize {
        let greedy = text::greedy(window);
        let Some(offset) = self.text.len().checked_sub(window.rest.len()) else {
            return greedy;
        };
        let base = (offset, window.start_chars());
        let greedy_cost = self.break_cost(window, base, greedy);
        // Segments only grow as a part grows, so the breaks that save a segment come first.
        let (mut low, mut high) = (0, greedy);
        while low < high {
            let middle = (low + high) / 2;
            if self.break_cost(window, base, middle) < greedy_cost {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let cheaper = low;
        if cheaper == 0 {
            return greedy;
        }
        let preferred = text::greedy(&window.truncated(cheaper));
        let mut best = (self.score(window, base, greedy, greedy_cost), greedy);
        for candidate in [preferred, cheaper - 1] {
            if candidate == best.1 {
                continue;
            }
            let cost = self.break_cost(window, base, candidate);
            let total = self.score(window, base, candidate, cost);
            if total < best.0 {
                best = (total, candidate);
            }
        }
        best.1
    }

    /// Segments of the part ending at break `index` of a window starting at `base` (byte offset,
    /// character index).
    fn break_cost(&self, window: &Window<'_>, base: (usize, usize), index: usize) -> u32 {
        let cut = window.breaks[index];
        self.cost(
            base.0..base.0 + cut.end,
            base.1..base.1 + cut.chars,
            window.suffix_chars,
        )
        .1
    }

    /// Encoding and segments of the text in `bytes` (characters `chars`) followed by a suffix
    /// of `suffix_chars` plain characters.
    fn cost(
        &self,
        bytes: Range<usize>,
        chars: Range<usize>,
        suffix_chars: usize,
    ) -> (Encoding, u32) {
        let special = &self.special;
        let first = special.partition_point(|&(offset, _)| offset < bytes.start);
        let last = special.partition_point(|&(offset, _)| offset < bytes.end);
        // Counted from the length and the kinds of the irregular characters when that settles
        // it (always, without any): each two-unit character can waste at most one unit at the
        // end of a segment.
        let (to, from) = (self.tally[last], self.tally[first]);
        let (encoding, two_unit, single, per_segment) = if to.no_gsm > from.no_gsm {
            let astral = to.astral - from.astral;
            (Encoding::Ucs2, astral, UCS2_SINGLE, UCS2_SEGMENT)
        } else {
            let wide = to.wide - from.wide;
            (Encoding::Gsm7, wide, GSM7_SINGLE, GSM7_SEGMENT)
        };
        let units = chars.len() + suffix_chars + two_unit;
        if units <= single {
            return (encoding, u32::from(units > 0));
        }
        let fewest = units.div_ceil(per_segment);
        if fewest == (units + two_unit).div_ceil(per_segment) {
            return (encoding, u32::try_from(fewest).unwrap_or(u32::MAX));
        }
        let mut counter = Counter::new();
        let mut at = chars.start;
        for &(offset, index) in &special[first..last] {
            counter.push_plain(index.saturating_sub(at));
            if let Some(c) = self.text.get(offset..).and_then(|rest| rest.chars().next()) {
                counter.push(c);
            }
            at = index + 1;
        }
        counter.push_plain(chars.end.saturating_sub(at) + suffix_chars);
        counter.segments()
    }

    /// The segments of the part ending at break `index` (`cost`) plus those of the rest of the
    /// text, split greedily.
    fn score(&mut self, window: &Window<'_>, base: (usize, usize), index: usize, cost: u32) -> u32 {
        let (max_chars, suffix_chars) = (window.max_chars, window.suffix_chars);
        let mut fresh = Vec::new();
        let mut tail = 0;
        for (bytes, chars) in window.greedy_after(index) {
            let bytes = base.0 + bytes.start..base.0 + bytes.end;
            let chars = base.1 + chars.start..base.1 + chars.end;
            let remaining = self.text.len() - bytes.start;
            let key = (remaining, max_chars, suffix_chars);
            if let Some(&(_, segments)) = self.known.iter().find(|(known, _)| *known == key) {
                tail = segments;
                break;
            }
            fresh.push((remaining, self.cost(bytes, chars, suffix_chars).1));
        }
        let mut total = tail;
        for (remaining, segments) in fresh.into_iter().rev() {
            total = total.saturating_add(segments);
            self.known
                .push(((remaining, max_chars, suffix_chars), total));
        }
        cost.saturating_add(total)
    }
}

/// How many irregular characters of each kind a stretch of text has.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// GSM-7 extension characters (two septets).
    wide: usize,
    /// Characters GSM-7 cannot carry (the text is then UCS-2).
    no_gsm: usize,
    /// Characters outside the Basic Multilingual Plane (two UTF-16 units).
    astral: usize,
}

impl Tally {
    fn add(&mut self, c: char) {
        match gsm_septets(c) {
            Some(2) => self.wide += 1,
            None => self.no_gsm += 1,
            _ => {}
        }
        self.astral += usize::from(c.len_utf16() == 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hermes_twilio::segments::{gsm_normalize, irregular_chars, segments};
    use proptest::prelude::*;

    fn non_whitespace(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    /// The body without its ` (i/N)` suffix, checking the suffix is the right one.
    fn without_suffix(body: &str, index: usize, total: usize) -> &str {
        if total <= 1 {
            return body;
        }
        let suffix = format!(" ({}/{total})", index + 1);
        body.strip_suffix(&suffix)
            .unwrap_or_else(|| panic!("{body:?} lacks {suffix:?}"))
    }

    fn total_segments(parts: &[Part]) -> u32 {
        parts.iter().map(|part| part.segments).sum()
    }

    fn greedy_segments(plain: &str) -> u32 {
        text::split_numbered(plain, MAX_PART_CHARS)
            .iter()
            .map(|body| segments(body).1)
            .sum()
    }

    fn long_reply() -> String {
        let mut reply =
            String::from("# Your week in review\n\nHere’s what happened, day by day:\n\n");
        let days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
        for (n, day) in days.iter().enumerate() {
            reply.push_str(&format!(
                "## {day}\n\n\
                 You had **{count} meetings**. The “planning sync” ran long — about 40 minutes — \
                 so the *design review* moved to {day} afternoon. Notes are at \
                 [the team wiki](https://wiki.example.com/notes/{n}?view=full&lang=en).\n\n\
                 - Follow up with Ana about the budget…\n\
                 - Book the room for next {day}\n\
                 - Reply to 3 emails from ‘procurement’\n\n\
                 ```\nstatus --week {n} --verbose\n```\n\n",
                count = n + 2,
            ));
        }
        reply.push_str("That’s all. Have a great weekend!");
        reply
    }

    #[test]
    fn empty_markdown_gives_no_parts() {
        for markdown in ["", "   ", "\n\n\t\n", "\u{200b}", "\u{a0}\n\u{3000}"] {
            assert_eq!(format(markdown), Vec::<Part>::new(), "{markdown:?}");
        }
    }

    #[test]
    fn short_replies() {
        let cases: &[(&str, &str, &str, &str, u32)] = &[
            ("plain", "Sure, done.", "Sure, done.", "GSM-7", 1),
            (
                "curly quotes become straight",
                "“Dinner’s at 8” — she said…",
                "\"Dinner's at 8\" - she said...",
                "GSM-7",
                1,
            ),
            (
                "emoji stays and costs ucs2",
                "Done 🎉",
                "Done 🎉",
                "UCS-2",
                1,
            ),
            (
                "markdown list",
                "**Today**\n\n* gym\n* groceries\n* call mom",
                "Today\n\n- gym\n- groceries\n- call mom",
                "GSM-7",
                1,
            ),
            (
                "link keeps its url",
                "Tickets: [here](https://tix.example.com/e/9?seat=A1)",
                "Tickets: here (https://tix.example.com/e/9?seat=A1)",
                "GSM-7",
                1,
            ),
            ("euro is gsm", "Total: €12", "Total: €12", "GSM-7", 1),
        ];
        for (name, markdown, body, encoding, count) in cases {
            let parts = format(markdown);
            assert_eq!(parts.len(), 1, "case {name}");
            assert_eq!(parts[0].body, *body, "case {name}");
            assert_eq!(parts[0].encoding.as_deref(), Some(*encoding), "case {name}");
            assert_eq!(parts[0].segments, *count, "case {name}");
        }
    }

    fn check_reply(name: &str, markdown: &str) -> Vec<Part> {
        let plain = gsm_normalize(&text::markdown_to_plain(markdown));
        let parts = format(markdown);
        let total = parts.len();
        let mut kept = String::new();
        for (index, part) in parts.iter().enumerate() {
            assert!(
                part.body.chars().count() <= MAX_PART_CHARS,
                "{name}: part {index} has {} chars",
                part.body.chars().count()
            );
            let (encoding, count) = segments(&part.body);
            assert_eq!(part.encoding.as_deref(), Some(encoding.label()), "{name}");
            assert_eq!(part.segments, count, "{name}");
            kept.push_str(without_suffix(&part.body, index, total));
            kept.push(' ');
        }
        assert_eq!(non_whitespace(&kept), non_whitespace(&plain), "{name}");
        let words: Vec<&str> = plain.split_whitespace().collect();
        let cut: Vec<&str> = kept.split_whitespace().collect();
        assert_eq!(cut, words, "{name}: a word was cut");
        assert!(total_segments(&parts) <= greedy_segments(&plain), "{name}");
        parts
    }

    #[test]
    fn long_replies_are_split_within_limits() {
        let reply = long_reply();
        let emoji_reply = format!("{reply}\n\nSee you Monday 👋");
        let one_paragraph = "The quick brown fox jumps over the lazy dog. ".repeat(150);
        let url = "https://maps.example.com/dir/?api=1&origin=Lisbon&destination=Porto&waypoints=Coimbra%7CAveiro&travelmode=driving";
        let links = format!(
            "Route options:\n\n{}",
            format!("- [{url}]({url}) scenic\n").repeat(40)
        );
        let code = format!(
            "Here is the script:\n\n```python\n{}```\n",
            "for item in items:\n    print(f\"{item['name']}: {item['price']}\")\n".repeat(40)
        );
        let cases: &[(&str, &str)] = &[
            ("review", &reply),
            ("review with emoji", &emoji_reply),
            ("one paragraph", &one_paragraph),
            ("links", &links),
            ("code", &code),
        ];
        for (name, markdown) in cases {
            let parts = check_reply(name, markdown);
            assert!(parts.len() > 1, "{name}");
        }

        let parts = format(&reply);
        assert!(parts.iter().all(|p| p.encoding.as_deref() == Some("GSM-7")));
        assert!(
            parts
                .iter()
                .all(|p| !p.body.contains(['’', '“', '”', '—', '…']))
        );
        let parts = format(&emoji_reply);
        let last = parts.last().map(|p| p.encoding.as_deref());
        assert_eq!(last, Some(Some("UCS-2")));
        let parts = format(&links);
        let bodies: Vec<&str> = parts.iter().map(|p| p.body.as_str()).collect();
        let whole = bodies.iter().map(|b| b.matches(url).count()).sum::<usize>();
        assert_eq!(whole, 40, "every url whole inside one part");
    }

    #[test]
    fn ends_parts_on_segment_boundaries_when_that_saves_a_segment() {
        // 2,994 characters: filled greedily, the first part is 1,594 + ` (1/2)` = 1,600 (11
        // segments) and the second 1,399 + 6 = 1,405 (10). Ending the first at 1,524 + 6 = 1,530
        // (10 segments) leaves 1,469 + 6 = 1,475 for the second, still 10.
        let markdown = "word ".repeat(599);
        let plain = gsm_normalize(&text::markdown_to_plain(&markdown));
        let greedy = text::split_numbered(&plain, MAX_PART_CHARS);
        let greedy_counts: Vec<u32> = greedy.iter().map(|b| segments(b).1).collect();
        assert_eq!(greedy_counts, [11, 10]);

        let parts = format(&markdown);
        let lengths: Vec<usize> = parts.iter().map(|p| p.body.chars().count()).collect();
        let counts: Vec<u32> = parts.iter().map(|p| p.segments).collect();
        assert_eq!(lengths, [1530, 1475]);
        assert_eq!(counts, [10, 10]);
        check_reply("aligned", &markdown);
    }

    #[test]
    fn keeps_the_greedy_cut_when_moving_text_saves_nothing() {
        // 3,099 characters need 21 segments however they are cut, so the parts stay full.
        let markdown = "word ".repeat(620);
        let parts = format(&markdown);
        let counts: Vec<u32> = parts.iter().map(|p| p.segments).collect();
        assert_eq!(counts, [11, 10]);
        assert_eq!(parts[0].body.chars().count(), 1600);
    }

    fn photo(name: &str, size: u64) -> PartMedia {
        PartMedia {
            token: format!("tok-{name}"),
            name: name.to_string(),
            content_type: "image/jpeg".to_string(),
            size,
            send_as: platform_api::SendAs::Photo,
            bytes: None,
            url: None,
        }
    }

    #[test]
    fn a_part_with_files_is_an_mms_billed_as_one_message() {
        let long = "word ".repeat(620);
        let out = format_media(&long, vec![photo("chart.jpg", 200_000)]);
        assert!(out.refused.is_empty());
        assert_eq!(out.parts.len(), 2);
        let mms = &out.parts[0];
        assert_eq!(mms.media.len(), 1);
        assert_eq!(mms.encoding.as_deref(), Some("MMS"));
        assert_eq!(mms.segments, 1);
        assert!(mms.body.chars().count() <= MAX_PART_CHARS);
        // The rest of the text is an ordinary SMS, billed by segment.
        assert!(out.parts[1].media.is_empty());
        assert_eq!(out.parts[1].encoding.as_deref(), Some("GSM-7"));
        assert!(out.parts[1].segments > 1);
    }

    #[test]
    fn eleven_files_are_two_mms_and_a_file_over_5_mb_is_named() {
        let mut media: Vec<_> = (0..11).map(|i| photo(&format!("{i}.jpg"), 1000)).collect();
        media.push(photo("huge.jpg", 6_000_000));
        let out = format_media("Your photos.", media);
        assert_eq!(out.refused.len(), 1);
        assert_eq!(out.refused[0].media.name, "huge.jpg");
        assert_eq!(out.parts.len(), 2);
        assert_eq!(out.parts[0].media.len(), 10);
        assert!(out.parts[0].body.starts_with("Your photos."));
        assert!(
            out.parts[0]
                .body
                .contains("(huge.jpg not sent: 6.0 MB, over the 5.0 MB a file that MMS allows)"),
            "{}",
            out.parts[0].body
        );
        assert_eq!(out.parts[1].body, "");
        assert_eq!(out.parts[1].media.len(), 1);
        assert!(
            out.parts
                .iter()
                .all(|p| p.encoding.as_deref() == Some("MMS"))
        );
        assert!(out.parts.iter().all(|p| p.segments == 1));
    }

    #[test]
    fn files_without_text_are_one_media_only_mms() {
        let out = format_media("", vec![photo("a.jpg", 10)]);
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].body, "");
        assert_eq!(out.parts[0].encoding.as_deref(), Some("MMS"));
    }

    #[test]
    fn ucs2_parts_align_too() {
        // UCS-2 segments hold 67 units: a full part of 1,600 is 24 segments, 1,541 would be 23,
        // and here the second part has room in its last segment for the difference.
        let markdown = "wörd ç ".repeat(419);
        let parts = check_reply("ucs2", &markdown);
        assert!(parts.iter().all(|p| p.encoding.as_deref() == Some("UCS-2")));
        let plain = gsm_normalize(&text::markdown_to_plain(&markdown));
        assert_eq!(greedy_segments(&plain), 24 + 21);
        let counts: Vec<u32> = parts.iter().map(|p| p.segments).collect();
        assert_eq!(counts, [23, 21]);
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-z]{1,9}",
            1 => Just("€".to_owned()),
            1 => Just("ç".to_owned()),
            1 => Just("“quoted”".to_owned()),
            1 => Just("https://example.com/a/b?c=d".to_owned()),
        ]
    }

    fn reply() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                word(),
                prop_oneof![8 => Just(" "), 1 => Just(". "), 1 => Just("\n"), 1 => Just("\n\n")],
            ),
            200..1200,
        )
        .prop_map(|items| items.into_iter().map(|(w, s)| format!("{w}{s}")).collect())
    }

    proptest! {
        #[test]
        fn costs_match_counting_the_text(
            text in prop::collection::vec(
                prop_oneof![
                    8 => Just("word "), 2 => Just("€"), 1 => Just("[x]"), 1 => Just("ç"),
                    1 => Just("😀"), 1 => Just("\n"),
                ],
                0..600,
            ).prop_map(|pieces| pieces.concat()),
            from in any::<prop::sample::Index>(),
            to in any::<prop::sample::Index>(),
            suffix_chars in 0usize..12,
        ) {
            let chooser = FewerSegments::new(&text, irregular_chars(&text));
            let offsets: Vec<usize> =
                text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let (a, b) = (from.get(&offsets), to.get(&offsets));
            let (start, end) = (*a.min(b), *a.max(b));
            let chars = text[..start].chars().count()..text[..end].chars().count();
            let expected = segments(&format!("{}{}", &text[start..end], " ".repeat(suffix_chars)));
            prop_assert_eq!(chooser.cost(start..end, chars, suffix_chars), expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn never_billed_more_than_the_greedy_split(markdown in reply()) {
            check_reply("generated", &markdown);
        }

        #[test]
        fn never_panics(markdown in any::<String>()) {
            for part in format(&markdown) {
                prop_assert!(part.body.chars().count() <= MAX_PART_CHARS);
            }
        }
    }
}
