//! Replies that stream, on the real binary: the time from the model's first token (the fake
//! LLM writing the first piece of a streamed answer) to the first text the user sees (a
//! Telegram draft, a Discord message posted), over a few hundred streamed turns.
//!
//! The release `hermes gateway` talks to the Telegram or the Discord emulator with the fake LLM
//! as its `openai` agent, all three in this process, so both instants are read on one clock.
//! [`CHATS`] users write at once, each waiting for the finished reply to its message and at
//! least [`THINK`] between two messages of its own (a person reading, and Discord's bucket of 5
//! messages per channel per 5 s never the limit); each reply is [`WORDS`] words streamed a
//! word every [`PACE`], with as many turns allowed at once as there are users. Beside the
//! measure it reports the time from the user's message to the fake LLM starting its answer,
//! and from there to its first token. It also checks that every call to the service was
//! accepted (no 429) and counts the turns whose first text was a draft or a posted live
//! message.
//!
//! Run: `cargo bench -p gateway-tests --bench stream` (numbers go into BENCHMARKS.md);
//! `-- telegram` or `-- discord` runs one platform.
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::fake_llm::FakeLlm;
use gateway_tests::harness::*;
use platform_discord::emulator as discord;
use platform_telegram::emulator as telegram;
use stats::{ms, percentile};

mod stats;

/// Users writing at once, each in a chat of their own.
const CHATS: usize = 20;
/// Messages each user sends, one after the other.
const TURNS_PER_CHAT: usize = 15;
/// Words in each reply.
const WORDS: usize = 30;
/// Time between two words of a reply.
const PACE: Duration = Duration::from_millis(20);
/// The least time between two messages of one user.
const THINK: Duration = Duration::from_secs(2);
/// The longest wait for one reply.
const WAIT: Duration = Duration::from_secs(60);

