//! Cron jobs, their runs and the outcome of delivered parts, in PostgreSQL.
//!
//! Every write that must be atomic across replicas is one statement: a claim is a conditional
//! `UPDATE` checked by the rows it changed, and the writes that touch both a run and its job
//! are either a transaction or a single statement whose data-modifying parts share one
//! snapshot.
use tokio_postgres::Row;

use super::PgStore;
use super::messages::alive;
use crate::{
    CronStore, Job, JobKind, Millis, NewJob, PartOutcome, PartState, REPLICA_STALE_MS, Result,
    RunStatus,
};

const JOB_COLUMNS: &str =
    "id, name, schedule, kind, payload, deliver, origin_platform, origin_chat,
     paused, done, next_run_at, last_status, last_run_at, created_at";

fn job_row(r: &Row) -> Result<Job> {
    let kind: String = r.try_get(3)?;
    Ok(Job {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        schedule: r.try_get(2)?,
        kind: JobKind::parse(&kind),
        payload: r.try_get(4)?,
        deliver: r.try_get(5)?,
        origin_platform: r.try_get(6)?,
        origin_chat: r.try_get(7)?,
        paused: r.try_get(8)?,
        done: r.try_get(9)?,
        next_run_at: r.try_get(10)?,
        last_status: r.try_get(11)?,
        last_run_at: r.try_get(12)?,
        created_at: r.try_get(13)?,
    })
}

impl CronStore for PgStore {
    fn add_job(&self, job: &NewJob<'_>) -> Result<i64> {
        self.block(async {
            let client = self.client().await?;
            let origin_platform = job.origin.map(|o| o.0);
            let origin_chat = job.origin.map(|o| o.1);
            let row = client
                .query_one(
                    "INSERT INTO cron_jobs (name, schedule, kind, payload, deliver, origin_platform,
                                            origin_chat, next_run_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     RETURNING id",
                    &[
                        &job.name,
                        &job.schedule,
                        &job.kind.as_str(),
                        &job.payload,
                        &job.deliver,
                        &origin_platform,
                        &origin_chat,
                        &job.next_run_at,
                        &self.server_now(),
                    ],
                )
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        self.block(async {
            let client = self.client().await?;
            let sql = format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = $1");
            client
                .query_opt(&sql, &[&id])
                .await?
                .as_ref()
                .map(job_row)
                .transpose()
        })
    }

    fn jobs(&self) -> Result<Vec<Job>> {
        self.block(async {
            let client = self.client().await?;
            let sql = format!("SELECT {JOB_COLUMNS} FROM cron_jobs ORDER BY id");
            client.query(&sql, &[]).await?.iter().map(job_row).collect()
        })
    }

    fn due_jobs(&self, now: Millis) -> Result<Vec<Job>> {
        self.block(async {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM cron_jobs
                 WHERE NOT paused AND NOT done AND next_run_at <= $1
                 ORDER BY next_run_at, id"
            );
            client
                .query(&sql, &[&now])
                .await?
                .iter()
                .map(job_row)
                .collect()
        })
    }

    fn claim_job_run(&self, id: i64, due: Millis, next: Option<Millis>) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            // One conditional statement: of replicas racing for the same due run, the row lock
            // lets one change it and the others re-check `next_run_at = $2` and change nothing.
            let changed = client
                .execute(
                    "UPDATE cron_jobs SET next_run_at = $3::BIGINT, done = ($3::BIGINT IS NULL)
                     WHERE id = $1 AND next_run_at = $2 AND NOT paused AND NOT done",
                    &[&id, &due, &next],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    fn set_job_paused(&self, id: i64, paused: bool, next_run_at: Option<Millis>) -> Result<bool> {
        self.block(async {
            let client = self.client().await?;
            let changed = client
                .execute(
                    "UPDATE cron_jobs SET paused = $2, next_run_at = COALESCE($3::BIGINT, next_run_at)
                     WHERE id = $1",
                    &[&id, &paused, &next_run_at],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    fn remove_job(&self, id: i64) -> Result<bool> {
        self.block(async {
            let mut client = self.client().await?;
            // `cron_runs.job_id` cascades, but the runs are deleted explicitly as SQLite does,
            // in the same transaction, so the outcome does not depend on the constraint.
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM cron_runs WHERE job_id = $1", &[&id])
                .await?;
            let changed = tx
                .execute("DELETE FROM cron_jobs WHERE id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    fn start_job_run(&self, job_id: i64, trigger: &str) -> Result<i64> {
        self.block(async {
            let mut client = self.client().await?;
            let now = self.server_now();
            let tx = client.transaction().await?;
            let run: i64 = tx
                .query_one(
                    "INSERT INTO cron_runs (job_id, trigger, started_at, replica)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&job_id, &trigger, &now, &self.replica()],
                )
                .await?
                .try_get(0)?;
            tx.execute(
                "UPDATE cron_jobs SET last_run_at = $2 WHERE id = $1",
                &[&job_id, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(run)
        })
    }

    fn finish_job_run(
        &self,
        run_id: i64,
        status: RunStatus,
        output: &str,
        deliveries: &str,
    ) -> Result<bool> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let ended = tx
                .execute(
                    "UPDATE cron_runs SET ended_at = $2, status = $3, output = $4, deliveries = $5
                     WHERE id = $1 AND ended_at IS NULL",
                    &[
                        &run_id,
                        &self.server_now(),
                        &status.as_str(),
                        &output,
                        &deliveries,
                    ],
                )
                .await?;
            if ended == 0 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE cron_jobs SET last_status = $2
                 WHERE id = (SELECT job_id FROM cron_runs WHERE id = $1)",
                &[&run_id, &status.as_str()],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The runs of gateways that stopped (their heartbeat went stale, or they left): a run
    /// of a gateway still alive, or of a command line (`hermes cron run`, which keeps no
    /// heartbeat), is its own to end.
    fn interrupt_unfinished_runs(&self) -> Result<usize> {
        let now = self.server_now();
        self.block(async {
            let client = self.client().await?;
            // One statement, so the jobs marked interrupted are exactly those of the runs it
            // ended: under READ COMMITTED two statements could see different unfinished runs.
            // Whether a gateway is alive is judged on the server's clock.
            let row = client
                .query_one(
                    concat!(
                        "WITH ended AS (
                             UPDATE cron_runs SET ended_at = $1, status = 'interrupted'
                             WHERE ended_at IS NULL
                               AND (replica IS NULL
                                    OR (replica IN (SELECT name FROM replicas)
                                        AND replica NOT IN ",
                        alive!("$2"),
                        "))
                             RETURNING job_id
                         ), jobs AS (
                             UPDATE cron_jobs SET last_status = 'interrupted'
                             WHERE id IN (SELECT job_id FROM ended)
                         )
                         SELECT count(*) FROM ended"
                    ),
                    &[&now, &REPLICA_STALE_MS],
                )
                .await?;
            let n: i64 = row.try_get(0)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn part_outcome(&self, id: i64) -> Result<Option<PartOutcome>> {
        self.block(async {
            let client = self.client().await?;
            let Some(row) = client
                .query_opt(
                    "SELECT state, provider_id, error FROM outbox WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(None);
            };
            let state: String = row.try_get(0)?;
            Ok(Some(PartOutcome {
                state: PartState::parse(&state),
                provider_id: row.try_get(1)?,
                error: row.try_get(2)?,
            }))
        })
    }
}
