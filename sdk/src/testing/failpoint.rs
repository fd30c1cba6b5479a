//! Named places in the runtime where a fault test can stop a process.
//!
//! When the environment variable [`FAILPOINT_ENV`] names a failpoint, the
//! process that reaches it writes `failpoint <name> reached` on stdout and
//! then waits forever, so the test can SIGKILL it at exactly that step.
//! Without the `testing` feature the calls do not exist.
//!
//! | failpoint | where |
//! |---|---|
//! | `dlq-after-copy` | a dead letter's copy is acknowledged by DLQ_EVENTS, the original is not yet terminated |
use std::io::Write as _;

/// The environment variable naming the failpoint to stop at.
pub const FAILPOINT_ENV: &str = "TIDINGS_FAILPOINT";

/// Stops here, forever, if [`FAILPOINT_ENV`] names `name`.
pub async fn reached(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "failpoint {name} reached");
        let _ = out.flush();
        std::future::pending::<()>().await;
    }
}
