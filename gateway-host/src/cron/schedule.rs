//! When a job runs: cron expressions, intervals, one-shot delays and fixed times, evaluated in
//! the gateway's time zone.
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use platform_api::{ConfigError, ConfigSection};

use crate::settings;

/// The accepted schedule forms, shown when a schedule is rejected.
pub const FORMS: &str = "accepted schedules:
  0 9 * * 1-5                a 5-field cron expression (minute hour day month weekday)
  every 30m, every 2h        a repeating interval (units: s, m, h, d; at least 1m)
  30m, 2h, 1d                once, that long after the job is added
  2026-11-24T09:00:00+01:00  once, at an RFC 3339 time";

/// The longest interval or delay accepted: ten years, far below any overflow.
const MAX_SECONDS: u64 = 10 * 366 * 86_400;

/// A schedule that cannot be used, with the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {input:?}: {problem}\n{FORMS}")]
pub struct ScheduleError {
    /// What the user wrote.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A unit of an interval, kept as written so that a schedule displays the way it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `s`.
    Second,
    /// `m`.
    Minute,
    /// `h`.
    Hour,
    /// `d`.
    Day,
}

impl Unit {
    fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Second => "s",
            Unit::Minute => "m",
            Unit::Hour => "h",
            Unit::Day => "d",
        }
    }

    fn parse(word: &str) -> Option<Unit> {
        match word {
            "s" | "sec" | "secs" | "second" | "seconds" => Some(Unit::Second),
            "m" | "min" | "mins" | "minute" | "minutes" => Some(Unit::Minute),
            "h" | "hr" | "hrs" | "hour" | "hours" => Some(Unit::Hour),
            "d" | "day" | "days" => Some(Unit::Day),
            _ => None,
        }
    }
}

/// A length of time such as `30m`: an amount of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    /// How many units (at least 1).
    pub amount: u64,
    /// The unit.
    pub unit: Unit,
}

impl Interval {
    /// Its length.
    pub fn delta(self) -> TimeDelta {
        // Bounded by MAX_SECONDS at parse time, so the conversion cannot fail.
        TimeDelta::seconds(i64::try_from(self.amount * self.unit.seconds()).unwrap_or(i64::MAX))
    }

    fn seconds(self) -> u64 {
        self.amount.saturating_mul(self.unit.seconds())
    }

    /// Parses `30m`, `2 h`, `1day`; `None` when the text is not an interval at all.
    fn parse(text: &str) -> Option<Result<Interval, String>> {
        let text = text.trim().to_ascii_lowercase();
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, unit) = text.split_at(digits);
        let unit = Unit::parse(unit.trim())?;
        let Ok(amount) = number.parse::<u64>() else {
            return Some(Err(format!("{number} is too large")));
        };
        let interval = Interval { amount, unit };
        Some(if amount == 0 {
            Err("the interval must be longer than 0".to_string())
        } else if interval.seconds() > MAX_SECONDS {
            Err("the interval is longer than ten years".to_string())
        } else {
            Ok(interval)
        })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// A cron expression with the text it was written as.
#[derive(Clone, Debug)]
pub struct CronExpr {
    text: String,
    cron: Box<Cron>,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronExpr {}

impl CronExpr {
    fn parse(text: &str) -> Result<CronExpr, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day month weekday), this has {}",
                fields.len()
            ));
        }
        let text = fields.join(" ");
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&text)
            .map_err(|e| e.to_string())?;
        Ok(CronExpr {
            text,
            cron: Box::new(cron),
        })
    }

    fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// When a job runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// A 5-field cron expression, evaluated in the gateway's time zone.
    Cron(CronExpr),
    /// Repeats at this interval of real time.
    Every(Interval),
    /// Runs once, this long after the job was added.
    Delay(Interval),
    /// Runs once, at this time.
    At(DateTime<FixedOffset>),
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(input: &str) -> Result<Schedule, ScheduleError> {
        let error = |problem: String| ScheduleError {
            input: input.to_string(),
            problem,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(error("the schedule is empty".to_string()));
        }
        let lower = text.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("every") {
            let rest = rest.trim();
            let interval = match Interval::parse(rest) {
                Some(Ok(interval)) => interval,
                Some(Err(problem)) => return Err(error(problem)),
                None => return Err(error(format!("{rest:?} is not an interval like 30m"))),
            };
            if interval.seconds() < 60 {
                return Err(error("the shortest repeating interval is 1m".to_string()));
            }
            return Ok(Schedule::Every(interval));
        }
        if let Some(interval) = Interval::parse(text) {
            return interval.map(Schedule::Delay).map_err(error);
        }
        if text.split_whitespace().count() > 1 {
            return CronExpr::parse(text).map(Schedule::Cron).map_err(error);
        }
        DateTime::parse_from_rfc3339(text)
            .map(Schedule::At)
            .map_err(|e| {
                error(format!(
                    "not a cron expression, interval or RFC 3339 time ({e})"
                ))
            })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(expr) => f.write_str(&expr.text),
            Schedule::Every(interval) => write!(f, "every {interval}"),
            Schedule::Delay(interval) => write!(f, "{interval}"),
            Schedule::At(at) => f.write_str(&at.to_rfc3339()),
        }
    }
}

