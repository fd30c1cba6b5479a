//! What a person sees when they mistype a command or ask for help.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn tidings(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn a_mistyped_subcommand_suggests_the_right_one_and_exits_2() {
    let out = tidings(&["chekc"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("similar subcommand exists: 'check'"),
        "{stderr}"
    );
}

#[test]
fn a_mistyped_flag_suggests_the_right_one() {
    let out = tidings(&["check", "--agains", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--against"), "{stderr}");
}

#[test]
fn every_help_names_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["compat", "--help"],
        &["generate", "--help"],
        &["new", "--help"],
        &["dlq", "--help"],
        &["dlq", "redrive", "--help"],
        &["dlq", "monitor", "--help"],
        &["permissions", "--help"],
        &["streams", "apply", "--help"],
    ] {
        let out = tidings(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The general rule, or a command's own more specific one.
        assert!(
            (stdout.contains("Exit codes:")
                && stdout.contains("2  usage, I/O or connection error"))
                || (stdout.contains("Exit status: 0 compatible, 1 incompatible, 2 invalid input")),
            "{args:?}: {stdout}"
        );
    }
}
