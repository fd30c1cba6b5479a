use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::HarnessError;

/// The oldest nats-server the harness (and Tidings) supports.
pub const MIN_SERVER_VERSION: &str = "2.10.0";

/// Finds the nats-server binary: `NATS_SERVER_BIN` if set, else `nats-server`
/// on `PATH`. The answer is checked (it must run and report version 2.10 or
/// newer) and cached for the life of the process.
pub fn nats_server_binary() -> Result<PathBuf, HarnessError> {
    static FOUND: OnceLock<Result<PathBuf, HarnessError>> = OnceLock::new();
    match FOUND.get_or_init(locate) {
        Ok(path) => Ok(path.clone()),
        Err(e) => Err(copy_of(e)),
    }
}

/// The cached error again, as it was (`HarnessError` is not `Clone`: its
/// I/O source is copied by kind and text).
fn copy_of(e: &HarnessError) -> HarnessError {
    match e {
        HarnessError::BinaryNotFound { detail, min } => HarnessError::BinaryNotFound {
            detail: detail.clone(),
            min,
        },
        HarnessError::BinaryTooOld { path, version, min } => HarnessError::BinaryTooOld {
            path: path.clone(),
            version: version.clone(),
            min,
        },
        HarnessError::Io { what, source } => HarnessError::Io {
            what: what.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => HarnessError::BinaryNotFound {
            detail: other.to_string(),
            min: MIN_SERVER_VERSION,
        },
    }
}

fn locate() -> Result<PathBuf, HarnessError> {
    if let Some(explicit) = std::env::var_os("NATS_SERVER_BIN") {
        let path = PathBuf::from(explicit);
        check_version(&path)?;
        return Ok(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let candidate = std::env::split_paths(&path_var)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::BinaryNotFound {
            detail: "NATS_SERVER_BIN is unset and there is no nats-server on PATH".into(),
            min: MIN_SERVER_VERSION,
        })?;
    check_version(&candidate)?;
    Ok(candidate)
}

fn check_version(path: &Path) -> Result<(), HarnessError> {
    let output = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| HarnessError::io(format!("running {} --version", path.display()), e))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text).ok_or_else(|| HarnessError::BinaryNotFound {
        detail: format!(
            "{} --version printed {:?}, which is not a nats-server version",
            path.display(),
            text.trim()
        ),
        min: MIN_SERVER_VERSION,
    })?;
    let min = parse_version(&format!("nats-server: v{MIN_SERVER_VERSION}")).unwrap_or((2, 10, 0));
    if version < min {
        return Err(HarnessError::BinaryTooOld {
            path: path.to_path_buf(),
            version: format!("{}.{}.{}", version.0, version.1, version.2),
            min: MIN_SERVER_VERSION,
        });
    }
    Ok(())
}

/// Parses `nats-server: v2.15.1` (also without the `v`) into its numbers.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.trim().strip_prefix("nats-server:")?.trim();
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let core = rest.split(['-', ' ', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::{check_version, copy_of, parse_version};
    use crate::testing::HarnessError;

    /// A stand-in binary that prints the given `--version` line. A child
    /// shell writes it, so no thread of this test process ever holds it open
    /// for writing: a sibling test forking at that moment would inherit the
    /// descriptor and make executing the file fail with ETXTBSY.
    fn fake_server(dir: &std::path::Path, version_line: &str) -> std::path::PathBuf {
        let path = dir.join("nats-server");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"printf '#!/bin/sh\necho "%s"\n' "$1" > "$2" && chmod 755 "$2""#)
            .arg("sh")
            .arg(version_line)
            .arg(&path)
            .status()
            .expect("sh runs");
        assert!(status.success());
        path
    }

    #[test]
    fn rejects_an_old_server_and_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fake_server(dir.path(), "nats-server: v2.9.10");
        match check_version(&path) {
            Err(HarnessError::BinaryTooOld { version, .. }) => assert_eq!(version, "2.9.10"),
            other => panic!("expected BinaryTooOld, got {other:?}"),
        }
        let ok = fake_server(dir.path(), "nats-server: v2.10.0");
        assert!(check_version(&ok).is_ok());
    }

    #[test]
    fn rejects_a_binary_that_is_not_nats_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fake_server(dir.path(), "hello");
        let err = check_version(&path).expect_err("not a server");
        assert!(
            err.to_string().contains("not a nats-server version"),
            "{err}"
        );
        assert!(err.to_string().contains("NATS_SERVER_BIN"), "{err}");
    }

    #[test]
    fn parses_release_and_prerelease_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: 2.9.10"), Some((2, 9, 10)));
        assert_eq!(parse_version("nats-server: v2.12.0-RC.3"), Some((2, 12, 0)));
        assert_eq!(parse_version("nats-server: v2.11"), Some((2, 11, 0)));
        assert_eq!(parse_version("something else"), None);
        assert_eq!(parse_version("nats-server: vX.Y"), None);
    }

    #[test]
    fn old_versions_compare_below_the_minimum() {
        assert!(parse_version("nats-server: v2.9.25") < Some((2, 10, 0)));
        assert!(parse_version("nats-server: v2.10.0") >= Some((2, 10, 0)));
    }

    #[test]
    fn a_cached_failure_is_reported_once_as_it_was() {
        let missing = HarnessError::BinaryNotFound {
            detail: "NATS_SERVER_BIN is unset and there is no nats-server on PATH".into(),
            min: super::MIN_SERVER_VERSION,
        };
        let again = copy_of(&missing).to_string();
        assert_eq!(again, missing.to_string());
        assert_eq!(again.matches("no nats-server found").count(), 1, "{again}");
        let old = HarnessError::BinaryTooOld {
            path: "/opt/nats-server".into(),
            version: "2.9.10".into(),
            min: super::MIN_SERVER_VERSION,
        };
        assert!(matches!(copy_of(&old), HarnessError::BinaryTooOld { .. }));
        assert_eq!(copy_of(&old).to_string(), old.to_string());
    }
}
