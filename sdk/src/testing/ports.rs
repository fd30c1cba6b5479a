use std::net::TcpListener;

use super::HarnessError;

/// Asks the kernel for a free port on 127.0.0.1. The port is released again
/// before nats-server binds it, so a start that loses the race retries with a
/// fresh port (see `NatsServer`).
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| HarnessError::io("reserving a free port on 127.0.0.1", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("reading a reserved port", e))?
        .port();
    Ok(port)
}
