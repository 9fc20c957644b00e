//! Benchmarks of the SMS platform's hot paths: `cargo bench -p platform-sms --bench sms`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use platform_sms::{format, segments};

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

fn segments_1600(c: &mut Criterion) {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    let text: String = text.chars().take(1600).collect();
    c.bench_function("segments_1600", |b| {
        b.iter(|| segments::segments(black_box(&text)))
    });
}

criterion_group!(benches, format_4000_char_reply, segments_1600);
criterion_main!(benches);
