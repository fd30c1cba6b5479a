//! A fault-injecting TCP proxy between NATS clients and a server, on loopback.
//!
//! [`FaultProxy`] listens on a free `127.0.0.1` port and forwards every
//! connection to a server's client port. It reads the NATS protocol in both
//! directions frame by frame (a control line, and for `PUB`, `HPUB`, `MSG`
//! and `HMSG` the payload its byte count announces), so a test can lose
//! exactly the message it means to: a PubAck on its way to the publisher,
//! an ack on its way to the server, a consumer's terminate. Besides single
//! frames it can delay everything, throttle to a byte rate, blackhole both
//! directions while keeping the connections open, and reset every
//! connection (TCP RST).
//!
//! Rules ([`FaultProxy::drop_next`], [`FaultProxy::cut_next`],
//! [`FaultProxy::count`]) return a [`Rule`] whose [`wait`](Rule::wait) awaits
//! the moment the rule has matched `n` frames, so a test waits for the fault
//! instead of sleeping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tidings::testing::{FaultProxy, Flow, Frame, NatsServer};
//!
//! let server = NatsServer::launch().await?;
//! let proxy = FaultProxy::start(server.port()).await?;
//! let client = async_nats::connect(proxy.url()).await?;
//! // The next PubAck the client would receive is lost.
//! let lost = proxy.drop_next(Flow::ServerToClient, 1, Frame::is_puback);
//! // ... publish through `client` ...
//! lost.wait(1, Duration::from_secs(5)).await?;
//! # let _ = client;
//! # Ok(()) }
//! ```
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::HarnessError;

/// A control line longer than this without its `\r\n` is forwarded as it
/// is, unparsed (nats-server's own limit is 4 KiB; INFO can be longer).
const MAX_LINE: usize = 1 << 20;
/// Frames queued per direction before the proxy stops reading.
const QUEUE: usize = 1024;

/// Which way a frame travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// From the client to the server (`CONNECT`, `PUB`, `SUB`, acks, ...).
    ClientToServer,
    /// From the server to the client (`INFO`, `MSG`, PubAcks, `+OK`, ...).
    ServerToClient,
}

/// One protocol frame as the proxy saw it: a control line and, for
/// messages, the payload.
#[derive(Clone)]
pub struct Frame {
    direction: Flow,
    raw: Bytes,
    /// The control line without `\r\n`.
    line_len: usize,
    /// For messages: the headers' and the whole payload's length.
    sizes: Option<(usize, usize)>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("direction", &self.direction)
            .field("line", &String::from_utf8_lossy(self.line()))
            .field("len", &self.raw.len())
            .finish()
    }
}

impl Frame {
    /// Which way it travels.
    pub fn direction(&self) -> Flow {
        self.direction
    }

    /// The control line, without `\r\n`.
    pub fn line(&self) -> &[u8] {
        &self.raw[..self.line_len]
    }

