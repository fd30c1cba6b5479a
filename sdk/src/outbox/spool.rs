//! A durable local spool for services without a database (feature
//! `outbox-sqlite`).
//!
//! [`Spool::publish`] publishes directly while NATS answers. When it does
//! not (the connection is down, the publisher's retries ran out, or its
//! `max_in_flight` publishes left the event no turn within `queue_timeout`,
//! [`PublishError::Overloaded`]), the prepared event (same event id) goes
//! into a local SQLite file instead and
//! the call returns [`Delivery::Spooled`]; a [`Relay`] over the file
//! ([`Spool::relay`]) forwards spooled events once NATS is back, in order
//! per subject. While anything waits in the spool, new events are spooled
//! behind it rather than overtaking it. The spool is bounded
//! ([`SpoolConfig::max_events`]): when full, `publish` fails with
//! [`OutboxError::SpoolFull`] and nothing is written.
//!
//! A spool survives a restart of the process (the file is fsynced on each
//! commit); it does not survive the loss of the machine's disk, and it is
//! not transactional with anything else: a service with a database should
//! use the outbox in that database instead.
use std::path::{Path, PathBuf};

use sqlx::SqlitePool;
use uuid::Uuid;

use super::row::NewRow;
use super::sqlite::{self, SqliteOutbox};
use super::{OutboxError, Relay, RelayConfig, Store as _};
use crate::event::DomainEvent;
use crate::publish::{Prepared, PublishContext, PublishError, Published, Publisher};

/// How a [`Spool`] is bounded and forwarded.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// The most events the spool holds unsent (default 100,000).
    pub max_events: u64,
    /// The forwarding relay's settings.
    pub relay: RelayConfig,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_events: 100_000,
            relay: RelayConfig::default(),
        }
    }
}

/// Where an event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored by the stream (PubAck received).
    Published(Published),
    /// Written to the spool, to be forwarded by its relay.
    Spooled {
        /// The event id (the `Nats-Msg-Id` it will be forwarded with).
        event_id: Uuid,
    },
}

/// A publisher that falls back to a local, bounded, durable spool.
#[derive(Debug, Clone)]
pub struct Spool {
    publisher: Publisher,
    outbox: SqliteOutbox,
    path: PathBuf,
    config: SpoolConfig,
}

impl Spool {
    /// Opens (creating if missing) the spool file at `path`.
    pub async fn open(
        path: impl AsRef<Path>,
        publisher: Publisher,
        config: SpoolConfig,
    ) -> Result<Self, OutboxError> {
        let path = path.as_ref().to_path_buf();
        let pool = sqlite::connect(&path).await?;
        Ok(Self {
            outbox: SqliteOutbox::new(pool, &publisher),
            publisher,
            path,
            config,
        })
    }

    /// The relay that forwards spooled events; run it for as long as the
    /// spool is used (`relay.run(stop).await`, usually in its own task).
    pub fn relay(&self) -> Relay<SqliteOutbox> {
        Relay::with_config(
            self.outbox.clone(),
            self.publisher.clone(),
            self.config.relay.clone(),
        )
    }

    /// How many events wait in the spool.
    pub async fn pending(&self) -> Result<u64, OutboxError> {
        self.outbox.pending().await
    }

    /// Publishes `event`, or spools it when NATS does not answer or the
    /// publisher is overloaded (see the [module docs](self)). Events the
    /// server or the encoder refuse (invalid, too large, no stream) are
    /// returned as errors, not spooled.
    pub async fn publish<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Delivery, OutboxError> {
        let prepared = self.publisher.prepare(ctx, event)?;
        let connected =
            self.publisher.client().connection_state() == async_nats::connection::State::Connected;
        if !connected || self.pending().await? > 0 {
            return self.spool(&prepared).await;
        }
        match self.publisher.send(prepared.clone()).await {
            Ok(published) => Ok(Delivery::Published(published)),
            Err(error @ PublishError::RetriesExhausted { .. }) => {
                tracing::warn!(%error, event_id = %prepared.event_id(), "NATS did not answer; event spooled");
                self.spool(&prepared).await
            }
            Err(error @ PublishError::Overloaded { .. }) => {
                tracing::warn!(%error, event_id = %prepared.event_id(), "the publisher had no turn for it; event spooled");
                self.spool(&prepared).await
            }
            Err(error) => Err(OutboxError::Prepare(error)),
        }
    }

    /// Writes a prepared event into the spool, refusing it when full.
    async fn spool(&self, prepared: &Prepared) -> Result<Delivery, OutboxError> {
        let pool: &SqlitePool = self.outbox.pool();
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(OutboxError::db("starting a spool write"))?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tidings_outbox WHERE sent_at IS NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(OutboxError::db("counting spooled events"))?;
        let pending = u64::try_from(pending).unwrap_or(0);
        if pending >= self.config.max_events {
            return Err(OutboxError::SpoolFull {
                path: self.path.display().to_string(),
                pending,
                max: self.config.max_events,
            });
        }
        sqlite::insert(&mut tx, &NewRow::from_prepared(prepared)).await?;
        tx.commit()
            .await
            .map_err(OutboxError::db("committing a spool write"))?;
        tracing::debug!(event_id = %prepared.event_id(), subject = prepared.subject(), "event spooled");
        Ok(Delivery::Spooled {
            event_id: prepared.event_id(),
        })
    }
}