/// The reply every turn gets.
fn reply() -> String {
    (1..=WORDS)
        .map(|n| format!("word{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fake LLM streaming [`reply`] at [`PACE`].
fn llm() -> FakeLlm {
    let llm = FakeLlm::start();
    llm.set_reply(&reply());
    llm.set_stream_pace(PACE);
    llm
}

/// The agent's part of a gateway's environment.
fn agent_env(llm: &FakeLlm) -> Vec<(String, String)> {
    [
        ("HERMES_AGENT", "openai".to_string()),
        ("HERMES_AGENT_URL", llm.base_url()),
        ("HERMES_AGENT_MODEL", "bench-model".to_string()),
        // Every user's turn starts at once (the default, 8, would queue them).
        ("HERMES_MAX_CONCURRENT_TURNS", CHATS.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One message a user sent: in which chat, its text (unique, so that the fake LLM's record of
/// it can be found), and when.
struct Turn {
    chat: usize,
    prompt: String,
    written: Instant,
}

/// Every user sends [`TURNS_PER_CHAT`] messages with `write`, waiting until `answered(chat,
/// n)` says the `n`th reply is finished; returns the turns.
fn converse(
    write: impl Fn(usize, &str) + Send + Sync + 'static,
    answered: impl Fn(usize, usize) -> bool + Send + Sync + 'static,
) -> Vec<Turn> {
    let write = Arc::new(write);
    let answered = Arc::new(answered);
    let users: Vec<_> = (0..CHATS)
        .map(|chat| {
            let (write, answered) = (write.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut turns = Vec::with_capacity(TURNS_PER_CHAT);
                for n in 0..TURNS_PER_CHAT {
                    let prompt = format!("chat{chat} turn{n}: tell me something");
                    let written = Instant::now();
                    write(chat, &prompt);
                    let deadline = written + WAIT;
                    while !answered(chat, n + 1) {
                        assert!(Instant::now() < deadline, "no reply to {prompt:?}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    turns.push(Turn {
                        chat,
                        prompt,
                        written,
                    });
                    std::thread::sleep((written + THINK).saturating_duration_since(Instant::now()));
                }
                turns
            })
        })
        .collect();
    users
        .into_iter()
        .flat_map(|u| u.join().expect("a user thread"))
        .collect()
}

/// What one platform's run measured.
struct Measured {
    /// From the model's first token to the first text the user saw, per turn.
    latencies: Vec<Duration>,
    /// From the user's message to the fake LLM starting its answer, per turn.
    to_request: Vec<Duration>,
    /// From the fake LLM starting its answer to its first token, per turn.
    to_first_token: Vec<Duration>,
}

/// Pairs each turn's first token with the first text `visible(chat, since)` found after it.
fn measure(
    llm: &FakeLlm,
    turns: &[Turn],
    visible: impl Fn(usize, Instant) -> Option<Instant>,
) -> Measured {
    let streamed = llm.streamed();
    let mut latencies = Vec::with_capacity(turns.len());
    let mut to_request = Vec::with_capacity(turns.len());
    let mut to_first_token = Vec::with_capacity(turns.len());
    for turn in turns {
        let answer = streamed.iter().find(|a| a.prompt == turn.prompt);
        let (started, first_token) = answer
            .and_then(|a| Some((a.started, a.first_piece?)))
            .unwrap_or_else(|| panic!("{:?} was not answered streaming", turn.prompt));
        let shown = visible(turn.chat, first_token)
            .unwrap_or_else(|| panic!("nothing was shown for {:?}", turn.prompt));
        latencies.push(shown - first_token);
        to_request.push(started - turn.written);
        to_first_token.push(first_token - started);
    }
    latencies.sort();
    to_request.sort();
    to_first_token.sort();
    Measured {
        latencies,
        to_request,
        to_first_token,
    }
}

fn row(name: &str, measured: &Measured) {
    let l = &measured.latencies;
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} |",
        l.len(),
        ms(percentile(l, 0.5)),
        ms(percentile(l, 0.9)),
        ms(percentile(l, 0.99)),
        ms(l.last().copied().unwrap_or_default()),
        ms(percentile(&measured.to_request, 0.5)),
        ms(percentile(&measured.to_first_token, 0.5)),
    );
}

/// Telegram private chats: the first text is the first draft (`sendMessageDraft`).
fn telegram_run() {
    let llm = llm();
    let emu = Arc::new(
        telegram::Emulator::start(telegram::EmulatorConfig::default()).expect("the emulator"),
    );
    let people: Vec<telegram::Person> = (0..CHATS)
        .map(|i| telegram::Person::new(600_000 + i as i64, "User"))
        .collect();
    let home = Home::new();
    let mut env = agent_env(&llm);
    env.extend(
        [
            ("TELEGRAM_BOT_TOKEN", emu.token()),
            ("TELEGRAM_API_BASE_URL", emu.base_url()),
            ("TELEGRAM_ALLOW_ALL_USERS", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        gateway.wait_for_log("[telegram] polling for updates as @", WAIT),
        "{}",
        gateway.logs()
    );
    let turns = {
        let (emu, people) = (emu.clone(), people.clone());
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let reader = emu.clone();
        converse(
            move |chat, text| {
                emu.user_writes(&people[chat], text);
            },
            move |chat, n| reader.sent_to(ids[chat]).len() >= n,
        )
    };
    let measured = measure(&llm, &turns, |chat, since| {
        emu.first_visible(people[chat].id, since)
    });
    let drafts = emu.drafts();
    let refused = emu
        .draft_attempts()
        .iter()
        .chain(emu.attempts().iter())
        .filter(|a| a.status != Some(200))
        .count();
    // One draft_id per turn: the turns that showed a draft.
    let mut drafted: Vec<(i64, i64)> = drafts.iter().map(|d| (d.chat_id, d.draft_id)).collect();
    drafted.sort_unstable();
    drafted.dedup();
    println!(
        "\nTelegram: {} turns, {} of them shown as drafts first ({} draft updates), {} messages, {} calls refused",
        turns.len(),
        drafted.len(),
        drafts.len(),
        emu.sent().len(),
        refused
    );
    row("Telegram private chats (first draft)", &measured);
    drop(gateway);
}

/// Discord direct messages: the first text is the live message posted, then edited.
fn discord_run() {
    let llm = llm();
    let emu = Arc::new(
        discord::Emulator::start(discord::EmulatorConfig::new(
            "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbEnCh.stream-bench-token-0123456789abcdef",
        ))
        .expect("the emulator"),
    );
    let users: Vec<String> = (0..CHATS)
        .map(|i| format!("{}", 2_100_000_000_000_000_000u64 + i as u64))
        .collect();
    let channels: Vec<String> = users.iter().map(|u| emu.dm_channel(u)).collect();
    let home = Home::new();
    let mut env = agent_env(&llm);
    env.extend(
        [
            ("DISCORD_BOT_TOKEN", emu.token()),
            ("DISCORD_API_BASE_URL", emu.api_base_url()),
            ("DISCORD_ALLOW_ALL_USERS", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let gateway = Gateway::start_polling(home.path(), &env);
    assert!(
        emu.wait_until(WAIT, discord::Emulator::connected),
        "{}",
        gateway.logs()
    );
    let finished = reply();
    let turns = {
        let (writer, reader) = (emu.clone(), emu.clone());
        let channels = channels.clone();
        converse(
            move |chat, text| {
                writer.dm(&users[chat], text);
            },
            move |chat, n| {
                let done = reader
                    .messages()
                    .iter()
                    .filter(|m| m.channel_id == channels[chat] && m.content == finished)
                    .count();
                done >= n
            },
        )
    };
    let measured = measure(&llm, &turns, |chat, since| {
        emu.first_visible(&channels[chat], since)
    });
    let refused = emu
        .attempts()
        .iter()
        .chain(emu.edit_attempts().iter())
        .filter(|a| a.status != 200)
        .count();
    // A message posted with less than the finished reply was the reply shown as it grew.
    let live = emu
        .messages()
        .iter()
        .filter(|m| {
            emu.versions(&m.id)
                .first()
                .is_some_and(|v| v.content != reply())
        })
        .count();
    println!(
        "\nDiscord: {} turns, {} of them posted before the reply was finished, {} messages posted, {} edits, {} calls refused",
        turns.len(),
        live,
        emu.messages().len(),
        emu.edits().len(),
        refused
    );
    row("Discord direct messages (live message posted)", &measured);
    drop(gateway);
}

fn main() {
    // Harness flags (`--bench`) are accepted and ignored; `telegram` or `discord` runs one.
    println!("building the release binary…");
    hermes_bin();
    let args: Vec<String> = std::env::args().collect();
    let only = |name: &str| {
        let chosen = args.iter().any(|a| a == "telegram" || a == "discord");
        !chosen || args.iter().any(|a| a == name)
    };
    println!(
        "\n## First token to first visible text: {CHATS} users at once, {TURNS_PER_CHAT} messages each, a {WORDS}-word reply streamed a word every {} ms\n",
        PACE.as_millis()
    );
    println!(
        "| platform | turns | p50 | p90 | p99 | max | message → agent asked, p50 | asked → first token, p50 |\n|---|---|---|---|---|---|---|---|"
    );
    if only("telegram") {
        telegram_run();
    }
    if only("discord") {
        discord_run();
    }
}
