//! The chaos checker's accounting (`examples/chaos/check.rs`), tested on
//! hand-made logs: its unit tests run here, as examples' tests do not run
//! under `cargo test` (and building the example as a test would replace
//! the binary `scripts/chaos --debug` runs).
#[path = "../examples/chaos/check.rs"]
#[allow(dead_code)]
mod check;
