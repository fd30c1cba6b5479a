//! The compatibility engine (being built in the schema-registry issue).
mod model;

pub use model::{Breaks, Mode, Policy, UnknownMode, UnknownPolicy};
