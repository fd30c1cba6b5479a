//! This organisation's event catalog.
//!
//! Typed events are generated here from `schemas/` by `build.rs`, so services
//! write `events::auth::UserCreated`. Until the generator lands the crate only
//! re-exports the runtime.
pub use tidings;
