//! `scripts/nats-server` honours a server the user already has and refuses an
//! unsuitable one with a message that says what to do.
use std::process::Command;

fn script() -> Command {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nats-server"))
}

#[test]
fn prints_the_binary_named_by_nats_server_bin() -> anyhow::Result<()> {
    let real = tidings::testing::nats_server_binary()?;
    let out = script().env("NATS_SERVER_BIN", &real).output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout)?;
    assert_eq!(
        std::fs::canonicalize(printed.trim())?,
        std::fs::canonicalize(&real)?
    );
    Ok(())
}

#[test]
fn refuses_a_too_old_server_with_advice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fake = dir.path().join("nats-server");
    // Written by a child shell so that no descriptor open for writing leaks
    // into a sibling test's fork (executing it would fail with ETXTBSY).
    let written = Command::new("sh")
        .arg("-c")
        .arg(r#"printf '#!/bin/sh\necho "nats-server: v2.9.10"\n' > "$1" && chmod 755 "$1""#)
        .arg("sh")
        .arg(&fake)
        .status()?;
    assert!(written.success());
    let out = script().env("NATS_SERVER_BIN", &fake).output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout when refusing");
    let stderr = String::from_utf8(out.stderr)?;
    assert!(stderr.contains("2.9.10"), "{stderr}");
    assert!(
        stderr.contains("Point NATS_SERVER_BIN at a newer binary"),
        "{stderr}"
    );
    Ok(())
}
