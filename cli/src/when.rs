//! Durations and instants as people write them on the command line.
use std::time::Duration;

use anyhow::bail;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        anyhow::anyhow!(
            "{flag} {text:?} is not a duration; write a whole number with ms, s, m or h (e.g. 30s, 15m)"
        )
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        bail!("{flag} must be longer than zero");
    }
    Ok(d)
}

/// An instant: RFC 3339 (`2026-12-03T10:00:00Z`), or a duration before
/// `now` (`10m`: ten minutes ago).
pub fn instant(flag: &str, text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text.trim(), &Rfc3339) {
        return Ok(at);
    }
    let ago = duration(flag, text).map_err(|_| {
        anyhow::anyhow!(
            "{flag} {text:?} is neither an RFC 3339 time (2026-12-03T10:00:00Z) nor a duration ago (10m, 2h)"
        )
    })?;
    Ok(now - ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_times_or_durations_ago() -> anyhow::Result<()> {
        let now = OffsetDateTime::parse("2026-12-03T10:00:00Z", &Rfc3339)?;
        let ten_ago = OffsetDateTime::parse("2026-12-03T09:50:00Z", &Rfc3339)?;
        assert_eq!(instant("--since", "10m", now)?, ten_ago);
        assert_eq!(instant("--since", "2026-12-03T09:50:00Z", now)?, ten_ago);
        let Err(err) = instant("--since", "yesterday", now) else {
            anyhow::bail!("\"yesterday\" was accepted");
        };
        let err = err.to_string();
        assert!(err.contains("--since \"yesterday\" is neither"), "{err}");
        Ok(())
    }
}