    fn tokens(&self) -> Vec<&str> {
        std::str::from_utf8(self.line())
            .map(|l| l.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// The operation, upper-cased (`PUB`, `HMSG`, `PING`, `+OK`, ...).
    pub fn op(&self) -> String {
        self.tokens()
            .first()
            .map(|t| t.to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// Whether it carries a message (`PUB`, `HPUB`, `MSG`, `HMSG`).
    pub fn is_message(&self) -> bool {
        self.sizes.is_some()
    }

    /// A message's subject.
    pub fn subject(&self) -> Option<String> {
        if !self.is_message() {
            return None;
        }
        self.tokens().get(1).map(|s| (*s).to_string())
    }

    /// A message's reply subject, if it has one.
    pub fn reply(&self) -> Option<String> {
        let tokens = self.tokens();
        let op = tokens.first()?.to_ascii_uppercase();
        // Tokens without a reply: PUB s n | HPUB s h t | MSG s sid n | HMSG s sid h t.
        let (with_reply, at) = match op.as_str() {
            "PUB" => (4, 2),
            "HPUB" => (5, 2),
            "MSG" => (5, 3),
            "HMSG" => (6, 3),
            _ => return None,
        };
        (tokens.len() == with_reply).then(|| tokens[at].to_string())
    }

    /// A message's headers block (empty without headers).
    pub fn headers(&self) -> &[u8] {
        match self.sizes {
            Some((headers, _)) => {
                let start = self.line_len + 2;
                &self.raw[start..start + headers]
            }
            None => &[],
        }
    }

    /// A message's body, after its headers.
    pub fn payload(&self) -> &[u8] {
        match self.sizes {
            Some((headers, total)) => {
                let start = self.line_len + 2;
                &self.raw[start + headers..start + total]
            }
            None => &[],
        }
    }

    /// Whether the body holds `needle`.
    pub fn payload_contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        !needle.is_empty() && self.payload().windows(needle.len()).any(|w| w == needle)
    }

    /// A JetStream API answer of type `io.nats.jetstream.api.v1.KIND` on
    /// its way to the client (`kind`: `stream_create_response`,
    /// `consumer_info_response`, ...).
    pub fn is_api_answer(&self, kind: &str) -> bool {
        self.direction == Flow::ServerToClient
            && self.is_message()
            && self.payload_contains(&format!("\"type\":\"io.nats.jetstream.api.v1.{kind}\""))
    }

    /// A JetStream PubAck on its way to a publisher: a message from the
    /// server on an `_INBOX.` subject whose body is a JSON object with
    /// `stream` and `seq`.
    pub fn is_puback(&self) -> bool {
        self.direction == Flow::ServerToClient
            && self.subject().is_some_and(|s| s.starts_with("_INBOX."))
            && serde_json::from_slice::<serde_json::Value>(self.payload())
                .is_ok_and(|v| v.get("stream").is_some() && v.get("seq").is_some())
    }

    /// A JetStream delivery to a consumer: a message from the server whose
    /// reply is an ack subject (`$JS.ACK.`).
    pub fn is_delivery(&self) -> bool {
        self.direction == Flow::ServerToClient
            && self.reply().is_some_and(|r| r.starts_with("$JS.ACK."))
    }

    /// The kind of a consumer's acknowledgement, from the client to an ack
    /// subject: `+ACK` (also an empty body), `-NAK`, `+TERM`, `+WPI`, ...
    pub fn ack_kind(&self) -> Option<String> {
        if self.direction != Flow::ClientToServer
            || !self.subject().is_some_and(|s| s.starts_with("$JS.ACK."))
        {
            return None;
        }
        let body = String::from_utf8_lossy(self.payload());
        let kind = body.split_ascii_whitespace().next().unwrap_or("+ACK");
        Some(kind.to_string())
    }

    /// A positive ack (`+ACK` or an empty body on an ack subject).
    pub fn is_ack(&self) -> bool {
        self.ack_kind().as_deref() == Some("+ACK")
    }

    /// A terminate (`+TERM`): the consumer gives the message up.
    pub fn is_term(&self) -> bool {
        self.ack_kind().as_deref() == Some("+TERM")
    }
}

/// Where a complete frame ends in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    /// The frame's length.
    end: usize,
    /// The control line's length, without `\r\n`.
    line_len: usize,
    /// For messages: the headers' and the whole payload's length.
    sizes: Option<(usize, usize)>,
}

impl Bounds {
    fn split(self, buf: &mut BytesMut, direction: Flow) -> Frame {
        Frame {
            direction,
            raw: buf.split_to(self.end).freeze(),
            line_len: self.line_len,
            sizes: self.sizes,
        }
    }
}

/// Where the next frame ends in `buf`: `None` while it is incomplete.
fn frame_end(buf: &[u8]) -> Option<Bounds> {
    let Some(line_len) = buf.windows(2).position(|w| w == b"\r\n") else {
        // An over-long line is forwarded as it is.
        return (buf.len() >= MAX_LINE).then_some(Bounds {
            end: buf.len(),
            line_len: buf.len(),
            sizes: None,
        });
    };
    let line = &buf[..line_len];
    let tokens: Vec<&[u8]> = line
        .split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
        .collect();
    let number =
        |t: Option<&&[u8]>| -> Option<usize> { std::str::from_utf8(t?).ok()?.parse().ok() };
    let op = tokens
        .first()
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_default();
    let sizes = match op.as_slice() {
        b"PUB" | b"MSG" => number(tokens.last()).map(|n| (0, n)),
        b"HPUB" | b"HMSG" => number(tokens.get(tokens.len().saturating_sub(2)))
            .zip(number(tokens.last()))
            .filter(|(h, t)| h <= t),
        _ => None,
    };
    let end = match sizes {
        // line, CRLF, payload, CRLF
        Some((_, total)) => line_len.checked_add(4)?.checked_add(total)?,
        None => line_len + 2,
    };
    (buf.len() >= end).then_some(Bounds {
        end,
        line_len,
        sizes,
    })
}

/// What a rule does with the frames it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Lose the frame; the connection goes on.
    Drop,
    /// Lose the frame and reset the connection it was on.
    Cut,
    /// Only count it.
    Count,
    /// Hold it, and every frame after it in its direction, until the
    /// rule is [released](Rule::release).
    Hold,
}

type Predicate = Box<dyn Fn(&Frame) -> bool + Send + Sync>;

struct RuleState {
    direction: Flow,
    predicate: Predicate,
    action: Action,
    /// Frames it may still act on (`u64::MAX`: no limit).
    remaining: AtomicU64,
    hits: watch::Sender<u64>,
    removed: std::sync::atomic::AtomicBool,
    /// For [`Action::Hold`]: set when the held frames may go.
    released: watch::Sender<bool>,
}

/// A rule installed in a [`FaultProxy`]: how often it matched, and a way
/// to await it.
#[derive(Clone)]
pub struct Rule {
    state: Arc<RuleState>,
    what: String,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("what", &self.what)
            .field("hits", &self.hits())
            .finish()
    }
}

