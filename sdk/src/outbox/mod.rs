//! The transactional outbox: an event committed with the data it describes.
//!
//! A service that writes its database and then publishes makes a dual
//! write: if NATS is unreachable for longer than the publisher's retry
//! schedule, or the process dies between its commit and its publish, the
//! event exists nowhere. With the outbox, the service writes the prepared
//! event (validated and encoded exactly as [`Publisher::publish`] would:
//! id, subject, headers, body) into an outbox table **inside its own
//! transaction** ([`sqlite::SqliteOutbox::enqueue`],
//! [`postgres::PgOutbox::enqueue`]); the event exists if and only if the
//! transaction commits. A [`Relay`] then publishes pending rows:
//!
//! - each with `Nats-Msg-Id` = its event id, awaiting the PubAck before it
//!   marks the row sent;
//! - through NATS outages of any length: a failed row stays pending and is
//!   retried with backoff (capped at [`RelayConfig::max_backoff`]), forever;
//! - in order per subject (the subject holds the tenant and entity key):
//!   a relay claims whole subjects under a lease, publishes each subject's
//!   rows one after the other, and stops a subject at its first failure;
//! - safely with several relays on one table: a subject leased by one relay
//!   is skipped by the others until its rows are marked or its lease ends;
//! - after a crash between a PubAck and the marking: the row is published
//!   again under the same `Nats-Msg-Id`, which the stream answers
//!   `duplicate` within its duplicate window. Beyond the window, a row that
//!   was claimed before is first looked up: if the last message stored on
//!   its subject carries its event id, it is marked sent without a second
//!   publish. The bound: a row claimed before, older than the window, whose
//!   subject received another message since (from outside this outbox),
//!   may be stored twice; consumers deduplicate by event id
//!   (`tidings::idempotency`).
//!
//! Sent rows are deleted after [`RelayConfig::keep_sent`], checked every
//! [`RelayConfig::cleanup_every`].
//!
//! The table's schema is given by each backend (`MIGRATION`, and a
//! `migrate()` that runs it). [`spool`] turns the SQLite backend into a
//! local, bounded, durable spool for services without a database.
//!
//! [`Publisher::publish`]: crate::Publisher::publish
mod relay;
mod row;
mod store;

#[cfg(feature = "outbox-postgres")]
pub mod postgres;
#[cfg(feature = "outbox-sqlite")]
pub mod spool;
#[cfg(feature = "outbox-sqlite")]
pub mod sqlite;

pub use relay::{Relay, RelayConfig, RelayPass};
pub use row::PendingRow;
/// The sqlx this outbox is built on, for the caller's pool and transactions
/// (the same version, so a `Transaction` of yours fits `enqueue`).
pub use sqlx;
pub use store::Store;

use crate::publish::PublishError;

/// The failpoint between the PubAcks of a relay's batch and marking its
/// rows sent (see `tidings::testing::failpoint`).
pub const FAILPOINT_AFTER_PUBACK: &str = "outbox-after-puback";

/// Why the outbox could not store, read or mark an event.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The event was refused before it reached the table (invalid payload,
    /// too large, bad subject token): nothing was written.
    #[error("the event was not enqueued: {0}")]
    Prepare(#[from] PublishError),
    /// The database refused an outbox statement.
    #[error(
        "outbox table tidings_outbox: {what} failed: {source}. Check the database is reachable \
         and the table exists (run the backend's migrate() or MIGRATION)"
    )]
    Database {
        /// What the outbox was doing.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A row holds something the relay cannot send (edited by hand, or
    /// written by an incompatible version).
    #[error(
        "outbox table tidings_outbox, row {seq}: {detail}. The row is left pending; fix or \
         delete it"
    )]
    CorruptRow {
        /// The row's sequence number.
        seq: i64,
        /// What is wrong with it.
        detail: String,
    },
    /// The spool holds as many events as it may; nothing was written.
    #[error(
        "the spool at {path} is full ({pending} events waiting to be forwarded, the limit is \
         {max}): NATS has been unreachable for a while. The event was not published; retry \
         later or raise SpoolConfig::max_events"
    )]
    SpoolFull {
        /// The spool's database file.
        path: String,
        /// How many events wait in it.
        pending: u64,
        /// Its limit.
        max: u64,
    },
}

impl OutboxError {
    pub(crate) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { what, source }
    }
}

/// The outbox table, in every backend.
pub const TABLE: &str = "tidings_outbox";
