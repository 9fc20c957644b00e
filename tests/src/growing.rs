//! Watching a reply grow: what a streaming agent backend publishes as it reads a stream.

/// Runs `ask` on an actix system of its own, giving it the channel a streaming backend
/// publishes the reply to as it grows; returns its outcome and every text the channel showed,
/// in order. The channel closes when `ask`'s future drops it.
pub fn watch_growing<T, F, Fut>(ask: F) -> (T, Vec<String>)
where
    F: FnOnce(tokio::sync::watch::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    actix_rt::System::new().block_on(async move {
        let (live, mut updates) = tokio::sync::watch::channel(String::new());
        let watcher = actix_rt::spawn(async move {
            let mut seen = Vec::new();
            while updates.changed().await.is_ok() {
                seen.push(updates.borrow_and_update().clone());
            }
            seen
        });
        let outcome = ask(live).await;
        (outcome, watcher.await.expect("the watcher ends"))
    })
}
