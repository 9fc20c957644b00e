//! Media in PostgreSQL: every gateway sharing the database uses and serves every file. Files
//! are stored on the server's clock, which purging is measured on.
use tokio_postgres::Row;

use super::PgStore;
use super::clock::db_now;
use crate::{
    InboundFile, MediaMeta, MediaState, MediaStore, Millis, OutboundFile, Result, StoreError,
    stored_size,
};

/// The columns [`meta_row`] reads.
macro_rules! meta_columns {
    () => {
        "id, inbound_id, idx, token, state, content_type, name, size, error, transcript,
         created_at, expires_at"
    };
}

/// What is kept of a file, from [`meta_columns!`].
fn meta_row(r: &Row) -> MediaMeta {
    let state: &str = r.get(4);
    MediaMeta {
        id: r.get(0),
        inbound_id: r.get(1),
        index: r.get(2),
        token: r.get(3),
        state: MediaState::parse(state),
        content_type: r.get(5),
        name: r.get(6),
        size: r.get(7),
        error: r.get(8),
        transcript: r.get(9),
        created_at: r.get(10),
        expires_at: r.get(11),
    }
}

/// The id an insert returned.
fn returned_id(rows: Vec<Row>) -> Result<i64> {
    rows.first()
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Database("the insert returned no row".into()))
}

impl MediaStore for PgStore {
    fn put_inbound_media(&self, file: &InboundFile<'_>) -> Result<i64> {
        returned_id(self.rows(
            concat!(
                "INSERT INTO media (inbound_id, idx, state, content_type, name, size, bytes, created_at)
                 VALUES ($1, $2, 'fetched', $3, $4, $5, $6, ",
                db_now!(),
                ")
                 ON CONFLICT (inbound_id, idx) DO UPDATE
                 SET state = 'fetched', content_type = EXCLUDED.content_type, name = EXCLUDED.name,
                     size = EXCLUDED.size, bytes = EXCLUDED.bytes, error = NULL,
                     transcript = NULL, created_at = EXCLUDED.created_at
                 RETURNING id"
            ),
            &[
                &file.inbound_id,
                &file.index,
                &file.content_type,
                &file.name,
                &stored_size(file.bytes)?,
                &file.bytes,
            ],
        )?)
    }

    fn inbound_media_failed(
        &self,
        inbound_id: i64,
        index: i64,
        content_type: &str,
        name: &str,
        error: &str,
    ) -> Result<i64> {
        returned_id(self.rows(
            concat!(
                "INSERT INTO media (inbound_id, idx, state, content_type, name, size, error, created_at)
                 VALUES ($1, $2, 'failed', $3, $4, 0, $5, ",
                db_now!(),
                ")
                 ON CONFLICT (inbound_id, idx) DO UPDATE
                 SET state = 'failed', content_type = EXCLUDED.content_type, name = EXCLUDED.name,
                     size = 0, bytes = NULL, error = EXCLUDED.error, transcript = NULL,
                     created_at = EXCLUDED.created_at
                 RETURNING id"
            ),
            &[&inbound_id, &index, &content_type, &name, &error],
        )?)
    }

    fn set_transcript(&self, id: i64, transcript: &str) -> Result<()> {
        self.exec(
            "UPDATE media SET transcript = $2 WHERE id = $1",
            &[&id, &transcript],
        )?;
        Ok(())
    }

    fn inbound_media(&self, inbound_ids: &[i64]) -> Result<Vec<MediaMeta>> {
        let rows = self.rows(
            concat!(
                "SELECT ",
                meta_columns!(),
                " FROM media WHERE inbound_id = ANY($1) ORDER BY inbound_id, idx"
            ),
            &[&inbound_ids],
        )?;
        Ok(rows.iter().map(meta_row).collect())
    }

    fn media_bytes(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let rows = self.rows(
            "SELECT bytes FROM media WHERE id = $1 AND bytes IS NOT NULL",
            &[&id],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn put_outbound_media(&self, file: &OutboundFile<'_>) -> Result<i64> {
        returned_id(self.rows(
            concat!(
                "INSERT INTO media (token, state, content_type, name, size, bytes, created_at, expires_at)
                 VALUES ($1, 'fetched', $2, $3, $4, $5, ",
                db_now!(),
                ", $6)
                 RETURNING id"
            ),
            &[
                &file.token,
                &file.content_type,
                &file.name,
                &stored_size(file.bytes)?,
                &file.bytes,
                &file.expires_at,
            ],
        )?)
    }

    fn outbound_media(&self, token: &str) -> Result<Option<(MediaMeta, Vec<u8>)>> {
        let rows = self.rows(
            concat!(
                "SELECT ",
                meta_columns!(),
                ", bytes FROM media WHERE token = $1 AND bytes IS NOT NULL"
            ),
            &[&token],
        )?;
        Ok(rows.first().map(|r| (meta_row(r), r.get(12))))
    }

    fn purge_media(&self, now: Millis, retention_ms: i64) -> Result<usize> {
        let deleted = self.exec(
            "DELETE FROM media WHERE created_at < $1::BIGINT - $2::BIGINT
               AND (inbound_id IS NOT NULL OR expires_at <= $1::BIGINT)",
            &[&now, &retention_ms],
        )?;
        Ok(deleted as usize)
    }

    fn media_usage(&self) -> Result<(i64, i64)> {
        let rows = self.rows(
            "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM media WHERE bytes IS NOT NULL",
            &[],
        )?;
        Ok(rows.first().map_or((0, 0), |r| (r.get(0), r.get(1))))
    }
}
