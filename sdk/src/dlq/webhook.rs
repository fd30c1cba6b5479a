//! Alerts as JSON POSTs to an `https://` webhook, through reqwest on rustls
//! with the `ring` provider (the TLS stack async-nats already brings).
//!
//! The server's certificate is checked against the system's roots, or only
//! against a CA file for a private CA. An optional bearer token (from code or
//! [`WEBHOOK_TOKEN_ENV`]) goes in the `Authorization` header and is never
//! printed. Plain `http://` is accepted only to a loopback address (a local
//! relay or a test receiver): nothing crosses the network unencrypted.
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::monitor::{Alert, AlertSink, SinkFuture};
use crate::connect::Secret;

/// The variable [`WebhookConfig::from_env`] reads the bearer token from.
pub const WEBHOOK_TOKEN_ENV: &str = "TIDINGS_WEBHOOK_TOKEN";

/// How long one alert POST may take by default, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a webhook sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not one the sink posts to.
    #[error("webhook URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("webhook CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The bearer token cannot be sent in a header (the token is not shown).
    #[error("webhook bearer token ({WEBHOOK_TOKEN_ENV}): {0}")]
    Token(&'static str),
    /// The HTTP client could not be built.
    #[error("webhook HTTP client: {0}")]
    Client(String),
}

/// Where and how a [`WebhookSink`] posts. Its `Debug` shows the bearer
/// token as `<redacted>`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    url: String,
    bearer_token: Option<Secret>,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

impl WebhookConfig {
    /// Posts to `url` (`https://host[:port]/path`, or `http://` to a
    /// loopback address), trusting the system's roots, without a token,
    /// 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            bearer_token: None,
            ca_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// [`new`](Self::new), with the bearer token of [`WEBHOOK_TOKEN_ENV`]
    /// (`TIDINGS_WEBHOOK_TOKEN`) if it is set and not empty.
    pub fn from_env(url: impl Into<String>) -> Self {
        let config = Self::new(url);
        match std::env::var(WEBHOOK_TOKEN_ENV) {
            Ok(token) if !token.is_empty() => config.bearer_token(token),
            _ => config,
        }
    }

