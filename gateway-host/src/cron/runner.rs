//! Running one job: the [`Runner`] runs its prompt or command, records the run and queues the
//! output for delivery. The gateway's scheduler runs due jobs with it; `hermes cron run` and
//! `/cron run` run one on demand.
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hermes_config::Config;
use platform_api::registration;
use tracing::{info, warn};

use crate::agent::{Agent, AgentRequest, ChatMessage, Session};
use crate::outbox::deliver::{self, Content, Delivery, Target};
use crate::services::Services;
use crate::settings::HOST;
use crate::store::{Job, JobKind, RunStatus};

/// Output beyond this many characters is cut, with a note saying so: a runaway command must
/// not turn into hundreds of paid messages.
pub const MAX_OUTPUT_CHARS: usize = 16_000;
/// Characters of stderr kept when a command fails.
const STDERR_TAIL_CHARS: usize = 500;

/// What one run of a job produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// How it ended.
    pub status: RunStatus,
    /// Its output (or the error, when it failed).
    pub output: String,
    /// Where the output was queued.
    pub deliveries: Vec<Delivery>,
}

/// Runs jobs: the agent or command, then delivery, with every run recorded.
pub struct Runner {
    services: Services,
    agent: Rc<dyn Agent>,
    timeout: Duration,
}

impl Runner {
    /// A runner with the given agent and time limit per run.
    pub fn new(services: Services, agent: Rc<dyn Agent>, timeout: Duration) -> Rc<Self> {
        Rc::new(Runner {
            services,
            agent,
            timeout,
        })
    }

    /// A runner with the configured agent (`HERMES_AGENT`, `HERMES_AGENT_TIMEOUT_SECS`).
    pub fn from_config(config: &Config, services: Services) -> anyhow::Result<Rc<Self>> {
        let (agent, timeout) = crate::agent::from_config(&config.section(HOST))?;
        Ok(Runner::new(services, agent, timeout))
    }

    /// Runs `job` now (`trigger`: `schedule` or `manual`), records the run and queues its
    /// output for delivery.
    pub async fn run(&self, job: &Job, trigger: &str) -> anyhow::Result<RunReport> {
        let store = &self.services.store;
        let run_id = store.start_job_run(job.id, trigger)?;
        let started = Instant::now();
        let targets = deliver::parse_targets(&job.deliver);
        let result = match &targets {
            Ok(targets) => self.execute(job, targets, run_id).await,
            Err(problem) => Err(format!("the job's delivery targets are invalid: {problem}")),
        };
        let (status, output, deliveries) = match result {
            Err(problem) => (RunStatus::Failed, problem, Vec::new()),
            Ok(output) => {
                let output = cap(output);
                match deliver::content(&output) {
                    Content::Empty => (RunStatus::Empty, output, Vec::new()),
                    Content::Silent => (RunStatus::Silent, output, Vec::new()),
                    Content::Message(text) => {
                        let deliveries = deliver::deliver(
                            &self.services,
                            targets.as_deref().unwrap_or_default(),
                            job.origin(),
                            text,
                            "cron",
                        )
                        .await;
                        // Output a target could not take (its platform not running, a
                        // WhatsApp chat outside its window without a template) is a failed run.
                        let status = if deliveries.iter().any(|d| d.error.is_some()) {
                            RunStatus::Failed
                        } else {
                            RunStatus::Ok
                        };
                        (status, output, deliveries)
                    }
                }
            }
        };
        let recorded = serde_json::to_string(&deliveries)?;
        if !store.finish_job_run(run_id, status, &output, &recorded)? {
            warn!(
                "[cron] job {} ({}): its run was taken for interrupted meanwhile (this gateway looked stopped to the others); its outcome is not recorded over theirs",
                job.id, job.name
            );
        }
        let queued = deliveries.iter().filter(|d| !d.parts.is_empty()).count();
        info!(
            "[cron] job {} ({}) ran in {:.1}s: {}, queued for {queued} target(s)",
            job.id,
            job.name,
            started.elapsed().as_secs_f64(),
            status.as_str()
        );
        for d in deliveries.iter().filter(|d| d.error.is_some()) {
            warn!(
                "[cron] job {}: {}: not delivered: {}",
                job.id,
                d.label,
                d.error.as_deref().unwrap_or_default()
            );
        }
        if status == RunStatus::Failed && deliveries.is_empty() {
            warn!("[cron] job {} failed: {output}", job.id);
        }
        Ok(RunReport {
            status,
            output,
            deliveries,
        })
    }

    async fn execute(&self, job: &Job, targets: &[Target], run_id: i64) -> Result<String, String> {
        let limit = self.timeout;
        let work = async {
            match job.kind {
                JobKind::Prompt => self.prompt(job, targets, run_id).await,
                JobKind::Command => command(&job.payload).await,
            }
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "did not finish within {}s (HERMES_AGENT_TIMEOUT_SECS)",
                limit.as_secs()
            )),
        }
    }

    /// Asks the agent for the job's output: a turn of its own each run, in a session of its own
    /// (the chat's conversation is not the job's).
    async fn prompt(&self, job: &Job, targets: &[Target], run_id: i64) -> Result<String, String> {
        // The agent writes for where the output goes: the origin chat, else the first platform.
        let platform = job
            .origin_platform
            .clone()
            .or_else(|| {
                targets.iter().find_map(|t| match t {
                    Target::Home(p) | Target::Chat { platform: p, .. } => Some(p.clone()),
                    Target::Local | Target::Origin => None,
                })
            })
            .unwrap_or_default();
        let label = registration(&platform)
            .map(|r| r.label)
            .unwrap_or("a scheduled message");
        let prompt = self.services.persona.prompt(&platform, label);
        let chat = job.origin_chat.clone().unwrap_or_default();
        let run = format!("cron-{}-{run_id}", job.id);
        let request = AgentRequest {
            platform: platform.clone(),
            platform_label: label.to_string(),
            session: Session {
                id: run.clone(),
                key: if chat.is_empty() {
                    format!("cron:{}", job.id)
                } else {
                    format!("{platform}:{chat}")
                },
            },
            chat,
            turn_id: run,
            system: prompt.system,
            hint: prompt.hint,
            chat_name: None,
            messages: vec![ChatMessage::new("user", job.payload.clone())],
            files: Vec::new(),
        };
        self.agent
            .reply(&request, None)
            .await
            .map_err(|e| format!("the agent failed: {e:#}"))
    }
}

/// Runs a command job with `sh -c`: its stdout is the output; a non-zero exit is a failure
/// reported with the end of its stderr.
async fn command(line: &str) -> Result<String, String> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("could not start sh: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let skip = stderr.chars().count().saturating_sub(STDERR_TAIL_CHARS);
        let tail: String = stderr.chars().skip(skip).collect();
        return Err(format!("command exited with {}: {tail}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn cap(output: String) -> String {
    if output.chars().count() <= MAX_OUTPUT_CHARS {
        return output;
    }
    let mut cut: String = output.chars().take(MAX_OUTPUT_CHARS).collect();
    cut.push_str(&format!(
        "\n\n(output cut at {MAX_OUTPUT_CHARS} characters)"
    ));
    cut
}
