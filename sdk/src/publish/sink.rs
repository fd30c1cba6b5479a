//! The seam between a service's code and the publisher: what it calls to
//! publish, implemented by [`Publisher`] and by the recording fake of
//! `tidings::testing`.
use std::future::Future;

use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{batch, Encoder, Prepared, PublishContext, PublishError, Published, Publisher};
use crate::event::DomainEvent;

/// Something that publishes prepared events: [`Publisher`], or
/// `tidings::testing::RecordingPublisher` in a service's unit tests.
///
/// Object-safe: take `&dyn Publish`, `Arc<dyn Publish>` or a generic
/// `P: Publish`. The typed calls (`publish`, `publish_with_id`,
/// `publish_batch`, `prepare`, `prepare_with_id`) come from [`PublishExt`],
/// implemented for every `Publish`, so they work on all three:
///
/// ```
/// use tidings::{PublishContext, PublishExt, Published};
/// use tidings::publish::{Publish, PublishError};
///
/// async fn announce<E: tidings::DomainEvent>(
///     publisher: &dyn Publish,
///     organization: &str,
///     event: &E,
/// ) -> Result<Published, PublishError> {
///     let ctx = PublishContext::new(organization)?;
///     publisher.publish(&ctx, event).await
/// }
/// ```
///
/// Every implementation validates and encodes through its [`Encoder`], so
/// a payload refused by one is refused by all, with the same error.
pub trait Publish: Send + Sync {
    /// What validates and encodes events before they are sent.
    fn encoder(&self) -> &Encoder;

    /// Sends a prepared event (see [`Publisher::send`]).
    fn send(&self, prepared: Prepared) -> BoxFuture<'_, Result<Published, PublishError>>;

    /// Sends prepared events as one batch, one result per entry in input
    /// order; an entry that failed to prepare is answered with its error
    /// (see [`Publisher::publish_batch`]).
    fn send_batch(
        &self,
        prepared: Vec<Result<Prepared, PublishError>>,
    ) -> BoxFuture<'_, Vec<Result<Published, PublishError>>>;
}

/// The typed calls of every [`Publish`]: validate and encode with its
/// [`Encoder`], then send. [`Publisher`] has the same calls as its own
/// methods; bring this trait into scope to call them on a `&dyn Publish` or
/// a generic `P: Publish`.
pub trait PublishExt: Publish {
    /// Publishes one event (see [`Publisher::publish`]).
    fn publish<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> impl Future<Output = Result<Published, PublishError>> + Send {
        let prepared = self.prepare(ctx, event);
        async move { self.send(prepared?).await }
    }

    /// Publishes one event under the caller's event id (see
    /// [`Publisher::publish_with_id`]).
    fn publish_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> impl Future<Output = Result<Published, PublishError>> + Send {
        let prepared = self.prepare_with_id(ctx, event_id, event);
        async move { self.send(prepared?).await }
    }

    /// Publishes many events, one result per event in input order (see
    /// [`Publisher::publish_batch`]).
    fn publish_batch<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        events: &[E],
    ) -> impl Future<Output = Vec<Result<Published, PublishError>>> + Send {
        let prepared = events.iter().map(|e| self.prepare(ctx, e)).collect();
        self.send_batch(prepared)
    }

    /// Validates and encodes an event under a new event id (a UUID v7)
    /// without sending it.
    fn prepare<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        self.encoder().prepare_with_id(ctx, Uuid::now_v7(), event)
    }

    /// Validates and encodes an event under the caller's event id without
    /// sending it.
    fn prepare_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        self.encoder().prepare_with_id(ctx, event_id, event)
    }
}

impl<P: Publish + ?Sized> PublishExt for P {}

impl Publish for Publisher {
    fn encoder(&self) -> &Encoder {
        &self.inner.encoder
    }

    fn send(&self, prepared: Prepared) -> BoxFuture<'_, Result<Published, PublishError>> {
        Box::pin(Publisher::send(self, prepared))
    }

    fn send_batch(
        &self,
        prepared: Vec<Result<Prepared, PublishError>>,
    ) -> BoxFuture<'_, Vec<Result<Published, PublishError>>> {
        Box::pin(batch::publish(self, prepared))
    }
}
