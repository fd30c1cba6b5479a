//! Typed handlers behind one object-safe interface, keyed by event type.
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::future::Either;
use futures_util::FutureExt;
use serde_json::Value;

use super::event::{Event, EventMeta};
use super::stall::Progress;
use super::Handler;
use crate::upcast::ReadAnyVersion;

/// The error a handler returns: anything that converts into a boxed error
/// (`anyhow::Error`, `std::io::Error`, a `String`...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a delivery did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The payload cannot be read as the handler's type: retrying cannot help.
    Unreadable(String),
    /// The handler returned an error or panicked: worth retrying.
    Handler(String),
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A handler of one event type, with the payload type erased.
pub(crate) trait ErasedHandler: Send + Sync {
    /// `service.entity.action`.
    fn event_type(&self) -> &'static str;
    /// The stream of the event type.
    fn stream(&self) -> &'static str;
    /// The handler's schema version.
    fn version(&self) -> u32;
    /// Reads the payload (`data`, written with `meta.schema_version`) as
    /// the handler's type and runs the handler.
    fn call(&self, data: Value, meta: EventMeta, progress: Option<Progress>) -> HandlerFuture;
}

/// A typed handler function.
pub(crate) struct Typed<E, F> {
    f: F,
    _event: PhantomData<fn() -> E>,
}

impl<E, F> Typed<E, F> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            f,
            _event: PhantomData,
        }
    }
}

impl<E, H> ErasedHandler for Typed<E, H>
where
    E: ReadAnyVersion,
    H: Handler<E>,
{
    fn event_type(&self) -> &'static str {
        E::EVENT_TYPE
    }

    fn stream(&self) -> &'static str {
        E::STREAM
    }

    fn version(&self) -> u32 {
        E::SCHEMA_VERSION
    }

    fn call(&self, data: Value, meta: EventMeta, progress: Option<Progress>) -> HandlerFuture {
        let payload = match E::read_any_version(meta.schema_version, data) {
            Ok(payload) => payload,
            Err(e) => return Box::pin(std::future::ready(Err(Failure::Unreadable(e.to_string())))),
        };
        // Combinators, not an `async` block: a block would keep the event
        // it captured beside the copy the handler's future holds, and the
        // box would outgrow what the allocator serves from its fast
        // per-thread caches (1,032 bytes in glibc).
        let run = invoke(&self.f, Event::new(payload, meta, progress));
        Box::pin(run.map(|result| result.map_err(|refusal| Failure::Handler(refusal.to_string()))))
    }
}

/// Why a handler did not handle an event: it returned an error or panicked.
/// Either way the subscriber NAKs the event, to be retried and, after the
/// last delivery, dead-lettered with this text as the reason.
#[derive(Debug, thiserror::Error)]
pub enum HandlerFailure {
    /// The handler returned this error.
    #[error("{}", error_chain(.0.as_ref()))]
    Error(BoxError),
    /// The handler panicked with this message.
    #[error("the handler panicked: {0}")]
    Panicked(String),
}

/// Runs `handler` on `event` as the subscriber does: a panic, in the call
/// or while its future runs, is caught and becomes a failure like a
/// returned error, never lost. The handler is called at once; the future
/// it returns holds the event, and nothing here holds a second copy.
pub(crate) fn invoke<E, H: Handler<E>>(
    handler: &H,
    event: Event<E>,
) -> impl Future<Output = Result<(), HandlerFailure>> + Send + 'static {
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(event))) {
        Ok(run) => Either::Left(AssertUnwindSafe(run).catch_unwind().map(|ran| match ran {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HandlerFailure::Error(e.into())),
            Err(panic) => Err(panicked(&*panic)),
        })),
        Err(panic) => Either::Right(std::future::ready(Err(panicked(&*panic)))),
    }
}

/// A caught panic as a failure, with its message.
fn panicked(panic: &(dyn std::any::Any + Send)) -> HandlerFailure {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_string());
    HandlerFailure::Panicked(message)
}

/// An error and its sources, `: `-separated.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
