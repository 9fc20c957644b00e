//! Realistic assistant replies that every formatter must survive.
//!
//! Each reply stresses something that has broken message formatters before: Markdown structure,
//! code, links and URLs longer than any word, typography, emoji sequences and flags, scripts
//! without spaces, combining marks, Windows line ends, and replies many parts long.

/// One reply of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// A short name saying what it stresses, shown in failures.
    pub name: &'static str,
    /// The agent Markdown.
    pub markdown: String,
}

const GREETING: &str = "Hi! 👋 I'm here. What can I do for you today?";

const TRIP_PLAN: &str = "# Trip plan for **Lisbon** 🇵🇹

Here's a *rough* plan — adjust as you like.

## Day 1 – Alfama

- **Morning:** walk up to the *Castelo de São Jorge*
- **Lunch:** grilled sardines at a tasca
  - try the *vinho verde*
  - ask for “petiscos”
- ~~Tram 28~~ (queues are long in summer)

## Day 2 – Belém

1. Jerónimos Monastery (book ahead: [tickets](https://www.museusemonumentos.pt/pt/museus-e-monumentos/mosteiro-dos-jeronimos))
2. Pastéis de Belém — *the* custard tarts
3. MAAT at sunset

> Tip: Lisbon is hilly… wear comfortable shoes!
> And carry water.

| Day | Area | Budget |
|-----|------|-------:|
| 1 | Alfama | €60 |
| 2 | Belém | €85 |

---

Want me to add restaurants? Reply **yes** or *no*.";

const CODE: &str = r#"Sure — here is a minimal HTTP health check in Rust:

```rust
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let status = client.get("https://example.com/health").send()?.status();
    if !status.is_success() {
        eprintln!("unhealthy: {status}");
        std::process::exit(1);
    }
    println!("ok");
    Ok(())
}
```

Run it every minute with cron:

```sh
* * * * * /usr/local/bin/healthcheck >> /var/log/health.log 2>&1
```

Use `RUST_LOG=debug` to see each request, and `cargo build --release` for a small binary.

    indented code also counts: let x = vec![1, 2, 3];

That's it!"#;

const LINKS: &str = "A few links you asked for:

- Docs: [the Rust book](https://doc.rust-lang.org/book/ch01-00-getting-started.html)
- Wikipedia: [Rust](https://en.wikipedia.org/wiki/Rust_(programming_language))
- Autolink: <https://www.rust-lang.org/learn>
- Bare: https://crates.io/crates/serde?tab=readme#usage
- Mail: [write to us](mailto:support@example.com)
- Logo: ![Rust logo](https://www.rust-lang.org/logos/rust-logo-512x512.png)

Your tracking page (it's long, sorry): https://tracking.example-logistics.com/v2/shipments/track?id=1Z999AA10123456784&carrier=ups&locale=en_US&utm_source=assistant&utm_medium=sms&utm_campaign=order-updates&session=9f8e7d6c5b4a39281706f5e4d3c2b1a0&signature=QmFzZTY0U2lnbmF0dXJlVGhhdElzUXVpdGVMb25nQW5kS2VlcHNHb2luZ0FuZEdvaW5nVW50aWxJdEVuZHM&expires=1767225600

And [the same page with a label](https://tracking.example-logistics.com/v2/shipments/track?id=1Z999AA10123456784&carrier=ups&locale=en_US&utm_source=assistant&utm_medium=sms&utm_campaign=order-updates&session=9f8e7d6c5b4a39281706f5e4d3c2b1a0&signature=QmFzZTY0U2lnbmF0dXJlVGhhdElzUXVpdGVMb25nQW5kS2VlcHNHb2luZ0FuZEdvaW5nVW50aWxJdEVuZHM&expires=1767225600).";

const TYPOGRAPHY: &str =
    "“Smart quotes” and ‘single ones’ — plus en–dashes, an ellipsis… and a\u{a0}non-breaking space.
It’s 5′ 11″ tall; «guillemets» and „low quotes“ too.
Prices: €12, £9, ¥800, ₹250 • bullet • end.";

const EMOJI: &str = "Family night! 👨‍👩‍👧‍👦 with 👩🏽‍💻 and 🧑🏿‍🚀, flying 🏳️‍🌈 and 🏴‍☠️.

Countries: 🇺🇸🇯🇵🇩🇪🇧🇷🇮🇳🇫🇷 — keycaps 1️⃣ 2️⃣ #️⃣ — thumbs 👍🏻👍🏿 — hearts ❤️‍🔥 ❤️.

Weather ☀️🌤️⛈️🌈 and food 🍣🍜🥟.";

const CJK: &str = "你好！这是一个关于东京旅行的简短计划。第一天参观浅草寺和上野公园，晚上去秋叶原。第二天去新宿御苑，然后在涩谷吃晚饭。记得带上交通卡，地铁非常方便。

東京の天気は明日晴れの予報です。朝は少し寒いので、上着を持っていくといいでしょう。新幹線のチケットは駅の窓口か、オンラインで予約できます。

서울 여행 일정: 경복궁, 북촌 한옥마을, 그리고 명동에서 쇼핑. 지하철 카드를 꼭 챙기세요.";

const SCRIPTS: &str = "Arabic: مرحبا بك! كيف يمكنني مساعدتك اليوم؟
Hebrew: שלום, מה שלומך?
Hindi: नमस्ते, आप कैसे हैं?
Thai: สวัสดีครับ ยินดีต้อนรับ
Vietnamese (decomposed): Vie\u{323}\u{302}t Nam, Ha\u{300} No\u{323}\u{302}i, Sa\u{300}i Go\u{300}n
Zalgo-ish: Z\u{351}\u{36b}\u{343}a\u{36b}\u{30a}l\u{334}g\u{30d}o\u{35b}";

const WINDOWS_LINES: &str =
    "Line one from a Windows editor\r\nLine two\r\n\r\nA new paragraph\r\n- item a\r\n- item b\r\n";

/// A section of a long technical answer, varied by `n` so that no two sections are equal.
fn incident_section(n: usize) -> String {
    format!(
        "## {n}. Incident review step {n}

When the **gateway** restarted at 02:{minute:02} UTC, the outbox still held parts queued for \
delivery. Each part is stored *before* it is sent, so nothing was lost: the sender resumed at \
the next part. See [runbook section {n}](https://runbooks.example.com/gateway/incidents/{n}#recovery) \
for the details, and https://status.example.com/incidents/{n} for the public timeline.

- Checked the queue depth with `hermes_outbox_depth` (it peaked at {depth})
- Confirmed no duplicate sends — the ambiguous parts were held, not re-sent
- Noted follow-ups:
  1. alert when the depth stays above 100 for 5 minutes
  2. document the “drain” behaviour… again

```sh
sqlite3 gateway.db \"SELECT state, count(*) FROM outbox GROUP BY state;\"
```

> Lesson {n}: measure first, then change one thing at a time. 🙂

",
        minute = n % 60,
        depth = 40 + n * 7,
    )
}

/// A long answer: 10,000+ characters of sections, lists, code and links.
fn long_reply() -> String {
    let mut reply = String::from(
        "Here is the full incident review you asked for. It's long — skim the headings.\n\n",
    );
    let mut n = 1;
    while reply.chars().count() < 12_000 {
        reply.push_str(&incident_section(n));
        n += 1;
    }
    reply.push_str("That's everything. Want a one-paragraph summary instead?");
    reply
}

/// One paragraph of many sentences and no line break: only sentence and word breaks help.
fn long_paragraph() -> String {
    let sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Meanwhile, the dog — unbothered — keeps sleeping in the sun.",
        "Nobody knows why the fox is in such a hurry!",
        "Perhaps it heard about the henhouse on the hill?",
        "Either way, the farmer’s “new fence” didn’t help much…",
    ];
    let mut paragraph = String::new();
    let mut i = 0;
    while paragraph.chars().count() < 6_000 {
        if !paragraph.is_empty() {
            paragraph.push(' ');
        }
        paragraph.push_str(sentences[i % sentences.len()]);
        i += 1;
    }
    paragraph
}

/// Text with no whitespace at all: the formatter has to cut inside it, between characters
/// that are whole on their own.
fn unbroken(unit: &str, chars: usize) -> String {
    let mut text = String::new();
    while text.chars().count() < chars {
        text.push_str(unit);
    }
    text
}

/// Every reply of the corpus, in a fixed order.
pub fn corpus() -> Vec<Reply> {
    let fixed = [
        ("greeting", GREETING),
        ("markdown-heavy trip plan", TRIP_PLAN),
        ("code blocks", CODE),
        ("links and long URLs", LINKS),
        ("curly quotes and typography", TYPOGRAPHY),
        ("emoji, ZWJ sequences and flags", EMOJI),
        ("CJK", CJK),
        ("RTL scripts and combining marks", SCRIPTS),
        ("Windows line ends", WINDOWS_LINES),
        ("empty", ""),
        ("whitespace only", " \n\t \r\n  "),
    ];
    let mut replies: Vec<Reply> = fixed
        .iter()
        .map(|(name, markdown)| Reply {
            name,
            markdown: (*markdown).to_string(),
        })
        .collect();
    let generated = [
        ("long Markdown reply (12k chars)", long_reply()),
        ("one long paragraph", long_paragraph()),
        (
            "long CJK without spaces",
            unbroken("天气很好，我们去公园散步吧。", 5_000),
        ),
        ("flags without spaces", unbroken("🇺🇸🇯🇵🇩🇪🇧🇷🇮🇳", 5_000)),
        ("ZWJ emoji without spaces", unbroken("👨‍👩‍👧‍👦👩🏽‍💻🏳️‍🌈", 5_000)),
        (
            "a token longer than any message",
            unbroken("QmFzZTY0RW5jb2RlZERhdGE", 9_000),
        ),
        (
            "mixed reply repeated",
            [TRIP_PLAN, CODE, LINKS, TYPOGRAPHY, EMOJI, CJK, SCRIPTS].join("\n\n"),
        ),
    ];
    replies.extend(
        generated
            .into_iter()
            .map(|(name, markdown)| Reply { name, markdown }),
    );
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_covers_what_it_promises() {
        let replies = corpus();
        let all: String = replies.iter().map(|r| r.markdown.as_str()).collect();
        assert!(replies.iter().any(|r| r.markdown.chars().count() >= 10_000));
        for needle in [
            "```", "](http", "“", "\u{200d}", "🇯🇵", "東京", "\r\n", "| Day",
        ] {
            assert!(all.contains(needle), "{needle}");
        }
        let mut names: Vec<_> = replies.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), replies.len(), "names are unique");
    }
}
