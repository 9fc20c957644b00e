//! Benchmarks of the SMS platform's hot paths: `cargo bench -p platform-sms --bench sms`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hermes_twilio::segments;
use hermes_twilio::signature::{compute_signature, url_variants, verify_signature};
use hermes_twilio::webhook::parse_form;
use platform_api::text;
use platform_sms::format;

/// A realistic agent reply of about 4,000 characters: headings, lists, links, code, typography.
fn reply_4000() -> String {
    let mut reply = String::from(
        "# Your trip to Lisbon\n\nHere’s a **3-day plan** based on what you told me — \
         you like food, walking and *not* too many museums.\n\n",
    );
    let days = [
        ("Day 1", "Alfama and Baixa", "castle"),
        ("Day 2", "Belém and the riverside", "monastery"),
        ("Day 3", "Sintra", "palace"),
    ];
    for (n, (day, area, sight)) in days.iter().enumerate() {
        reply.push_str(&format!(
            "## {day}: {area}\n\n\
             Start early: the {sight} opens at 9:30 and by 11 the queue is “long enough to regret \
             it”. Tickets are €10 online, **€12** at the door.\n\n\
             1. Breakfast at a *pastelaria* near the metro\n\
             2. Walk up to the {sight} (about 25 minutes, steep)\n\
             3. Lunch: grilled sardines, if it’s the season…\n   \
                - cheaper inland, two streets back\n   \
                - ask for the *prato do dia*\n\
             4. Sunset at the miradouro\n\n\
             > Tip: the 28 tram is packed after 10am; walking is faster downhill.\n\n\
             Map: [{area}](https://maps.example.com/?q=lisbon+{n}&zoom=15) · \
             Tickets: <https://tickets.example.com/lisbon/{n}>\n\n",
        ));
    }
    reply.push_str(
        "## Budget\n\n| Item | Per day |\n|---|---:|\n| Food | €35 |\n| Transport | €8 |\n| \
         Sights | €15 |\n\nTo check the tram times, run:\n\n```\ncurl -s https://api.example.com/\
         carris/28 | jq '.next[0]'\n```\n\n",
    );
    while reply.chars().count() < 3900 {
        reply.push_str(
            "If it rains, the Gulbenkian is worth it even if you skip museums elsewhere; the \
             garden alone is a good hour. ",
        );
    }
    reply.push_str("\n\nHave a great trip! 🇵🇹");
    reply
}

fn format_4000_char_reply(c: &mut Criterion) {
    let reply = reply_4000();
    c.bench_function("format_4000_char_reply", |b| {
        b.iter(|| format::format(black_box(&reply)))
    });
}

/// The stages of `format_4000_char_reply`, each on its own input, to see where the time goes:
/// pulldown-cmark's parse alone, Markdown to plain text (parse included), GSM-7 normalisation of
/// the plain text, and a greedy numbered split of the normalised text (no segment-aware choice).
fn format_stages(c: &mut Criterion) {
    let reply = reply_4000();
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    c.bench_function("format_stage_parse", |b| {
        b.iter(|| pulldown_cmark::Parser::new_ext(black_box(&reply), options).count())
    });
    c.bench_function("format_stage_markdown_to_plain", |b| {
        b.iter(|| text::markdown_to_plain(black_box(&reply)))
    });
    let plain = text::markdown_to_plain(&reply);
    c.bench_function("format_stage_normalize", |b| {
        b.iter(|| segments::gsm_normalize(black_box(&plain)))
    });
    let normalized = segments::gsm_normalize(&plain);
    c.bench_function("format_stage_split_greedy", |b| {
        b.iter(|| text::numbered_spans_with(black_box(&normalized), 1600, text::greedy))
    });
}

fn segments_1600(c: &mut Criterion) {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    let text: String = text.chars().take(1600).collect();
    c.bench_function("segments_1600", |b| {
        b.iter(|| segments::segments(black_box(&text)))
    });
}

/// Signature check and form parse of a typical inbound SMS webhook, as the handler does them.
fn verify_typical_webhook(c: &mut Criterion) {
    let token = "f0f19c557067cbbe80c46d1fb6dfbdb0";
    let url = "https://bot.example.com/webhooks/twilio";
    let params: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM4283fefc63f0cd0e873a0000c6d07ef7"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM4283fefc63f0cd0e873a0000c6d07ef7"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        (
            "Body",
            "Can you remind me what time the dentist is tomorrow? Thanks!",
        ),
        ("FromCountry", "US"),
        ("To", "+14155550199"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM4283fefc63f0cd0e873a0000c6d07ef7"),
        ("AccountSid", "ACb77e90d3593ad699fc1f7cd5bb2e35cb"),
        ("From", "+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let body = serde_urlencoded::to_string(&params).expect("form");
    let signature = compute_signature(token, url, &params);
    let variants = url_variants(url);
    c.bench_function("parse_and_verify_webhook", |b| {
        b.iter(|| {
            let parsed = parse_form(black_box(body.as_bytes())).expect("parses");
            verify_signature(token, &variants, &parsed, black_box(&signature)).expect("valid")
        })
    });
}

criterion_group!(
    benches,
    format_4000_char_reply,
    segments_1600,
    verify_typical_webhook
);
criterion_group!(stages, format_stages);
criterion_main!(benches, stages);
