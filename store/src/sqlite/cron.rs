//! Cron jobs, their runs and the outcome of delivered parts, in SQLite.
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use crate::{
    CronStore, Job, JobKind, Millis, NewJob, PartOutcome, PartState, Result, RunStatus, now_ms,
};

const JOB_COLUMNS: &str =
    "id, name, schedule, kind, payload, deliver, origin_platform, origin_chat,
     paused, done, next_run_at, last_status, last_run_at, created_at";

fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let kind: String = r.get(3)?;
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        schedule: r.get(2)?,
        kind: JobKind::parse(&kind),
        payload: r.get(4)?,
        deliver: r.get(5)?,
        origin_platform: r.get(6)?,
        origin_chat: r.get(7)?,
        paused: r.get(8)?,
        done: r.get(9)?,
        next_run_at: r.get(10)?,
        last_status: r.get(11)?,
        last_run_at: r.get(12)?,
        created_at: r.get(13)?,
    })
}

impl CronStore for SqliteStore {
    fn add_job(&self, job: &NewJob<'_>) -> Result<i64> {
        let conn = self.conn();
        conn.prepare_cached("INSERT INTO cron_jobs (name, schedule, kind, payload, deliver, origin_platform, origin_chat,
                                    next_run_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![
                job.name,
                job.schedule,
                job.kind.as_str(),
                job.payload,
                job.deliver,
                job.origin.map(|o| o.0),
                job.origin.map(|o| o.1),
                job.next_run_at,
                now_ms(),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, params![id], job_row)
            .optional()?)
    }

    fn jobs(&self) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs ORDER BY id"))?;
        let rows = stmt.query_map([], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn due_jobs(&self, now: Millis) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM cron_jobs
             WHERE paused = 0 AND done = 0 AND next_run_at <= ?1 ORDER BY next_run_at, id"
        ))?;
        let rows = stmt.query_map(params![now], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn claim_job_run(&self, id: i64, due: Millis, next: Option<Millis>) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE cron_jobs SET next_run_at = ?3, done = (?3 IS NULL)
             WHERE id = ?1 AND next_run_at = ?2 AND paused = 0 AND done = 0",
            )?
            .execute(params![id, due, next])?;
        Ok(changed == 1)
    }

    fn set_job_paused(&self, id: i64, paused: bool, next_run_at: Option<Millis>) -> Result<bool> {
        let changed = self.conn().prepare_cached("UPDATE cron_jobs SET paused = ?2, next_run_at = COALESCE(?3, next_run_at) WHERE id = ?1")?.execute(params![id, paused, next_run_at],
        )?;
        Ok(changed == 1)
    }

    fn remove_job(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached("DELETE FROM cron_runs WHERE job_id = ?1")?
            .execute(params![id])?;
        let changed = tx
            .prepare_cached("DELETE FROM cron_jobs WHERE id = ?1")?
            .execute(params![id])?;
        tx.commit()?;
        Ok(changed == 1)
    }

    fn start_job_run(&self, job_id: i64, trigger: &str) -> Result<i64> {
        let conn = self.conn();
        let now = now_ms();
        conn.prepare_cached(
            "INSERT INTO cron_runs (job_id, trigger, started_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![job_id, trigger, now])?;
        let run = conn.last_insert_rowid();
        conn.prepare_cached("UPDATE cron_jobs SET last_run_at = ?2 WHERE id = ?1")?
            .execute(params![job_id, now])?;
        Ok(run)
    }

    fn finish_job_run(
        &self,
        run_id: i64,
        status: RunStatus,
        output: &str,
        deliveries: &str,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ended = tx
            .prepare_cached(
                "UPDATE cron_runs SET ended_at = ?2, status = ?3, output = ?4, deliveries = ?5
                 WHERE id = ?1 AND ended_at IS NULL",
            )?
            .execute(params![
                run_id,
                now_ms(),
                status.as_str(),
                output,
                deliveries
            ])?;
        if ended == 0 {
            return Ok(false);
        }
        tx.prepare_cached(
            "UPDATE cron_jobs SET last_status = ?2
             WHERE id = (SELECT job_id FROM cron_runs WHERE id = ?1)",
        )?
        .execute(params![run_id, status.as_str()])?;
        tx.commit()?;
        Ok(true)
    }

    fn interrupt_unfinished_runs(&self) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "UPDATE cron_jobs SET last_status = 'interrupted'
             WHERE id IN (SELECT job_id FROM cron_runs WHERE ended_at IS NULL)",
        )?
        .execute([])?;
        let n = tx
            .prepare_cached(
                "UPDATE cron_runs SET ended_at = ?1, status = 'interrupted' WHERE ended_at IS NULL",
            )?
            .execute(params![now_ms()])?;
        tx.commit()?;
        Ok(n)
    }

    fn part_outcome(&self, id: i64) -> Result<Option<PartOutcome>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT state, provider_id, error FROM outbox WHERE id = ?1")?
            .query_row(params![id], |r| {
                let state: String = r.get(0)?;
                Ok(PartOutcome {
                    state: PartState::parse(&state),
                    provider_id: r.get(1)?,
                    error: r.get(2)?,
                })
            })
            .optional()?)
    }
}
