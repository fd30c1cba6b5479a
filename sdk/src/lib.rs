//! Tidings: typed, schema-checked domain events on NATS JetStream.
//!
//! This crate is the runtime layer. With the `testing` feature it also offers
//! [`testing`], the real-nats-server harness this project's own tests use, so
//! services can test their event handling the same way.
#[cfg(feature = "testing")]
pub mod testing;
