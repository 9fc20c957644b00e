//! Agent Markdown → SMS parts: plain text, GSM-7 friendly, split within Twilio's limits.
//!
//! [`format`] renders the Markdown as plain text ([`text::markdown_to_plain`]), replaces
//! typography that would force UCS-2 ([`gsm_normalize`]), splits the result into bodies of at most
//! [`MAX_PART_CHARS`] characters numbered ` (i/N)` when there are several, and labels each with
//! its encoding and billed segments. Where a part ends is chosen by [`fewer_segments`].
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

use platform_api::Part;
use platform_api::text::{self, Window};

use crate::segments::{Counter, gsm_normalize, segments};

/// Twilio's limit on one message body, in characters.
pub const MAX_PART_CHARS: usize = 1600;

/// Formats agent Markdown into the parts the SMS platform sends.
///
/// Empty or whitespace-only Markdown gives no parts.
pub fn format(markdown: &str) -> Vec<Part> {
    let plain = gsm_normalize(&text::markdown_to_plain(markdown));
    text::split_numbered_with(&plain, MAX_PART_CHARS, fewer_segments)
        .into_iter()
        .map(|body| {
            let (encoding, segments) = segments(&body);
            Part {
                body,
                encoding: Some(encoding.label().to_owned()),
                segments,
            }
        })
        .collect()
}

/// Chooses where a part that cannot hold the rest of the reply ends, so that the reply is billed
/// as few segments as the natural breaks allow.
///
/// [`text::greedy`] fills the part, but filling is not what is billed: 1,600 GSM-7 characters
/// are 11 segments, 1,530 are 10, and the 70 in between may fit in the next part's last segment
/// for free. So the greedy break is compared with up to two earlier breaks that cost this part a
/// segment less (the one the greedy rule picks among them, and the last of them). Each candidate
/// is scored as this part's segments plus those of the rest of the text split greedily, numbering
/// suffix included; an earlier break is taken only when its score is strictly lower. The greedy
/// continuation is always one of the candidates, so the reply is never billed more than the
/// greedy split would be.
pub fn fewer_segments(window: &Window<'_>) -> usize {
    let greedy = text::greedy(window);
    let costs = prefix_costs(window);
    let Some(&greedy_cost) = costs.get(greedy) else {
        return greedy;
    };
    let cheaper = costs.partition_point(|&cost| cost < greedy_cost);
    if cheaper == 0 {
        return greedy;
    }
    let lower = Window {
        breaks: &window.breaks[..cheaper],
        ..*window
    };
    let mut best = (score(window, greedy, greedy_cost), greedy);
    for candidate in [text::greedy(&lower), cheaper - 1] {
        let total = score(window, candidate, costs[candidate]);
        if total < best.0 {
            best = (total, candidate);
        }
    }
    best.1
}

/// Segments of the part ending at each break, suffix included, in one pass over the window.
fn prefix_costs(window: &Window<'_>) -> Vec<u32> {
    let mut counter = Counter::new();
    let mut counted = 0;
    window
        .breaks
        .iter()
        .map(|cut| {
            if let Some(piece) = window.rest.get(counted..cut.end) {
                counter.push_str(piece);
                counted = cut.end;
            }
            cost_with_suffix(counter, window.suffix_chars)
        })
        .collect()
}

/// This part's segments plus those of the rest of the text, split greedily.
fn score(window: &Window<'_>, index: usize, cost: u32) -> u32 {
    let Some(rest) = window
        .breaks
        .get(index)
        .and_then(|cut| window.rest.get(cut.next..))
    else {
        return u32::MAX;
    };
    text::parts(rest, window.max_chars, window.suffix_chars, text::greedy)
        .map(|part| {
            let mut counter = Counter::new();
            counter.push_str(part);
            cost_with_suffix(counter, window.suffix_chars)
        })
        .fold(cost, u32::saturating_add)
}

/// The suffix ` (i/N)` is ASCII: one unit per character in either encoding.
fn cost_with_suffix(mut counter: Counter, suffix_chars: usize) -> u32 {
    for _ in 0..suffix_chars {
        counter.push(' ');
    }
    counter.segments().1
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn ucs2_parts_align_too() {
        // UCS-2 segments hold 67 units: 1,600 units are 24 segments, 1,541 are 23.
        let markdown = "wörd ç ".repeat(430);
        let parts = check_reply("ucs2", &markdown);
        assert!(parts.iter().all(|p| p.encoding.as_deref() == Some("UCS-2")));
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