impl Schedule {
    /// Whether the job runs only once.
    pub fn is_one_shot(&self) -> bool {
        matches!(self, Schedule::Delay(_) | Schedule::At(_))
    }

    /// The first run of a job added at `now`; an error when it would never run.
    pub fn first_run(&self, now: DateTime<Utc>, zone: Tz) -> Result<DateTime<Utc>, ScheduleError> {
        let never = |problem: &str| ScheduleError {
            input: self.to_string(),
            problem: problem.to_string(),
        };
        match self {
            Schedule::Cron(expr) => expr
                .next_after(now, zone)
                .ok_or_else(|| never("this expression never matches a date")),
            Schedule::Every(interval) | Schedule::Delay(interval) => Ok(now + interval.delta()),
            Schedule::At(at) if at.with_timezone(&Utc) > now => Ok(at.with_timezone(&Utc)),
            Schedule::At(_) => Err(never("this time has already passed")),
        }
    }

    /// The run after one that was due at `due` and started at `now`; `None` for one-shots.
    ///
    /// A job that was missed (the gateway was down) runs once when noticed, and its next run
    /// counts from `now`: missed ticks are not made up one by one.
    pub fn next_run(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(expr) => expr.next_after(now.max(due), zone),
            Schedule::Every(interval) => {
                let on_time = due + interval.delta();
                Some(if on_time > now {
                    on_time
                } else {
                    now + interval.delta()
                })
            }
            Schedule::Delay(_) | Schedule::At(_) => None,
        }
    }
}

/// The time zone schedules are evaluated in: `HERMES_TIMEZONE`, else the local zone, else UTC.
pub fn zone(section: &ConfigSection) -> Result<Tz, ConfigError> {
    if let Some(value) = section.get(settings::TIMEZONE.env) {
        let name = value.text.trim();
        return Tz::from_str(name).map_err(|_| {
            ConfigError::new(
                settings::TIMEZONE.env,
                Some(value.origin.clone()),
                format!("unknown time zone {name:?}: use an IANA name such as Europe/Berlin or America/New_York"),
            )
        });
    }
    Ok(local_zone())
}

/// The zone of this machine: `TZ` when it names an IANA zone, else the system setting.
fn local_zone() -> Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .and_then(|tz| Tz::from_str(tz.trim_start_matches(':')).ok());
    from_env
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| Tz::from_str(&name).ok())
        })
        .unwrap_or(Tz::UTC)
}

