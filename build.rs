//! Build script of the `events` catalog crate.
//!
//! The generator that turns `schemas/` into typed Rust events will run here; it
//! is only told to rerun when the registry changes, so editing Rust code never
//! re-triggers it.
fn main() {
    println!("cargo:rerun-if-changed=schemas");
    println!("cargo:rerun-if-changed=build.rs");
}
