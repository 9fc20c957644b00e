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
    /// The passes of the gateway's loops, by loop.
    passes: Mutex<BTreeMap<&'static str, Passes>>,
    agent_latency: Mutex<Histogram>,
}

/// How far one loop (dispatcher, sender, scheduler) has got.
#[derive(Clone, Copy, Default)]
struct Passes {
    begun: u64,
    /// The latest pass if it found nothing to do, else 0.
    idle: u64,
}

/// One unit of a live gauge, given back when dropped (however the work holding it ends).
pub struct Held(Arc<AtomicI64>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
        "hermes_agent_turns_running" => "Agent turns under way (running or waiting for a slot)",
        "hermes_loop_passes_total" => "Passes begun by each of the gateway's loops",
        "hermes_loop_idle_pass" => "The loop's latest pass if it found nothing to do, else 0",
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

    /// Counts one unit of a live gauge until the returned [`Held`] is dropped.
    pub fn hold(&self, name: &'static str) -> Held {
        let gauge = self.live_gauge(name);
        gauge.fetch_add(1, Ordering::AcqRel);
        Held(gauge)
    }

    /// Counts a pass of `loop_name` as begun, before it reads anything; returns its number
    /// for [`Metrics::end_pass`].
    pub fn begin_pass(&self, loop_name: &'static str) -> u64 {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        let passes = passes.entry(loop_name).or_default();
        passes.begun += 1;
        passes.begun
    }

    /// Records whether pass `pass` of `loop_name` found nothing to do. A reader that saw
    /// `hermes_loop_passes_total` at `n` and later `hermes_loop_idle_pass` above `n` knows the
    /// loop was idle after its first read: how a test waits for the gateway to settle.
    pub fn end_pass(&self, loop_name: &'static str, pass: u64, idle: bool) {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        passes.entry(loop_name).or_default().idle = if idle { pass } else { 0 };
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
        let passes = self
            .passes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        type Figure = fn(&Passes) -> u64;
        let families: [(&str, &str, Figure); 2] = [
            ("hermes_loop_passes_total", "counter", |p| p.begun),
            ("hermes_loop_idle_pass", "gauge", |p| p.idle),
        ];
        for (name, kind, value) in families.into_iter().filter(|_| !passes.is_empty()) {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", help(name));
            for (loop_name, p) in &passes {
                let _ = writeln!(out, "{name}{{loop=\"{loop_name}\"}} {}", value(p));
            }
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
        let turn = m.hold("hermes_agent_turns_running");
        let other = m.hold("hermes_agent_turns_running");
        drop(other);
        let first = m.begin_pass("sender");
        m.end_pass("sender", first, true);
        let second = m.begin_pass("sender");
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
        assert!(text.contains("hermes_agent_turns_running 1"));
        drop(turn);
        assert!(m.render().contains("hermes_agent_turns_running 0"));
        assert!(text.contains("hermes_loop_passes_total{loop=\"sender\"} 2"));
        assert!(text.contains("hermes_loop_idle_pass{loop=\"sender\"} 1"));
        m.end_pass("sender", second, false);
        assert!(
            m.render()
                .contains("hermes_loop_idle_pass{loop=\"sender\"} 0")
        );
        assert!(text.contains("hermes_agent_turn_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("hermes_agent_turn_seconds_bucket{le=\"0.25\"} 0"));
    }
}