/// A time as people read it in `zone`: `2026-11-24 09:00`.
pub fn local_time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_every_form_and_displays_it_canonically() {
        let cases = [
            ("0 9 * * 1-5", "0 9 * * 1-5"),
            ("  30   2 * *  * ", "30 2 * * *"),
            ("*/15 * * * mon-fri", "*/15 * * * mon-fri"),
            ("every 30m", "every 30m"),
            ("Every 2 hours", "every 2h"),
            ("every 1d", "every 1d"),
            ("every 90s", "every 90s"),
            ("30m", "30m"),
            ("45 sec", "45s"),
            ("2026-11-24T09:00:00+01:00", "2026-11-24T09:00:00+01:00"),
            ("2026-11-24T08:00:00Z", "2026-11-24T08:00:00+00:00"),
        ];
        for (input, shown) in cases {
            let schedule: Schedule = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(schedule.to_string(), shown, "{input}");
        }
        assert!("every 2h".parse::<Schedule>().unwrap() == "every 2 h".parse().unwrap());
        assert!("30m".parse::<Schedule>().unwrap().is_one_shot());
        assert!(!"every 30m".parse::<Schedule>().unwrap().is_one_shot());
    }

    #[test]
    fn rejects_what_is_not_a_schedule_and_shows_the_forms() {
        for input in [
            "",
            "every",
            "every 0m",
            "every 30s",
            "every fortnight",
            "0m",
            "30x",
            "99999999999999999999m",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "0 25 * * *",
            "tomorrow",
            "2026-13-01T09:00:00Z",
            "2026-11-24T09:00",
        ] {
            let err = input.parse::<Schedule>().unwrap_err();
            assert!(err.to_string().contains("every 30m"), "{input}: {err}");
        }
    }

    #[test]
    fn next_runs_in_a_named_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        // (schedule, zone, now, first run)
        let cases = [
            // 09:00 on weekdays: a Saturday evening waits for Monday.
            (
                "0 9 * * 1-5",
                berlin,
                "2026-11-21T18:00:00Z",
                "2026-11-23T08:00:00Z",
            ),
            (
                "0 9 * * 1-5",
                ny,
                "2026-11-23T13:59:00Z",
                "2026-11-23T14:00:00Z",
            ),
            (
                "0 9 * * 1-5",
                ny,
                "2026-11-23T14:00:00Z",
                "2026-11-24T14:00:00Z",
            ),
            // Spring forward in Berlin: 02:30 does not exist on 2026-03-29, the job runs at
            // the first instant after the gap (03:00 CEST).
            (
                "30 2 * * *",
                berlin,
                "2026-03-28T23:00:00Z",
                "2026-03-29T01:00:00Z",
            ),
            // Fall back: 02:30 happens twice on 2026-10-25; the job runs at the first.
            (
                "30 2 * * *",
                berlin,
                "2026-10-24T23:00:00Z",
                "2026-10-25T00:30:00Z",
            ),
            (
                "every 2h",
                berlin,
                "2026-03-29T00:30:00Z",
                "2026-03-29T02:30:00Z",
            ),
            (
                "30m",
                berlin,
                "2026-03-29T00:45:00Z",
                "2026-03-29T01:15:00Z",
            ),
            (
                "2026-03-29T02:30:00+00:00",
                berlin,
                "2026-03-29T00:00:00Z",
                "2026-03-29T02:30:00Z",
            ),
        ];
        for (schedule, zone, now, first) in cases {
            let parsed: Schedule = schedule.parse().unwrap();
            assert_eq!(
                parsed.first_run(utc(now), zone).unwrap(),
                utc(first),
                "{schedule} from {now} in {zone}"
            );
        }
    }

    #[test]
    fn a_fixed_daily_time_runs_once_a_day_across_dst_changes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let daily: Schedule = "30 2 * * *".parse().unwrap();
        // (due, next) in UTC, each run starting on time.
        let cases = [
            ("2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"),
            ("2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"),
            ("2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z"),
            // The second 02:30 of the fall-back night (01:30 UTC) is not a second run.
            ("2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"),
        ];
        for (due, next) in cases {
            assert_eq!(
                daily.next_run(utc(due), utc(due), berlin),
                Some(utc(next)),
                "after {due}"
            );
        }
        let local = local_time(utc("2026-03-29T01:00:00Z"), berlin);
        assert_eq!(local, "2026-03-29 03:00");
        let hourly: Schedule = "0 * * * *".parse().unwrap();
        // Hourly jobs run in both 02:00 hours of the fall-back night.
        let first = hourly.next_run(
            utc("2026-10-25T00:00:00Z"),
            utc("2026-10-25T00:00:00Z"),
            berlin,
        );
        assert_eq!(first, Some(utc("2026-10-25T01:00:00Z")));
    }

    #[test]
    fn missed_runs_are_made_up_once_then_counted_from_now() {
        let zone = Tz::UTC;
        let now = utc("2026-11-24T12:07:00Z");
        let every: Schedule = "every 30m".parse().unwrap();
        // On time: the cadence is kept.
        assert_eq!(
            every.next_run(
                utc("2026-11-24T12:00:00Z"),
                utc("2026-11-24T12:00:01Z"),
                zone
            ),
            Some(utc("2026-11-24T12:30:00Z"))
        );
        // Due three hours ago: one run now, the next one interval from now.
        assert_eq!(
            every.next_run(utc("2026-11-24T09:00:00Z"), now, zone),
            Some(now + TimeDelta::minutes(30))
        );
        let cron: Schedule = "0 * * * *".parse().unwrap();
        assert_eq!(
            cron.next_run(utc("2026-11-24T09:00:00Z"), now, zone),
            Some(utc("2026-11-24T13:00:00Z"))
        );
        for one_shot in ["30m", "2026-11-24T09:00:00Z"] {
            let s: Schedule = one_shot.parse().unwrap();
            assert_eq!(s.next_run(utc("2026-11-24T09:00:00Z"), now, zone), None);
        }
        let past: Schedule = "2026-11-24T09:00:00Z".parse().unwrap();
        assert!(past.first_run(now, zone).is_err());
        let never: Schedule = "0 0 30 2 *".parse().unwrap();
        assert!(never.first_run(now, zone).is_err());
    }

    #[test]
    fn the_zone_comes_from_hermes_timezone() {
        let section = ConfigSection::from_pairs([("HERMES_TIMEZONE", "Europe/Berlin")]);
        assert_eq!(zone(&section).unwrap(), chrono_tz::Europe::Berlin);
        let section = ConfigSection::from_pairs([("HERMES_TIMEZONE", "Mars/Olympus")]);
        let err = zone(&section).unwrap_err().to_string();
        assert!(
            err.contains("HERMES_TIMEZONE") && err.contains("Mars/Olympus"),
            "{err}"
        );
    }

    fn schedules() -> impl Strategy<Value = Schedule> {
        let unit = prop_oneof![
            Just(Unit::Second),
            Just(Unit::Minute),
            Just(Unit::Hour),
            Just(Unit::Day)
        ];
        let interval = (1u64..10_000, unit).prop_map(|(amount, unit)| Interval { amount, unit });
        let field = |min: u32, max: u32| {
            prop_oneof![
                Just("*".to_string()),
                (min..=max).prop_map(|n| n.to_string()),
                (1..=max).prop_map(|n| format!("*/{n}")),
                (min..=max).prop_map(move |n| format!("{n}-{max}")),
                (min..=max, min..=max).prop_map(|(a, b)| format!("{a},{b}")),
            ]
        };
        let cron = (
            field(0, 59),
            field(0, 23),
            field(1, 28),
            field(1, 12),
            field(0, 6),
        )
            .prop_map(|(mi, h, d, mo, w)| format!("{mi} {h} {d} {mo} {w}"))
            .prop_filter_map("a valid expression", |text| text.parse().ok());
        let at = (0i64..4_000_000_000, -47i32..=47).prop_map(|(secs, quarter_hours)| {
            let offset = FixedOffset::east_opt(quarter_hours * 900).unwrap();
            Schedule::At(offset.timestamp_opt(secs, 0).unwrap())
        });
        prop_oneof![
            interval
                .clone()
                .prop_filter("every >= 1m", |i| i.seconds() >= 60
                    && i.seconds() <= MAX_SECONDS)
                .prop_map(Schedule::Every),
            interval
                .prop_filter("delay <= 10y", |i| i.seconds() <= MAX_SECONDS)
                .prop_map(Schedule::Delay),
            cron,
            at,
        ]
    }

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_schedule(schedule in schedules()) {
            let shown = schedule.to_string();
            let again = shown.parse::<Schedule>().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&again, &schedule);
            prop_assert_eq!(again.to_string(), shown);
        }
    }
}
