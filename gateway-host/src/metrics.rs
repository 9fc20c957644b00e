//! Prometheus counters and histograms, served at `GET /metrics` on every listener.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the agent-latency histogram, in seconds.
const BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The gateway's metrics; cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    /// Counters by name, then by rendered labels.
    counters: Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>,
    gauges: Mutex<BTreeMap<&'static str, i64>>,
    /// Gauges that their owners update without a lock.
    live_gauges: Mutex<BTreeMap<&'static str, Arc<AtomicI64>>>,
    agent_latency: Mutex<Histogram>,
}

fn help(name: &str) -> &'static str {
    match name {
        "hermes_inbound_accepted_total" => "Inbound messages stored for processing",
        "hermes_inbound_rejected_total" => "Inbound requests rejected, by reason",
        "hermes_agent_turns_total" => "Agent turns, by outcome",
        "hermes_outbound_sent_total" => "Parts accepted by the provider",
        "hermes_outbound_retried_total" => "Sends that will be retried",
        "hermes_outbound_failed_total" => "Parts that were not delivered, by code",
        "hermes_segments_sent_total" => "Billed units (SMS segments) sent",
        "hermes_outbox_depth" => "Parts waiting to be sent",
        "hermes_inbound_pending" => "Inbound messages waiting for a turn",
        "hermes_inbound_unimported" => {
            "Inbound messages acknowledged and journaled, not yet in the database"
        }
        _ => "",
    }
}

impl Metrics {
    /// Adds `by` to a counter with the given labels (`[("platform", "sms"), ("reason",
    /// "signature")]`). Only the first update of a series allocates.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], by: u64) {
        thread_local! {
            static RENDERED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        RENDERED.with(|rendered| {
            let mut rendered = rendered.borrow_mut();
            rendered.clear();
            render_labels(&mut rendered, labels);
            let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let series = counters.entry(name).or_default();
            match series.get_mut(rendered.as_str()) {
                Some(value) => *value += by,
                None => {
                    series.insert(rendered.clone(), by);
                }
            }
        });
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, value: i64) {
        self.gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, value);
    }

    /// A gauge its owner updates directly (`fetch_add`), for a value that changes on a hot path.
    pub fn live_gauge(&self, name: &'static str) -> Arc<AtomicI64> {
        self.live_gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .clone()
    }

    /// Records one agent turn's latency.
    pub fn observe_agent(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut h = self.agent_latency.lock().unwrap_or_else(|p| p.into_inner());
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The current value of a counter (for tests and status).
    pub fn get(&self, name: &'static str, labels: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters
            .get(name)
            .and_then(|series| series.get(labels))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, series) in &counters {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
            for (labels, value) in series {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        let mut gauges = self
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, gauge) in self
            .live_gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            gauges.insert(name, gauge.load(Ordering::Acquire));
        }
        for (name, value) in &gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} gauge\n{name} {value}",
                help(name)
            );
        }
        let h = self.agent_latency.lock().unwrap_or_else(|p| p.into_inner());
        let name = "hermes_agent_turn_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Agent turn latency\n# TYPE {name} histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                h.counts.get(i).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            h.count, h.sum, h.count
        );
        out
    }
}

/// Appends Prometheus labels to `out`, escaping values.
fn render_labels(out: &mut String, pairs: &[(&str, &str)]) {
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histogram() {
        let m = Metrics::default();
        m.inc(
            "hermes_inbound_rejected_total",
            &[("platform", "sms"), ("reason", "signature")],
        );
        m.inc(
            "hermes_inbound_rejected_total",
            &[("platform", "sms"), ("reason", "signature")],
        );
        m.inc(
            "hermes_outbound_failed_total",
            &[("platform", "odd\"name\\"), ("code", "a\nb")],
        );
        m.set("hermes_outbox_depth", 3);
        let live = m.live_gauge("hermes_inbound_unimported");
        live.fetch_add(5, Ordering::Relaxed);
        assert!(Arc::ptr_eq(
            &live,
            &m.live_gauge("hermes_inbound_unimported")
        ));
        live.fetch_sub(1, Ordering::Relaxed);
        m.observe_agent(Duration::from_millis(300));
        let text = m.render();
        assert!(
            text.contains("hermes_inbound_rejected_total{platform=\"sms\",reason=\"signature\"} 2")
        );
        assert!(text.contains(
            "hermes_outbound_failed_total{platform=\"odd\\\"name\\\\\",code=\"a\\nb\"} 1"
        ));
        assert!(text.contains("hermes_outbox_depth 3"));
        assert!(
            text.contains("# TYPE hermes_inbound_unimported gauge\nhermes_inbound_unimported 4")
        );
        assert!(text.contains("hermes_agent_turn_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("hermes_agent_turn_seconds_bucket{le=\"0.25\"} 0"));
    }
}