impl Rule {
    /// Frames it has matched (dropped, cut or counted) so far.
    pub fn hits(&self) -> u64 {
        *self.state.hits.borrow()
    }

    /// Waits until it has matched `n` frames, for at most `timeout`.
    pub async fn wait(&self, n: u64, timeout: Duration) -> Result<(), HarnessError> {
        let started = std::time::Instant::now();
        let mut hits = self.state.hits.subscribe();
        let reached = tokio::time::timeout(timeout, hits.wait_for(|h| *h >= n))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            return Ok(());
        }
        Err(HarnessError::TimedOut {
            what: format!("{n} frames matched by the proxy rule {}", self.what),
            waited: started.elapsed(),
            last: format!("{} matched", self.hits()),
        })
    }

    /// Takes the rule out: frames it would have matched pass again.
    pub fn remove(&self) {
        self.state.removed.store(true, Ordering::SeqCst);
    }

    /// Lets the frame a [`hold_next`](FaultProxy::hold_next) rule holds
    /// go on, with the frames queued behind it, in their order.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }
}

#[derive(Debug, Default)]
struct Settings {
    delay: Duration,
    blackhole: bool,
    /// Bytes per second per direction and connection.
    throttle: Option<u64>,
}

#[derive(Default)]
struct Shared {
    settings: Mutex<Settings>,
    rules: Mutex<Vec<Arc<RuleState>>>,
    /// Open connections: a sender that closes each with a reset.
    connections: Mutex<HashMap<u64, watch::Sender<bool>>>,
    blackholed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the reader does with one frame.
enum Verdict {
    Forward,
    Lose,
    Cut,
    /// Forward it once the receiver says `true`.
    Hold(watch::Receiver<bool>),
}

impl Shared {
    fn judge(&self, frame: &Frame) -> Verdict {
        if lock(&self.settings).blackhole {
            self.blackholed.fetch_add(1, Ordering::Relaxed);
            return Verdict::Lose;
        }
        let rules: Vec<Arc<RuleState>> = {
            let mut rules = lock(&self.rules);
            rules.retain(|r| !r.removed.load(Ordering::SeqCst));
            rules.clone()
        };
        let mut verdict = Verdict::Forward;
        for rule in rules {
            if rule.direction != frame.direction || !(rule.predicate)(frame) {
                continue;
            }
            if rule.action == Action::Count {
                rule.hits.send_modify(|h| *h += 1);
                continue;
            }
            if !matches!(verdict, Verdict::Forward) {
                continue;
            }
            // Take one of its remaining frames, if it has any left.
            let took = rule
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| match r {
                    0 => None,
                    u64::MAX => Some(u64::MAX),
                    r => Some(r - 1),
                })
                .is_ok();
            if took {
                rule.hits.send_modify(|h| *h += 1);
                verdict = match rule.action {
                    Action::Cut => Verdict::Cut,
                    Action::Hold => Verdict::Hold(rule.released.subscribe()),
                    _ => Verdict::Lose,
                };
            }
        }
        verdict
    }
}

