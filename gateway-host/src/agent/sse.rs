//! Server-sent events as chat-completions servers stream them.
//!
//! Written here rather than taken from a crate: an OpenAI-compatible stream uses only the
//! `data:` field (one JSON chunk an event, then `[DONE]`), and the rest of the format (event
//! names, ids, retry hints) has no meaning for a reply. A few lines read it straight from the
//! response's byte chunks, bounded in memory, where a crate would bring its own stream and error
//! types to adapt.

/// An event's data longer than this is an error: no chunk of a reply comes near it.
const EVENT_LIMIT: usize = 1024 * 1024;

/// Splits a byte stream into the data of its events.
#[derive(Default)]
pub struct Events {
    line: Vec<u8>,
    data: Option<String>,
}

impl Events {
    /// Feeds `bytes`, returning the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> anyhow::Result<Vec<String>> {
        let mut done = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > EVENT_LIMIT {
                    anyhow::bail!("the agent server streamed a line over {EVENT_LIMIT} bytes");
                }
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            if line.is_empty() {
                done.extend(self.data.take());
                continue;
            }
            let Some(value) = line.strip_prefix(b"data:") else {
                // Comments (`: keep-alive`) and fields other than data carry nothing here.
                continue;
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            let value = String::from_utf8_lossy(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(&value);
                    if data.len() > EVENT_LIMIT {
                        anyhow::bail!(
                            "the agent server streamed an event over {EVENT_LIMIT} bytes"
                        );
                    }
                }
                None => self.data = Some(value.into_owned()),
            }
        }
        Ok(done)
    }

    /// The data of an event the stream ended in without its blank line.
    pub fn finish(&mut self) -> Option<String> {
        if !self.line.is_empty() {
            self.push(b"\n").ok()?;
        }
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunk_boundaries() {
        let mut events = Events::default();
        let stream = b": keep-alive\n\ndata: {\"a\":1}\r\n\r\ndata: one\ndata: two\n\nevent: x\ndata: [DONE]\n\n";
        let mut seen = Vec::new();
        for chunk in stream.chunks(3) {
            seen.extend(events.push(chunk).unwrap());
        }
        assert_eq!(seen, ["{\"a\":1}", "one\ntwo", "[DONE]"]);
        assert_eq!(events.finish(), None);
        let mut cut = Events::default();
        assert!(cut.push(b"data: tail").unwrap().is_empty());
        assert_eq!(cut.finish().as_deref(), Some("tail"));
        let mut huge = Events::default();
        assert!(huge.push(&vec![b'x'; EVENT_LIMIT + 1]).is_err());
    }
}
