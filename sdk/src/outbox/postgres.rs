//! The outbox on PostgreSQL (feature `outbox-postgres`).
//!
//! Run [`MIGRATION`] with your migrations (or call [`migrate`]), enqueue
//! inside your transaction, run one or more [`Relay`](super::Relay)s:
//!
//! ```text
//! let outbox = PgOutbox::new(pool, &publisher);
//! let mut tx = outbox.pool().begin().await?;
//! sqlx::query("INSERT INTO users ...").execute(&mut *tx).await?;
//! outbox.enqueue(&mut tx, &ctx, &UserCreatedV1 { .. }).await?;
//! tx.commit().await?;
//! ```
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Row as _, Transaction};
use uuid::Uuid;

use super::row::{NewRow, RawRow};
use super::{OutboxError, PendingRow, Store};
use crate::event::DomainEvent;
use crate::publish::{Encoder, PublishContext, Publisher};

/// The outbox table and its indexes, idempotent (`IF NOT EXISTS`).
pub const MIGRATION: &str = "\
CREATE TABLE IF NOT EXISTS tidings_outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    subject TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claims BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    last_error TEXT,
    sent_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS tidings_outbox_pending ON tidings_outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS tidings_outbox_subject ON tidings_outbox (subject) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS tidings_outbox_sent ON tidings_outbox (sent_at) WHERE sent_at IS NOT NULL;
";

/// The advisory lock key that serialises claims (any relay, any process).
const CLAIM_LOCK: i64 = 0x0074_6964_696e_6773; // "tidings" in ASCII

/// Creates the outbox table if it does not exist ([`MIGRATION`]).
pub async fn migrate(pool: &PgPool) -> Result<(), OutboxError> {
    sqlx::raw_sql(MIGRATION)
        .execute(pool)
        .await
        .map_err(OutboxError::db("creating the table (MIGRATION)"))?;
    Ok(())
}

/// An outbox table in a PostgreSQL database: enqueue events in your
/// transactions, and hand it to a [`Relay`](super::Relay). Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgOutbox {
    pool: PgPool,
    encoder: Arc<Encoder>,
}

impl PgOutbox {
    /// The outbox of this database, encoding events as `publisher` does.
    pub fn new(pool: PgPool, publisher: &Publisher) -> Self {
        Self {
            pool,
            encoder: publisher.shared_encoder(),
        }
    }

    /// The database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Validates and encodes `event` as a publish would and writes it into
    /// the outbox inside the caller's transaction: it is published if and
    /// only if the transaction commits. Returns its event id.
    pub async fn enqueue<E: DomainEvent>(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Uuid, OutboxError> {
        let prepared = self.encoder.prepare_with_id(ctx, Uuid::now_v7(), event)?;
        let row = NewRow::from_prepared(&prepared);
        sqlx::query(
            "INSERT INTO tidings_outbox (event_id, stream, subject, headers, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.event_id)
        .bind(&row.stream)
        .bind(&row.subject)
        .bind(&row.headers)
        .bind(&row.body)
        .execute(&mut **tx)
        .await
        .map_err(OutboxError::db("inserting an event"))?;
        Ok(prepared.event_id())
    }
}

impl Store for PgOutbox {
    async fn claim(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<PendingRow>, OutboxError> {
        // Claims are serialised by a transaction-scoped advisory lock, so a
        // claim sees every lease committed before it: two relays never hold
        // rows of one subject at once. SKIP LOCKED passes over rows a
        // marking or releasing statement holds.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(OutboxError::db("starting a claim"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(OutboxError::db("taking the claim lock"))?;
        let rows = sqlx::query(
            "WITH busy AS ( \
               SELECT DISTINCT subject FROM tidings_outbox \
               WHERE sent_at IS NULL AND lease_until > clock_timestamp() AND lease_owner <> $1 \
             ), picked AS ( \
               SELECT o.seq FROM tidings_outbox o \
               WHERE o.sent_at IS NULL AND o.subject NOT IN (SELECT subject FROM busy) \
               ORDER BY o.seq LIMIT $2 FOR UPDATE SKIP LOCKED \
             ) \
             UPDATE tidings_outbox t SET lease_owner = $1, \
               lease_until = clock_timestamp() + make_interval(secs => $3), \
               claims = t.claims + 1 \
             FROM picked WHERE t.seq = picked.seq \
             RETURNING t.seq, t.event_id, t.stream, t.subject, t.headers, t.body, t.claims, \
               (EXTRACT(EPOCH FROM (clock_timestamp() - t.created_at)) * 1000)::BIGINT AS age_ms",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .bind(lease.as_secs_f64())
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
        sqlx::query(
            "UPDATE tidings_outbox SET sent_at = clock_timestamp(), lease_owner = NULL, \
             lease_until = NULL, last_error = NULL \
             WHERE sent_at IS NULL AND seq = ANY($1)",
        )
        .bind(seqs)
        .execute(&self.pool)
        .await
        .map_err(OutboxError::db("marking rows sent"))?;
        Ok(())
    }

    async fn release(&self, owner: &str, seqs: &[i64], error: &str) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE tidings_outbox SET lease_owner = NULL, lease_until = NULL, last_error = $1 \
             WHERE lease_owner = $2 AND seq = ANY($3)",
        )
        .bind(error)
        .bind(owner)
        .bind(seqs)
        .execute(&self.pool)
        .await
        .map_err(OutboxError::db("releasing rows"))?;
        Ok(())
    }

    async fn delete_sent(&self, older_than: Duration) -> Result<u64, OutboxError> {
        let done = sqlx::query(
            "DELETE FROM tidings_outbox WHERE sent_at IS NOT NULL \
             AND sent_at < clock_timestamp() - make_interval(secs => $1)",
        )
        .bind(older_than.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(OutboxError::db("deleting sent rows"))?;
        Ok(done.rows_affected())
    }

    async fn pending(&self) -> Result<u64, OutboxError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tidings_outbox WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(OutboxError::db("counting pending rows"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