/// A TCP proxy on `127.0.0.1` in front of one server's client port that
/// injects faults on command. Dropping it closes every connection.
pub struct FaultProxy {
    port: u16,
    upstream: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream", &self.upstream)
            .field("settings", &*lock(&self.shared.settings))
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.reset_all();
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection
    /// to `127.0.0.1:upstream_port` (a server's [`port`](super::NatsServer::port)).
    pub async fn start(upstream_port: u16) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| HarnessError::io("binding the fault proxy on 127.0.0.1", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the fault proxy's port", e))?
            .port();
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, upstream_port, shared.clone()));
        Ok(Self {
            port,
            upstream: upstream_port,
            shared,
            accept,
        })
    }

    /// The URL clients connect to, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.connections).len()
    }

    fn rule(
        &self,
        direction: Flow,
        limit: u64,
        action: Action,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        let state = Arc::new(RuleState {
            direction,
            predicate: Box::new(predicate),
            action,
            remaining: AtomicU64::new(limit),
            hits: watch::Sender::new(0),
            removed: Default::default(),
            released: watch::Sender::new(false),
        });
        lock(&self.shared.rules).push(state.clone());
        let limit = if limit == u64::MAX {
            "every".to_string()
        } else {
            format!("the next {limit}")
        };
        Rule {
            state,
            what: format!("{action:?} {limit} {direction:?}"),
        }
    }

    /// Loses the next `count` frames travelling in `direction` that match
    /// `predicate` (see [`Frame`]'s helpers); the connection goes on.
    pub fn drop_next(
        &self,
        direction: Flow,
        count: u64,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.rule(direction, count, Action::Drop, predicate)
    }

    /// Loses every frame travelling in `direction` that matches `predicate`
    /// until the rule is [removed](Rule::remove): a one-way blackhole when
    /// the predicate matches everything.
    pub fn drop_all(
        &self,
        direction: Flow,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.rule(direction, u64::MAX, Action::Drop, predicate)
    }

    /// Loses the next frame travelling in `direction` that matches
    /// `predicate` and resets the connection it was on: the link is cut at
    /// exactly that step.
    pub fn cut_next(
        &self,
        direction: Flow,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.rule(direction, 1, Action::Cut, predicate)
    }

    /// Holds the next frame travelling in `direction` that matches
    /// `predicate`, and every frame behind it in that direction of its
    /// connection, until [`Rule::release`]: a request that has left the
    /// client but not yet reached the server, to order a race exactly.
    pub fn hold_next(
        &self,
        direction: Flow,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.rule(direction, 1, Action::Hold, predicate)
    }

    /// Counts the frames travelling in `direction` that match `predicate`,
    /// letting them pass.
    pub fn count(
        &self,
        direction: Flow,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Rule {
        self.rule(direction, u64::MAX, Action::Count, predicate)
    }

    /// Delays every frame, both ways, by `delay` (frames keep their order).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.settings).delay = delay;
    }

    /// Loses every frame both ways while on; the connections stay open (no
    /// reset, no FIN), as behind a dead router. New connections are
    /// accepted and get nothing.
    pub fn blackhole(&self, on: bool) {
        lock(&self.shared.settings).blackhole = on;
    }

    /// Frames lost to the blackhole so far.
    pub fn blackholed(&self) -> u64 {
        self.shared.blackholed.load(Ordering::Relaxed)
    }

    /// Limits each direction of each connection to `bytes_per_second`
    /// (`None`: no limit).
    pub fn throttle(&self, bytes_per_second: Option<u64>) {
        lock(&self.shared.settings).throttle = bytes_per_second.filter(|b| *b > 0);
    }

    /// Resets every open connection (TCP RST to both the client and the
    /// server); returns how many. Clients reconnect through the proxy.
    pub fn reset_all(&self) -> usize {
        let connections = lock(&self.shared.connections);
        for close in connections.values() {
            let _ = close.send(true);
        }
        connections.len()
    }
}

async fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!(error = %e, "fault proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let (close, closed) = watch::channel(false);
        lock(&shared.connections).insert(id, close);
        let shared = shared.clone();
        tokio::spawn(async move {
            match TcpStream::connect(("127.0.0.1", upstream)).await {
                Ok(server) => connection(client, server, closed, &shared).await,
                Err(e) => tracing::debug!(error = %e, upstream, "fault proxy: upstream refused"),
            }
            lock(&shared.connections).remove(&id);
        });
    }
}

/// Forwards one connection both ways until either side closes, a rule
/// cuts it, or [`FaultProxy::reset_all`] resets it.
async fn connection(
    client: TcpStream,
    server: TcpStream,
    mut closed: watch::Receiver<bool>,
    shared: &Shared,
) {
    for stream in [&client, &server] {
        let _ = stream.set_nodelay(true);
        // Closing sends RST, not FIN: a reset, as the tests mean it.
        let _ = stream.set_zero_linger();
    }
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (cut_tx, mut cut) = mpsc::channel::<()>(1);
    let up = pump(
        client_read,
        server_write,
        Flow::ClientToServer,
        shared,
        cut_tx.clone(),
    );
    let down = pump(
        server_read,
        client_write,
        Flow::ServerToClient,
        shared,
        cut_tx,
    );
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.recv() => {}
        _ = closed.wait_for(|c| *c) => {}
    }
}

