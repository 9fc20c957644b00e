//! Media in SQLite.
//!
//! A file's bytes are written with SQLite's incremental blob I/O: the row is inserted with a
//! `zeroblob` of the file's size and the bytes are then written into it in place. Bound as a
//! parameter instead, a blob is first copied into SQLite's own memory and then again into the
//! record being built, so a 5 MB file would cost two copies beyond the caller's; written in
//! place it costs none. Both steps run in one transaction: nobody reads the zeroes. The
//! `zeroblob` stays a count only as the record's last field, so `bytes` is the table's last
//! column; before it, a 5 MB file grew the gateway's peak memory by 18 MB, after it by 7 MB.
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use crate::{
    InboundFile, MediaMeta, MediaState, MediaStore, Millis, OutboundFile, Result, StoreError,
    now_ms, stored_size,
};

/// The columns [`meta_row`] reads.
const META_COLUMNS: &str = "id, inbound_id, idx, token, state, content_type, name, size, error,
     transcript, created_at, expires_at";

/// What is kept of a file, from [`META_COLUMNS`].
fn meta_row(r: &Row<'_>) -> rusqlite::Result<MediaMeta> {
    let state: String = r.get(4)?;
    Ok(MediaMeta {
        id: r.get(0)?,
        inbound_id: r.get(1)?,
        index: r.get(2)?,
        token: r.get(3)?,
        state: MediaState::parse(&state),
        content_type: r.get(5)?,
        name: r.get(6)?,
        size: r.get(7)?,
        error: r.get(8)?,
        transcript: r.get(9)?,
        created_at: r.get(10)?,
        expires_at: r.get(11)?,
    })
}

impl SqliteStore {
    /// Stores a file in one transaction: `insert` records its row with a `zeroblob` of its
    /// size (`params` give the size, as [`stored_size`] counts it) and returns its id, then its
    /// bytes are written into that blob in place.
    fn put_file(&self, insert: &str, params: impl rusqlite::Params, bytes: &[u8]) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: i64 = tx.prepare_cached(insert)?.query_row(params, |r| r.get(0))?;
        if !bytes.is_empty() {
            let mut blob = tx.blob_open(rusqlite::MAIN_DB, "media", "bytes", id, false)?;
            blob.write_at(bytes, 0)?;
        }
        tx.commit()?;
        Ok(id)
    }
}

impl MediaStore for SqliteStore {
    fn put_inbound_media(&self, file: &InboundFile<'_>) -> Result<i64> {
        self.put_file(
            "INSERT INTO media (inbound_id, idx, state, content_type, name, size, bytes, created_at)
             VALUES (?1, ?2, 'fetched', ?3, ?4, ?5, zeroblob(?5), ?6)
             ON CONFLICT (inbound_id, idx) DO UPDATE
             SET state = 'fetched', content_type = excluded.content_type, name = excluded.name,
                 size = excluded.size, bytes = excluded.bytes, error = NULL, transcript = NULL,
                 created_at = excluded.created_at
             RETURNING id",
            params![
                file.inbound_id,
                file.index,
                file.content_type,
                file.name,
                stored_size(file.bytes)?,
                now_ms()
            ],
            file.bytes,
        )
    }

    fn inbound_media_failed(
        &self,
        inbound_id: i64,
        index: i64,
        content_type: &str,
        name: &str,
        error: &str,
    ) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached(
                "INSERT INTO media (inbound_id, idx, state, content_type, name, size, error, created_at)
                 VALUES (?1, ?2, 'failed', ?3, ?4, 0, ?5, ?6)
                 ON CONFLICT (inbound_id, idx) DO UPDATE
                 SET state = 'failed', content_type = excluded.content_type, name = excluded.name,
                     size = 0, bytes = NULL, error = excluded.error, transcript = NULL,
                     created_at = excluded.created_at
                 RETURNING id",
            )?
            .query_row(
                params![inbound_id, index, content_type, name, error, now_ms()],
                |r| r.get(0),
            )?)
    }

    fn set_transcript(&self, id: i64, transcript: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE media SET transcript = ?2 WHERE id = ?1")?
            .execute(params![id, transcript])?;
        Ok(())
    }

    fn inbound_media(&self, inbound_ids: &[i64]) -> Result<Vec<MediaMeta>> {
        if inbound_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(inbound_ids).map_err(|e| StoreError::Database(e.to_string()))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {META_COLUMNS} FROM media
             WHERE inbound_id IN (SELECT value FROM json_each(?1))
             ORDER BY inbound_id, idx"
        ))?;
        let rows = stmt.query_map(params![ids], meta_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn media_bytes(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT bytes FROM media WHERE id = ?1 AND bytes IS NOT NULL")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    fn put_outbound_media(&self, file: &OutboundFile<'_>) -> Result<i64> {
        self.put_file(
            "INSERT INTO media (token, state, content_type, name, size, bytes, created_at, expires_at)
             VALUES (?1, 'fetched', ?2, ?3, ?4, zeroblob(?4), ?5, ?6)
             RETURNING id",
            params![
                file.token,
                file.content_type,
                file.name,
                stored_size(file.bytes)?,
                now_ms(),
                file.expires_at
            ],
            file.bytes,
        )
    }

    fn outbound_media(&self, token: &str) -> Result<Option<(MediaMeta, Vec<u8>)>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {META_COLUMNS}, bytes FROM media WHERE token = ?1 AND bytes IS NOT NULL"
            ))?
            .query_row(params![token], |r| Ok((meta_row(r)?, r.get(12)?)))
            .optional()?)
    }

    fn purge_media(&self, now: Millis, retention_ms: i64) -> Result<usize> {
        Ok(self
            .conn()
            .prepare_cached(
                "DELETE FROM media WHERE created_at < ?1 - ?2
                   AND (inbound_id IS NOT NULL OR expires_at <= ?1)",
            )?
            .execute(params![now, retention_ms])?)
    }

    fn media_usage(&self) -> Result<(i64, i64)> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM media WHERE bytes IS NOT NULL",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }
}
