//! What a relay needs from an outbox table.
use std::future::Future;
use std::time::Duration;

use super::{OutboxError, PendingRow};

/// An outbox table a [`Relay`](super::Relay) drains. Implemented by
/// [`SqliteOutbox`](super::sqlite::SqliteOutbox) and
/// [`PgOutbox`](super::postgres::PgOutbox).
pub trait Store: Send + Sync + 'static {
    /// Leases up to `limit` pending rows to `owner` for `lease`, oldest
    /// first, never a row whose subject has a live lease of another owner,
    /// and returns them in sequence order.
    fn claim(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<PendingRow>, OutboxError>> + Send;

    /// Marks rows sent (their PubAck arrived).
    fn mark_sent(&self, seqs: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send;

    /// Gives back `owner`'s lease on rows it could not send, noting why.
    fn release(
        &self,
        owner: &str,
        seqs: &[i64],
        error: &str,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send;

    /// Deletes rows sent more than `older_than` ago; returns how many.
    fn delete_sent(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = Result<u64, OutboxError>> + Send;

    /// How many rows wait to be sent.
    fn pending(&self) -> impl Future<Output = Result<u64, OutboxError>> + Send;
}