    /// Sends `Authorization: Bearer <token>` with each alert.
    pub fn bearer_token(mut self, token: impl Into<Secret>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Trusts only the CA certificates (PEM) in `path` for the webhook's
    /// server, instead of the system's roots: for a private CA.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// How long one POST may take, connecting included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Alerts as JSON POSTs to a webhook (see [`WebhookConfig`]). A POST that
/// fails, is refused or takes longer than the timeout is an error of this
/// sink only: the monitor logs it and goes on (dead-letter moves are the
/// subscribers' and never wait for an alert).
#[derive(Clone)]
pub struct WebhookSink {
    url: Url,
    client: reqwest::Client,
    authorization: Option<HeaderValue>,
    trust: String,
    timeout: Duration,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.url.as_str())
            .field(
                "bearer_token",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("trust", &self.trust)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookSink {
    /// [`with_config`](Self::with_config) of [`WebhookConfig::new`]`(url)`.
    ///
    /// # Errors
    /// See [`with_config`](Self::with_config).
    pub fn new(url: &str) -> Result<Self, WebhookError> {
        Self::with_config(WebhookConfig::new(url))
    }

    /// A sink posting as `config` says.
    ///
    /// # Errors
    /// The URL is not `https://` (or `http://` to a loopback address), has
    /// credentials in it, the CA file is unreadable or holds no
    /// certificate, or the token cannot be a header value.
    pub fn with_config(config: WebhookConfig) -> Result<Self, WebhookError> {
        let url = check_url(&config.url)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        let (tls, trust) = match &config.ca_file {
            Some(path) => (
                tls.with_root_certificates(roots(path)?)
                    .with_no_client_auth(),
                format!("the CA in {}", path.display()),
            ),
            None => {
                let verifier = rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| WebhookError::Client(format!("system roots: {e}")))?;
                (
                    tls.dangerous()
                        .with_custom_certificate_verifier(Arc::new(verifier))
                        .with_no_client_auth(),
                    "the system's root certificates".to_string(),
                )
            }
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            // A 3xx is an answer to report, not a place to send the token.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("tidings-dlq-monitor")
            .build()
            .map_err(|e| WebhookError::Client(chain(&e)))?;
        let authorization = match &config.bearer_token {
            Some(token) => {
                if token.expose().is_empty() {
                    return Err(WebhookError::Token("it is empty"));
                }
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        WebhookError::Token(
                            "it holds a character a header cannot carry (use visible ASCII)",
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            url,
            client,
            authorization,
            trust,
            timeout: config.timeout,
        })
    }

    /// POSTs `body` (JSON) and checks for a 2xx answer.
    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let where_ = format!("POST {}", self.url);
        let response = request
            .send()
            .await
            .map_err(|e| self.explain(&where_, &e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{where_}: the webhook answered HTTP {status}"))
        }
    }

    /// One line saying what failed, where, and what to do.
    fn explain(&self, where_: &str, e: &reqwest::Error) -> String {
        let causes = chain(e);
        match rustls_error(e) {
            Some(rustls::Error::InvalidCertificate(cause)) => {
                return self.untrusted(where_, &format!("{cause:?}"))
            }
            Some(other) => return format!("{where_}: TLS handshake failed: {other}"),
            // The TLS error's type can hide behind a boxed cause; its text
            // cannot.
            None if causes.contains("invalid peer certificate") => {
                let cause = causes
                    .rsplit("invalid peer certificate: ")
                    .next()
                    .unwrap_or_default();
                return self.untrusted(where_, cause);
            }
            None => {}
        }
        if e.is_timeout() {
            return format!("{where_}: no answer within {:?}", self.timeout);
        }
        if e.is_connect() {
            return format!("{where_}: cannot connect: {causes}");
        }
        format!("{where_}: {causes}")
    }

    fn untrusted(&self, where_: &str, cause: &str) -> String {
        format!(
            "{where_}: the server's TLS certificate is not trusted by {} ({cause}); \
             give the webhook the CA file of the CA that signed it",
            self.trust
        )
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> String {
        format!("webhook:{}", self.url)
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&alert.to_json()).map_err(|e| e.to_string())?;
            self.post(body).await
        })
    }
}

/// The URL, if it is `https://`, or `http://` to a loopback address, and
/// carries no credentials.
fn check_url(text: &str) -> Result<Url, WebhookError> {
    let refuse = |reason: &str| WebhookError::Url {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url =
        Url::parse(text).map_err(|e| refuse(&format!("{e}; expected https://host[:port]/path")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(&format!(
            "credentials in the URL would be logged; put a bearer token in {WEBHOOK_TOKEN_ENV} instead"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(refuse(
                "plain http is accepted only to a loopback address (127.0.0.1, ::1, localhost); use https://",
            ))
        }
        _ => return Err(refuse("a webhook URL starts with https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("no host; expected https://host[:port]/path"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The certificates of a PEM file, as roots.
fn roots(path: &Path) -> Result<rustls::RootCertStore, WebhookError> {
    let bad = |reason: String| WebhookError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The rustls error somewhere in `e`'s causes (also inside an `io::Error`).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(tls) = rustls_error(inner) {
                return Some(tls);
            }
        }
        next = e.source();
    }
    None
}

/// `e` and its causes, joined by `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{WebhookConfig, WebhookSink};

    #[test]
    fn urls_are_taken_or_refused_with_a_reason() {
        for good in [
            "https://alerts.example/hooks/dlq",
            "https://10.0.0.7:8443/x",
            "http://127.0.0.1:8080/hooks/dlq",
            "http://[::1]:9000/",
            "http://localhost/",
        ] {
            assert!(WebhookSink::new(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("http://alerts.example/hooks", "only to a loopback"),
            ("http://10.0.0.7/hooks", "only to a loopback"),
            ("ftp://x/", "starts with https://"),
            ("https://", "expected https://"),
            ("https://u:p@x/", "credentials in the URL"),
            ("https://x:99999/", "expected https://"),
            ("not a url", "expected https://"),
        ] {
            let err = WebhookSink::new(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn the_bearer_token_is_never_shown() {
        let config = WebhookConfig::new("https://alerts.example/x").bearer_token("s3cr3t-t0ken");
        assert!(!format!("{config:?}").contains("s3cr3t"), "{config:?}");
        let sink = WebhookSink::with_config(config).expect("a valid sink");
        assert!(!format!("{sink:?}").contains("s3cr3t"), "{sink:?}");
        assert!(format!("{sink:?}").contains("<redacted>"), "{sink:?}");
        let err = WebhookSink::with_config(
            WebhookConfig::new("https://alerts.example/x").bearer_token("line\nbreak-s3cr3t"),
        )
        .expect_err("a newline in a header");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
