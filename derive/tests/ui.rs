//! Compile-fail tests: every error `#[derive(DomainEvent)]` reports, with
//! its span and message (`tests/ui/*.rs` and their `.stderr`), and the
//! error of generated code whose hand-written upcast is missing
//! (`missing_upcast.rs`: `tidings::upcast::UpcastFrom`).
//! `TRYBUILD=overwrite cargo test -p tidings-derive --test ui` refreshes the
//! expected output.
#![allow(missing_docs)]

#[test]
fn ui() {
    // trybuild builds the cases as a crate of its own under target/, so
    // point the derive at this crate's directory for `schema` paths.
    std::env::set_var(
        "TIDINGS_DERIVE_TEST_MANIFEST_DIR",
        env!("CARGO_MANIFEST_DIR"),
    );
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
