//! A reply shown while the agent writes it: the presenter of one turn.
//!
//! A backend that streams publishes the whole reply so far ([`crate::agent::Live`]); the
//! presenter shows it in the chat as the platform can ([`Platform::show_live`]: a Telegram
//! draft, a Discord message edited as it grows). It shows the first text as soon as there is
//! any (what the user waits for), then at most once per interval the platform names, always
//! the latest text, formatted as the finished reply's first part will be: the finished reply,
//! sent through the outbox as every reply is, then changes nothing that was visible.
//!
//! A platform that posts a message for it reports the message's id ([`LiveView::message`]);
//! the presenter has it recorded in the store before anything else, so that a turn run again
//! after a crash edits that message rather than posting another. A post whose outcome is
//! unknown is looked up at the provider for the same reason.
use std::cell::Cell;
use std::time::{Duration, SystemTime};

use platform_api::{LiveView, Lookup, Part, Platform, SendError};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

/// Shows the reply in `text` as it grows, until its sender is dropped (the agent is done),
/// and returns the view: the message that shows it, if one was posted. An update under way
/// when the agent finishes is let finish, so that what it posted is known. `record` stores a
/// posted message's id (false when it could not: nothing is edited then); `visible` turns
/// true once the user sees text.
pub(super) async fn present(
    platform: &dyn Platform,
    chat: &str,
    every: Duration,
    mut view: LiveView,
    mut text: watch::Receiver<String>,
    record: impl Fn(&str) -> bool,
    visible: &Cell<bool>,
) -> LiveView {
    let mut shown = String::new();
    // Text arrived that is not shown yet.
    let mut fresh = false;
    loop {
        if !fresh && text.changed().await.is_err() {
            return view;
        }
        fresh = false;
        let body = first_part(platform, &text.borrow_and_update());
        let mut next = Instant::now();
        if !body.is_empty() && body != shown {
            next += every;
            let posted = view.message.is_some();
            let attempted_at = SystemTime::now();
            match platform.show_live(chat, &mut view, &body).await {
                Ok(()) => {
                    shown = body;
                    visible.set(true);
                }
                Err(SendError::Retry { after, message, .. }) => {
                    info!(
                        "showing the reply as it is written: {message}; showing newer text later"
                    );
                    next = next.max(Instant::now() + after.unwrap_or_default());
                }
                Err(err) => {
                    // The finished reply still goes out; only the live view ends here.
                    warn!(
                        "showing the reply as it is written failed, the finished reply follows: {err}"
                    );
                    if !posted && matches!(err, SendError::Ambiguous { .. }) {
                        view.message = find_posted(platform, chat, &body, attempted_at).await;
                        if let Some(message) = &view.message {
                            record(message);
                        }
                    }
                    return view;
                }
            }
            if !posted
                && let Some(message) = &view.message
                && !record(message)
            {
                warn!("could not record the message showing the reply; it is not edited further");
                return view;
            }
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => break,
                changed = text.changed() => match changed {
                    Ok(()) => fresh = true,
                    Err(_) => return view,
                },
            }
        }
    }
}

/// The message a post of `body` whose outcome is unknown created, if the provider lists it:
/// the finished reply then edits it instead of being a second message.
async fn find_posted(
    platform: &dyn Platform,
    chat: &str,
    body: &str,
    attempted_at: SystemTime,
) -> Option<String> {
    match platform
        .lookup(chat, &Part::plain(body), attempted_at)
        .await
    {
        Lookup::Matches(found) => found.into_iter().next().map(|r| r.provider_id),
        Lookup::Failed(_) | Lookup::Unsupported => None,
    }
}

/// What the finished reply's first part would be if `text` were all of it.
fn first_part(platform: &dyn Platform, text: &str) -> String {
    platform
        .format(text)
        .into_iter()
        .next()
        .map(|part| part.body)
        .unwrap_or_default()
}

