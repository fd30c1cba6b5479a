//! The outbox on SQLite (feature `outbox-sqlite`): embedded, no server.
//!
//! Open the pool with [`connect`] (WAL journal, a busy timeout, the table
//! created), enqueue inside your transaction, run a [`Relay`](super::Relay):
//!
//! ```text
//! let outbox = SqliteOutbox::new(sqlite::connect("app.db").await?, &publisher);
//! let mut tx = outbox.pool().begin().await?;
//! sqlx::query("INSERT INTO users ...").execute(&mut *tx).await?;
//! outbox.enqueue(&mut tx, &ctx, &UserCreatedV1 { .. }).await?;
//! tx.commit().await?;
//! ```
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::row::{NewRow, RawRow};
use super::{OutboxError, PendingRow, Store};
use crate::event::DomainEvent;
use crate::publish::{Encoder, PublishContext, Publisher};

/// The outbox table and its indexes, idempotent (`IF NOT EXISTS`). Times
/// are Unix milliseconds by the database's clock.
pub const MIGRATION: &str = "\
CREATE TABLE IF NOT EXISTS tidings_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    subject TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    claims INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS tidings_outbox_pending ON tidings_outbox (sent_at, seq);
CREATE INDEX IF NOT EXISTS tidings_outbox_subject ON tidings_outbox (subject, sent_at);
";

/// The database's clock in Unix milliseconds.
const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// Opens (creating if missing) a SQLite database for an outbox or spool:
/// WAL journal, `synchronous = FULL` (a committed event survives a power
/// loss), a 10 s busy timeout (several relays and writers share the file),
/// and runs [`MIGRATION`].
pub async fn connect(path: impl AsRef<Path>) -> Result<SqlitePool, OutboxError> {
    let path = path.as_ref();
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(OutboxError::db("parsing the SQLite options"))?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(OutboxError::db("opening the SQLite database"))?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Creates the outbox table if it does not exist ([`MIGRATION`]).
pub async fn migrate(pool: &SqlitePool) -> Result<(), OutboxError> {
    sqlx::raw_sql(MIGRATION)
        .execute(pool)
        .await
        .map_err(OutboxError::db("creating the table (MIGRATION)"))?;
    Ok(())
}

/// An outbox table in a SQLite database: enqueue events in your
/// transactions, and hand it to a [`Relay`](super::Relay). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    pool: SqlitePool,
    encoder: Arc<Encoder>,
}

impl SqliteOutbox {
    /// The outbox of this database, encoding events as `publisher` does.
    pub fn new(pool: SqlitePool, publisher: &Publisher) -> Self {
        Self {
            pool,
            encoder: publisher.shared_encoder(),
        }
    }

    /// The database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Validates and encodes `event` as a publish would and writes it into
    /// the outbox inside the caller's transaction: it is published if and
    /// only if the transaction commits. Returns its event id.
    pub async fn enqueue<E: DomainEvent>(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Uuid, OutboxError> {
        let prepared = self.encoder.prepare_with_id(ctx, Uuid::now_v7(), event)?;
        let row = NewRow::from_prepared(&prepared);
        insert(tx, &row).await?;
        Ok(prepared.event_id())
    }
}

/// Writes one row in the caller's transaction.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    row: &NewRow,
) -> Result<(), OutboxError> {
    let sql = format!(
        "INSERT INTO tidings_outbox (event_id, stream, subject, headers, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, {NOW_MS})"
    );
    sqlx::query(&sql)
        .bind(&row.event_id)
        .bind(&row.stream)
        .bind(&row.subject)
        .bind(&row.headers)
        .bind(&row.body)
        .execute(&mut **tx)
        .await
        .map_err(OutboxError::db("inserting an event"))?;
    Ok(())
}

/// `?, ?, ...` for `n` values.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// SQLite's default limit on bound values per statement is 32,766; stay far below.
const CHUNK: usize = 500;

impl Store for SqliteOutbox {
    async fn claim(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<PendingRow>, OutboxError> {
        // One statement: SQLite runs it under the database's write lock, so
        // two relays never claim rows of the same subject at once.
        let sql = format!(
            "UPDATE tidings_outbox SET lease_owner = ?1, lease_until = {NOW_MS} + ?3, \
             claims = claims + 1 \
             WHERE seq IN ( \
               SELECT o.seq FROM tidings_outbox o WHERE o.sent_at IS NULL AND NOT EXISTS ( \
                 SELECT 1 FROM tidings_outbox b WHERE b.subject = o.subject \
                 AND b.sent_at IS NULL AND b.lease_until > {NOW_MS} AND b.lease_owner <> ?1) \
               ORDER BY o.seq LIMIT ?2) \
             RETURNING seq, event_id, stream, subject, headers, body, claims, \
             {NOW_MS} - created_at AS age_ms"
        );
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(OutboxError::db("starting a claim"))?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(i64::from(limit))
            .bind(lease_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(OutboxError::db("claiming rows"))?;
        tx.commit()
            .await
            .map_err(OutboxError::db("committing a claim"))?;
        let mut claimed = rows
            .into_iter()
            .map(|r| {
                RawRow {
                    seq: r.get("seq"),
                    event_id: r.get("event_id"),
                    stream: r.get("stream"),
                    subject: r.get("subject"),
                    headers: r.get("headers"),
                    body: r.get("body"),
                    claims: r.get("claims"),
                    age_ms: r.get("age_ms"),
                }
                .decode()
            })
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|row| row.seq);
        Ok(claimed)
    }

    async fn mark_sent(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        for chunk in seqs.chunks(CHUNK) {
            let sql = format!(
                "UPDATE tidings_outbox SET sent_at = {NOW_MS}, lease_owner = NULL, \
                 lease_until = NULL, last_error = NULL \
                 WHERE sent_at IS NULL AND seq IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for seq in chunk {
                query = query.bind(seq);
            }
            query
                .execute(&self.pool)
                .await
                .map_err(OutboxError::db("marking rows sent"))?;
        }
        Ok(())
    }

    async fn release(&self, owner: &str, seqs: &[i64], error: &str) -> Result<(), OutboxError> {
        for chunk in seqs.chunks(CHUNK) {
            let sql = format!(
                "UPDATE tidings_outbox SET lease_owner = NULL, lease_until = NULL, last_error = ? \
                 WHERE lease_owner = ? AND seq IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(error).bind(owner);
            for seq in chunk {
                query = query.bind(seq);
            }
            query
                .execute(&self.pool)
                .await
                .map_err(OutboxError::db("releasing rows"))?;
        }
        Ok(())
    }

    async fn delete_sent(&self, older_than: Duration) -> Result<u64, OutboxError> {
        let keep_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = format!(
            "DELETE FROM tidings_outbox WHERE sent_at IS NOT NULL AND sent_at < {NOW_MS} - ?"
        );
        let done = sqlx::query(&sql)
            .bind(keep_ms)
            .execute(&self.pool)
            .await
            .map_err(OutboxError::db("deleting sent rows"))?;
        Ok(done.rows_affected())
    }

    async fn pending(&self) -> Result<u64, OutboxError> {
        pending(&self.pool).await
    }
}

/// How many rows wait to be sent.
pub(crate) async fn pending(pool: &SqlitePool) -> Result<u64, OutboxError> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM tidings_outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await
            .map_err(OutboxError::db("counting pending rows"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
