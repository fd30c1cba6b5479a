//! Build script of the `events` catalog crate: generates the typed events
//! of `schemas/` into `$OUT_DIR/events.rs`, which `src/lib.rs` includes.
//!
//! It reruns only when the registry changes (`cargo:rerun-if-changed` on
//! `schemas/` and each of its files), so editing Rust code never regenerates.
//! A registry problem stops the build with one line per problem naming the
//! schema file, line and JSON pointer (run `tidings check` for the full
//! report).

// A build script talks to cargo on stdout and to the user on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use tidings_codegen::generate::{generate_dir, Options};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let schemas = manifest.join("schemas");
    println!("cargo:rerun-if-changed=schemas");
    let generated = match generate_dir(&schemas, &Options::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: the event registry (schemas/) cannot be turned into Rust");
            if e.diagnostics().is_empty() {
                eprintln!("  {e}");
            }
            for d in e.diagnostics() {
                eprintln!("schemas/{d}");
            }
            eprintln!("run `cargo run -p tidings-cli -- check` for the full report");
            std::process::exit(1);
        }
    };
    for file in &generated.inputs {
        println!("cargo:rerun-if-changed=schemas/{file}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("events.rs");
    // Unchanged output is not rewritten, so its mtime stays put.
    if std::fs::read_to_string(&out).ok().as_deref() != Some(generated.code.as_str()) {
        if let Err(e) = std::fs::write(&out, &generated.code) {
            eprintln!("error: cannot write {}: {e}", out.display());
            std::process::exit(1);
        }
    }
}