/// One direction: a reader that cuts the byte stream into frames and
/// judges each, and a writer that delivers them after the delay, at the
/// throttled rate. Ends when the reader's side closes.
async fn pump(
    mut read: OwnedReadHalf,
    mut write: OwnedWriteHalf,
    direction: Flow,
    shared: &Shared,
    cut: mpsc::Sender<()>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(QUEUE);
    let reader = async move {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            match read.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            while let Some(bounds) = frame_end(&buf) {
                let frame = bounds.split(&mut buf, direction);
                match shared.judge(&frame) {
                    Verdict::Forward => {}
                    Verdict::Lose => continue,
                    Verdict::Cut => {
                        let _ = cut.try_send(());
                        return;
                    }
                    Verdict::Hold(mut released) => {
                        // Reading stops here, so what follows waits too.
                        if released.wait_for(|r| *r).await.is_err() {
                            return;
                        }
                    }
                }
                let delay = lock(&shared.settings).delay;
                if tx.send((Instant::now() + delay, frame.raw)).await.is_err() {
                    return;
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if write.write_all(&bytes).await.is_err() {
                return;
            }
            let throttle = lock(&shared.settings).throttle;
            if let Some(rate) = throttle {
                let secs = bytes.len() as f64 / rate as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
        }
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(direction: Flow, wire: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(wire);
        let mut out = Vec::new();
        while let Some(bounds) = frame_end(&buf) {
            out.push(bounds.split(&mut buf, direction));
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn frames_are_cut_by_their_byte_counts() {
        let wire = b"PING\r\nPUB a.b _INBOX.x 5\r\nhe\r\no\r\nHPUB $JS.ACK.S.C.1 12 16\r\nNATS/1.0\r\n\r\n+ACK\r\nSUB x 1\r\n";
        let got = frames(Flow::ClientToServer, wire);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].op(), "PING");
        assert!(!got[0].is_message());
        assert_eq!(got[1].subject().as_deref(), Some("a.b"));
        assert_eq!(got[1].reply().as_deref(), Some("_INBOX.x"));
        assert_eq!(got[1].payload(), b"he\r\no", "a CRLF inside a payload");
        assert_eq!(got[2].headers(), b"NATS/1.0\r\n\r\n");
        assert!(got[2].is_ack());
        assert_eq!(got[2].reply(), None);
        assert_eq!(got[3].op(), "SUB");
    }

    #[test]
    fn pubacks_deliveries_and_terminates_are_recognised() {
        let wire = b"MSG _INBOX.abc.1 7 32\r\n{\"stream\":\"AUTH_EVENTS\",\"seq\":3}\r\nHMSG auth.x 9 $JS.ACK.AUTH_EVENTS.g.1.3.3.0.1 12 14\r\nNATS/1.0\r\n\r\n{}\r\n";
        let got = frames(Flow::ServerToClient, wire);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_puback());
        assert!(!got[0].is_delivery());
        assert!(got[1].is_delivery());
        assert!(!got[1].is_puback());
        let term = frames(
            Flow::ClientToServer,
            b"PUB $JS.ACK.AUTH_EVENTS.g.1.3.3.0.1 5\r\n+TERM\r\nPUB $JS.ACK.A.g.1.1.1.0.1 0\r\n\r\n",
        );
        assert!(term[0].is_term());
        assert!(term[1].is_ack(), "an empty ack body is an ack");
    }

    #[test]
    fn api_answers_are_told_by_their_type() {
        let body =
            br#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404}}"#;
        let mut wire = format!("MSG _INBOX.abc.2 7 {}\r\n", body.len()).into_bytes();
        wire.extend_from_slice(body);
        wire.extend_from_slice(b"\r\n");
        let got = frames(Flow::ServerToClient, &wire);
        assert!(got[0].is_api_answer("consumer_info_response"));
        assert!(!got[0].is_api_answer("consumer_create_response"));
        assert!(
            !got[0].is_api_answer("consumer_info"),
            "the whole type, not a prefix"
        );
        assert!(got[0].payload_contains("\"code\":404"));
        assert!(!got[0].payload_contains(""));
        let sent = frames(Flow::ClientToServer, &wire);
        assert!(
            !sent[0].is_api_answer("consumer_info_response"),
            "answers come from the server"
        );
    }

    #[test]
    fn incomplete_and_malformed_input_neither_panics_nor_loses_bytes() {
        assert!(frame_end(b"PUB a 10\r\nshort").is_none());
        assert!(frame_end(b"PIN").is_none());
        // A size that is not a number: the line alone is a frame.
        assert_eq!(frame_end(b"PUB a x\r\nrest").map(|f| f.end), Some(9));
        assert_eq!(
            frame_end(b"HPUB a 9 3\r\n").map(|f| f.end),
            Some(12),
            "headers longer than the total"
        );
        assert!(frame_end(format!("PUB a {}\r\n", usize::MAX).as_bytes()).is_none());
    }
}