/// The draft id of a turn: non-zero, the same whenever the turn runs, within 31 bits.
pub(super) fn draft_id(turn_id: &str) -> i64 {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(turn_id.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    i64::from(n.max(1))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::Mutex;

    use platform_api::{AccessPolicy, HomeChannel, Part, Receipt, async_trait};

    use super::*;

    /// A platform that posts a message on the first update and records every update.
    #[derive(Default)]
    struct Screen {
        access: AccessPolicy,
        shown: Mutex<Vec<(Instant, String, Option<String>)>>,
        /// Answers 429 to this update (counted from 0), once.
        limited_at: Option<usize>,
        /// The first post is made but its answer lost (a timeout).
        lost_answer: bool,
    }

    #[async_trait(?Send)]
    impl Platform for Screen {
        fn name(&self) -> &'static str {
            "screen"
        }
        fn access(&self) -> &AccessPolicy {
            &self.access
        }
        fn format(&self, markdown: &str) -> Vec<Part> {
            // Parts of ten characters: the first one only is shown live.
            let chars: Vec<char> = markdown.chars().collect();
            chars
                .chunks(10)
                .map(|c| Part::plain(c.iter().collect::<String>()))
                .collect()
        }
        async fn send(&self, _chat: &str, _part: &Part) -> Result<Receipt, SendError> {
            unreachable!("the presenter never sends")
        }
        fn home_channel(&self) -> Option<HomeChannel> {
            None
        }
        async fn lookup(&self, _chat: &str, part: &Part, _at: std::time::SystemTime) -> Lookup {
            let shown = self.shown.lock().unwrap();
            let posted = shown.iter().any(|s| s.1 == part.body);
            Lookup::Matches(
                posted
                    .then(|| Receipt {
                        provider_id: "m7".into(),
                        segments: None,
                    })
                    .into_iter()
                    .collect(),
            )
        }
        async fn show_live(
            &self,
            _chat: &str,
            view: &mut LiveView,
            body: &str,
        ) -> Result<(), SendError> {
            let n = self.shown.lock().unwrap().len();
            if self.limited_at == Some(n) {
                self.shown
                    .lock()
                    .unwrap()
                    .push((Instant::now(), "429".into(), None));
                return Err(SendError::Retry {
                    after: Some(Duration::from_secs(3)),
                    code: None,
                    message: "rate limited".into(),
                });
            }
            let edited = view.message.clone();
            if self.lost_answer && edited.is_none() {
                self.shown
                    .lock()
                    .unwrap()
                    .push((Instant::now(), body.to_string(), None));
                return Err(SendError::Ambiguous {
                    message: "no answer within 15s".into(),
                });
            }
            view.message.get_or_insert_with(|| "m1".to_string());
            self.shown
                .lock()
                .unwrap()
                .push((Instant::now(), body.to_string(), edited));
            Ok(())
        }
    }

    const EVERY: Duration = Duration::from_millis(500);

    /// Publishes `pieces`, one every `gap`, then ends the reply; returns what was shown and
    /// recorded.
    async fn run(screen: &Screen, pieces: &[&str], gap: Duration) -> (LiveView, Vec<String>, bool) {
        let (live, text) = watch::channel(String::new());
        let recorded = RefCell::new(Vec::new());
        let visible = Cell::new(false);
        let agent = async {
            let mut reply = String::new();
            for piece in pieces {
                reply.push_str(piece);
                live.send_replace(reply.clone());
                tokio::time::sleep(gap).await;
            }
            drop(live);
        };
        let record = |id: &str| {
            recorded.borrow_mut().push(id.to_string());
            true
        };
        let presented = present(
            screen,
            "chat",
            EVERY,
            LiveView::default(),
            text,
            record,
            &visible,
        );
        let ((), view) = tokio::join!(agent, presented);
        (view, recorded.into_inner(), visible.get())
    }

    #[actix_rt::test]
    async fn the_first_text_shows_at_once_and_later_text_at_most_once_an_interval() {
        tokio::time::pause();
        let screen = Screen::default();
        let started = Instant::now();
        let pieces = ["He", "llo", " th", "ere", " an", "d more"];
        let (view, recorded, visible) = run(&screen, &pieces, Duration::from_millis(200)).await;
        let shown = screen.shown.lock().unwrap();
        assert_eq!(shown[0].0, started, "no wait before the first text");
        assert_eq!(shown[0].1, "He");
        for pair in shown.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= EVERY,
                "{:?}",
                pair[1].0 - pair[0].0
            );
        }
        // Always the latest text, formatted as the first part; the message posted once and
        // recorded before it was edited.
        let bodies: Vec<&str> = shown.iter().map(|s| s.1.as_str()).collect();
        assert_eq!(bodies, ["He", "Hello th", "Hello ther"]);
        assert_eq!(shown[0].2, None);
        assert!(shown[1..].iter().all(|s| s.2.as_deref() == Some("m1")));
        assert_eq!(recorded, ["m1"]);
        assert_eq!(view.message.as_deref(), Some("m1"));
        assert!(visible);
    }

    #[actix_rt::test]
    async fn a_rate_limit_puts_the_next_update_off_and_the_end_of_the_reply_stops_it() {
        tokio::time::pause();
        let screen = Screen {
            limited_at: Some(1),
            ..Screen::default()
        };
        let started = Instant::now();
        let pieces = ["one ", "two ", "three ", "four ", "five ", "six"];
        let (_, _, _) = run(&screen, &pieces, Duration::from_millis(300)).await;
        let shown = screen.shown.lock().unwrap();
        let at: Vec<(Duration, &str)> = shown
            .iter()
            .map(|s| (s.0 - started, s.1.as_str()))
            .collect();
        assert_eq!(at[0], (Duration::ZERO, "one "));
        // The timer's millisecond may round the interval up.
        assert_eq!(at[1].1, "429");
        assert!(at[1].0 >= EVERY && at[1].0 <= EVERY + Duration::from_millis(1));
        // Nothing until the limit's three seconds are over, by when the reply had ended
        // (six pieces, 300 ms apart): no update is made after the agent is done.
        assert_eq!(at.len(), 2, "{at:?}");
    }

    #[actix_rt::test]
    async fn text_that_changes_nothing_visible_is_not_shown_again() {
        tokio::time::pause();
        let screen = Screen::default();
        // The first part (ten characters) is full after the second piece.
        let pieces = ["0123456", "789 and", " the", " rest", " of it"];
        run(&screen, &pieces, Duration::from_millis(600)).await;
        let bodies: Vec<String> = screen
            .shown
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.1.clone())
            .collect();
        assert_eq!(bodies, ["0123456", "0123456789"]);
    }

    #[actix_rt::test]
    async fn a_post_whose_answer_was_lost_is_found_and_recorded_not_posted_again() {
        tokio::time::pause();
        let screen = Screen {
            lost_answer: true,
            ..Screen::default()
        };
        let (view, recorded, _) = run(&screen, &["Hi", " there"], EVERY).await;
        assert_eq!(view.message.as_deref(), Some("m7"));
        assert_eq!(recorded, ["m7"]);
        // Nothing more was shown: the finished reply edits the message found.
        assert_eq!(screen.shown.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_turn_keeps_its_draft_id() {
        let id = draft_id("telegram-0a1b-5-7");
        assert_eq!(id, draft_id("telegram-0a1b-5-7"));
        assert_ne!(id, draft_id("telegram-0a1b-5-8"));
        assert!(id > 0 && id <= i64::from(i32::MAX));
    }
}
