//! Tidings: typed, schema-checked domain events on NATS JetStream.
//!
//! This crate is the runtime layer: the [`DomainEvent`] trait, subject tokens
//! and subjects, and payload validation. With the `testing` feature it also
//! offers `tidings::testing`, the real-nats-server harness this project's own tests
//! use, so services can test their event handling the same way.

// Generated code names `::tidings::...`; this lets the crate use it too.
extern crate self as tidings;

pub mod builder;
pub mod connect;
pub mod dlq;
pub mod envelope;
pub mod event;
pub mod idempotency;
pub mod lag;
#[cfg(any(feature = "outbox-sqlite", feature = "outbox-postgres"))]
pub mod outbox;
pub mod publish;
pub mod replay;
pub mod schema;
pub mod stats;
pub mod streams;
pub mod subject;
pub mod subscribe;
pub mod telemetry;
pub mod token;
pub mod upcast;

pub use event::{DomainEvent, EntityKey};
pub use publish::{Publish, PublishContext, PublishExt, Published, Publisher, PublisherConfig};
pub use subscribe::{
    stop_signal, Event, EventMeta, Running, StopSignal, Subscriber, SubscriberConfig,
};
/// `#[derive(DomainEvent)]`: see the `tidings-derive` crate and `docs/derive.md`.
pub use tidings_derive::DomainEvent;
pub use token::{InvalidToken, OrganizationId};

#[cfg(feature = "testing")]
pub mod testing;
