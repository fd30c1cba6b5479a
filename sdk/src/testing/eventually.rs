use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use super::HarnessError;

/// Polls `probe` every 20 ms until it returns `Ok`, for at most `timeout`.
///
/// For conditions that have no event to await (a replica catching up, a
/// consumer's pending count reaching zero). On time-out the error names
/// `what` and carries the probe's last error.
pub async fn eventually<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T, HarnessError>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(last) if started.elapsed() >= timeout => {
                return Err(HarnessError::TimedOut {
                    what: what.to_string(),
                    waited: started.elapsed(),
                    last: last.to_string(),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
