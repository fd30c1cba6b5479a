//! Running until the process is told to stop (FR-017): SIGTERM (what
//! Kubernetes, systemd and `docker stop` send) or SIGINT (Ctrl-C), then a
//! graceful shutdown within the configured deadline.
use std::future::Future;

use super::{Running, ShutdownReport};

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

/// Installs handlers for SIGTERM and SIGINT (Ctrl-C) now and returns a
/// future that resolves at the first of them. From this call on, those
/// signals no longer end the process: the caller decides what stopping
/// means (for a service with several consumer groups, await it, then
/// [`Running::shutdown`] each). Call it inside the Tokio runtime, before
/// starting work, so a signal that arrives early is not missed.
///
/// # Errors
/// The operating system refused the signal handlers.
pub fn stop_signal() -> std::io::Result<impl Future<Output = StopSignal> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => StopSignal::Terminate,
                _ = interrupt.recv() => StopSignal::Interrupt,
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C; stopping now");
            }
            StopSignal::Interrupt
        })
    }
}

impl Running {
    /// Runs until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully
    /// ([`shutdown`](Self::shutdown)): pulling stops, in-flight handlers
    /// finish and ack within the deadline, the acks are flushed. The
    /// one-liner for a service with one consumer group:
    /// `subscriber.start().await?.until_stop_signal().await?`.
    ///
    /// # Errors
    /// The signal handlers could not be installed; the group is then shut
    /// down gracefully at once, before the error is returned.
    pub async fn until_stop_signal(self) -> std::io::Result<ShutdownReport> {
        let stop = match stop_signal() {
            Ok(stop) => stop,
            Err(e) => {
                tracing::error!(group = %self.group(), error = %e, "cannot listen for SIGTERM/SIGINT; shutting down now");
                self.shutdown().await;
                return Err(e);
            }
        };
        let signal = stop.await;
        tracing::info!(group = %self.group(), ?signal, "stop signal received; shutting down gracefully");
        Ok(self.shutdown().await)
    }
}
