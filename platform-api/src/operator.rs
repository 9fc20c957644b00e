//! What a platform adds to the operator commands, beyond what its [`Registration`] declares:
//! which optional settings `hermes gateway setup` asks for up front and what it explains, the
//! steps to finish outside the gateway (a provider's console), and live checks of the account
//! for `hermes gateway doctor`.
//!
//! A platform submits at most one [`OperatorGuide`] with [`inventory::submit!`], next to its
//! registration. Without one the wizard asks the required settings, then the optional ones in
//! declaration order, and the doctor checks the configuration only.
//!
//! [`Registration`]: crate::Registration
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::config::ConfigSection;

/// The live checks of a platform's account, run by the host on its actix runtime.
pub type Checkup<'a> = Pin<Box<dyn Future<Output = Vec<Check>> + 'a>>;

/// A platform's additions to `hermes gateway setup` and `hermes gateway doctor`.
pub struct OperatorGuide {
    /// Name of the platform it belongs to, as in its registration (`sms`).
    pub platform: &'static str,
    /// Optional settings (by variable) the wizard asks right after the required ones, in this
    /// order; the other optional settings wait behind an "advanced settings?" question.
    pub essentials: &'static [&'static str],
    /// Explanations the wizard shows before asking for a setting, by variable, when its one-line
    /// help is not enough (what it is for, what happens without it).
    pub explanations: &'static [(&'static str, &'static str)],
    /// What to do once the settings are written (a provider's console, a tunnel), given them.
    pub next_steps: fn(&ConfigSection) -> String,
    /// Live checks of the account behind valid settings; with `fix` true they also repair what
    /// they can and check again.
    pub checkup: for<'a> fn(&'a ConfigSection, bool) -> Checkup<'a>,
}

inventory::collect!(OperatorGuide);

/// The operator guide of the named platform, if it submitted one.
pub fn operator_guide(platform: &str) -> Option<&'static OperatorGuide> {
    inventory::iter::<OperatorGuide>
        .into_iter()
        .find(|g| g.platform == platform)
}

/// One line of `hermes gateway doctor`: what was checked and how it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, as a short phrase (`Twilio credentials`).
    pub subject: String,
    /// How it went.
    pub verdict: Verdict,
}

/// The outcome of a [`Check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It passes; the text says what was found.
    Ok(String),
    /// It failed and `--fix` repaired it; the text says what changed.
    Fixed(String),
    /// It fails: what is wrong, and what the operator can do about it.
    Problem {
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// It was not run (an earlier check failed, or it does not apply); the text says why.
    Skipped(String),
}

impl Check {
    /// A check that passes.
    pub fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Ok(detail.into()),
        }
    }

    /// A check that `--fix` repaired.
    pub fn fixed(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Fixed(detail.into()),
        }
    }

    /// A check that fails, with how to fix it.
    pub fn problem(
        subject: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Problem {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }

    /// A check that was not run, and why.
    pub fn skipped(subject: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Skipped(why.into()),
        }
    }

    /// Whether it counts against the doctor's verdict.
    pub fn is_problem(&self) -> bool {
        matches!(self.verdict, Verdict::Problem { .. })
    }
}

impl fmt::Display for Check {
    /// `ok       subject: detail`, and for a problem a second line with the fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = &self.subject;
        match &self.verdict {
            Verdict::Ok(detail) => write!(f, "ok       {subject}: {detail}"),
            Verdict::Fixed(detail) => write!(f, "fixed    {subject}: {detail}"),
            Verdict::Skipped(why) => write!(f, "skipped  {subject}: {why}"),
            Verdict::Problem { problem, fix } => {
                write!(f, "problem  {subject}: {problem}\n         fix: {fix}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_the_verdict_first_and_the_fix_below_a_problem() {
        assert_eq!(
            Check::ok("sms", "enabled").to_string(),
            "ok       sms: enabled"
        );
        let problem = Check::problem("Twilio credentials", "rejected", "check the token");
        assert!(problem.is_problem());
        assert_eq!(
            problem.to_string(),
            "problem  Twilio credentials: rejected\n         fix: check the token"
        );
        assert!(!Check::fixed("webhook", "set").is_problem());
        assert!(!Check::skipped("number", "needs credentials").is_problem());
    }
}
