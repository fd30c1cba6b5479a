//! Connecting to NATS: one set of options for services, the CLI and the tour.
//!
//! [`ConnectOptions`] holds the server list, one credential (user and
//! password, token, NKey seed or a `.creds` file), TLS (a CA, a client
//! certificate and key for mTLS, TLS-first), a connection name and an inbox
//! prefix. [`ConnectOptions::from_env`] reads the variables the `nats` CLI
//! uses:
//!
//! | variable | meaning |
//! |---|---|
//! | `NATS_URL` | server URLs, comma-separated (default `nats://127.0.0.1:4222`) |
//! | `NATS_USER`, `NATS_PASSWORD` | user and password |
//! | `NATS_TOKEN` | an authentication token |
//! | `NATS_NKEY` | a file holding a user NKey seed (`SU...`) |
//! | `NATS_CREDS` | a `.creds` file (user JWT and NKey seed) |
//! | `NATS_CA` | a PEM file of CA certificates to trust |
//! | `NATS_CERT`, `NATS_KEY` | a client certificate and its key (mTLS) |
//! | `NATS_INBOX_PREFIX` | the prefix of reply subjects (default `_INBOX`) |
//!
//! Secrets (passwords, tokens, seeds) are held in [`Secret`], whose `Debug`
//! and `Display` print `<redacted>`, so options can be logged. A refused or
//! expired credential is one [`ConnectError`] naming the servers, the kind
//! of credential and the cause.
//!
//! Least-privilege permissions (`tidings permissions`) give every user its
//! own inbox prefix, `_INBOX_<user>`: set it with
//! [`ConnectOptions::inbox_prefix`] or `NATS_INBOX_PREFIX`, or replies
//! (publish acknowledgements, pulled messages) cannot reach the client.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tidings::connect::ConnectError> {
//! use tidings::connect::ConnectOptions;
//!
//! let client = ConnectOptions::from_env()?.name("billing").connect().await?;
//! # let _ = client;
//! # Ok(()) }
//! ```
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The server used when neither the options nor `NATS_URL` name one.
pub const DEFAULT_SERVER: &str = "nats://127.0.0.1:4222";

/// How long one connection attempt may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A secret string: its `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to the client; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// How the client proves who it is: at most one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// No credential (a server without authentication).
    #[default]
    None,
    /// A user and password.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An authentication token.
    Token(Secret),
    /// A user NKey seed (`SU...`).
    NKeySeed(Secret),
    /// A file holding a user NKey seed.
    NKeyFile(PathBuf),
    /// A `.creds` file: a user JWT and its NKey seed.
    CredsFile(PathBuf),
}

impl Credential {
    /// What kind of credential this is, for messages (never the secret).
    pub fn kind(&self) -> String {
        match self {
            Credential::None => "no credential".into(),
            Credential::UserPassword { user, .. } => format!("user {user:?} with a password"),
            Credential::Token(_) => "a token".into(),
            Credential::NKeySeed(_) => "an NKey seed".into(),
            Credential::NKeyFile(path) => format!("the NKey seed in {}", path.display()),
            Credential::CredsFile(path) => format!("the credentials file {}", path.display()),
        }
    }
}

/// TLS settings. Any of them makes the client require TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// A PEM file of CA certificates to trust (besides the system's).
    pub ca: Option<PathBuf>,
    /// A PEM client certificate, for servers that verify clients (mTLS).
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    pub key: Option<PathBuf>,
    /// Start TLS before the server's first message (`handshake_first`).
    pub first: bool,
}

impl Tls {
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.first
    }
}

/// Why no connection was made. The message names the servers, the
/// credential kind (never a secret) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The options are wrong before any server is asked.
    #[error("NATS connection settings: {0}")]
    Config(String),
    /// The server refused the credential (wrong, expired or revoked).
    #[error("NATS at {servers} refused {credential}: {cause}; check the credential (NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS) and that it has not expired or been revoked")]
    Refused {
        /// The servers tried.
        servers: String,
        /// The credential's kind.
        credential: String,
        /// What the server or client said.
        cause: String,
    },
    /// TLS could not be set up or the handshake failed.
    #[error("TLS with NATS at {servers} failed: {cause}; check NATS_CA, NATS_CERT and NATS_KEY and that the server's certificate is for this host")]
    Tls {
        /// The servers tried.
        servers: String,
        /// What went wrong.
        cause: String,
    },
    /// No server could be reached.
    #[error("cannot reach NATS at {servers}: {cause}; start the server or point NATS_URL (or --server) at it")]
    Unreachable {
        /// The servers tried.
        servers: String,
        /// What went wrong.
        cause: String,
    },
}

/// How to connect to NATS. See the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    servers: Vec<String>,
    credential: Credential,
    tls: Tls,
    name: Option<String>,
    inbox_prefix: Option<String>,
    timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            servers: vec![DEFAULT_SERVER.to_string()],
            credential: Credential::None,
            tls: Tls::default(),
            name: None,
            inbox_prefix: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A variable of the environment, `None` when unset or blank.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ConnectOptions {
    /// Options for these servers (one URL, or several separated by commas),
    /// without a credential.
    pub fn new(servers: &str) -> Self {
        Self::default().servers(servers)
    }

    /// Options from the `nats` CLI's environment variables (see the
    /// [module](self) documentation).
    ///
    /// # Errors
    /// More than one credential set, or a user without a password.
    pub fn from_env() -> Result<Self, ConnectError> {
        Self::from_lookup(env_var)
    }

    /// Options from a lookup of variable names (the environment in
    /// [`from_env`](Self::from_env)); the CLI passes its parsed flags.
    ///
    /// # Errors
    /// More than one credential set, or a user without a password.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConnectError> {
        let mut options = Self::default();
        if let Some(url) = get("NATS_URL") {
            options = options.servers(&url);
        }
        let mut credentials = Vec::new();
        match (get("NATS_USER"), get("NATS_PASSWORD")) {
            (Some(user), Some(password)) => credentials.push((
                "NATS_USER/NATS_PASSWORD",
                Credential::UserPassword {
                    user,
                    password: Secret(password),
                },
            )),
            (Some(_), None) => {
                return Err(ConnectError::Config(
                    "NATS_USER is set but NATS_PASSWORD is not: set both, or use NATS_TOKEN for a token".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConnectError::Config(
                    "NATS_PASSWORD is set but NATS_USER is not: set both".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(token) = get("NATS_TOKEN") {
            credentials.push(("NATS_TOKEN", Credential::Token(Secret(token))));
        }
        if let Some(path) = get("NATS_NKEY") {
            credentials.push(("NATS_NKEY", Credential::NKeyFile(path.into())));
        }
        if let Some(path) = get("NATS_CREDS") {
            credentials.push(("NATS_CREDS", Credential::CredsFile(path.into())));
        }
        if credentials.len() > 1 {
            let names: Vec<&str> = credentials.iter().map(|(name, _)| *name).collect();
            return Err(ConnectError::Config(format!(
                "{} are all set: give one credential",
                names.join(", ")
            )));
        }
        if let Some((_, credential)) = credentials.pop() {
            options.credential = credential;
        }
        options.tls.ca = get("NATS_CA").map(PathBuf::from);
        options.tls.cert = get("NATS_CERT").map(PathBuf::from);
        options.tls.key = get("NATS_KEY").map(PathBuf::from);
        options.inbox_prefix = get("NATS_INBOX_PREFIX");
        Ok(options)
    }

    /// Replaces the server list (one URL, or several separated by commas).
    pub fn servers(mut self, servers: &str) -> Self {
        self.servers = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        self
    }

    /// The server URLs.
    pub fn server_list(&self) -> &[String] {
        &self.servers
    }

    /// Sets the credential (replacing any other).
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    /// The credential.
    pub fn get_credential(&self) -> &Credential {
        &self.credential
    }

    /// Authenticates with a user and password.
    pub fn user_password(self, user: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.credential(Credential::UserPassword {
            user: user.into(),
            password: password.into(),
        })
    }

    /// Authenticates with a token.
    pub fn token(self, token: impl Into<Secret>) -> Self {
        self.credential(Credential::Token(token.into()))
    }

    /// Authenticates with a user NKey seed.
    pub fn nkey_seed(self, seed: impl Into<Secret>) -> Self {
        self.credential(Credential::NKeySeed(seed.into()))
    }

    /// Authenticates with a `.creds` file.
    pub fn creds_file(self, path: impl Into<PathBuf>) -> Self {
        self.credential(Credential::CredsFile(path.into()))
    }

    /// Trusts the CA certificates in this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files) for mTLS.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.cert = Some(cert.into());
        self.tls.key = Some(key.into());
        self
    }

    /// Starts TLS before the server's first message (servers with
    /// `handshake_first`).
    pub fn tls_first(mut self, on: bool) -> Self {
        self.tls.first = on;
        self
    }

    /// Replaces the TLS settings.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Names the connection (shown by the server's monitoring).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the prefix of reply subjects (`_INBOX` by default). Generated
    /// permissions allow each user only `_INBOX_<user>.>`.
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = Some(prefix.into());
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn servers_text(&self) -> String {
        self.servers.join(", ")
    }

    /// Checks what can be checked without a server: URLs, files, the seed.
    fn check(&self) -> Result<Vec<async_nats::ServerAddr>, ConnectError> {
        if self.servers.is_empty() {
            return Err(ConnectError::Config(
                "no server URL: set NATS_URL or --server, e.g. nats://127.0.0.1:4222".into(),
            ));
        }
        let addrs = self
            .servers
            .iter()
            .map(|url| {
                async_nats::ServerAddr::from_str(url).map_err(|e| {
                    ConnectError::Config(format!(
                        "{url:?} is not a NATS server URL ({e}); write it like nats://127.0.0.1:4222 or tls://host:4222"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let readable = |what: &str, path: &Path| {
            std::fs::metadata(path).map(|_| ()).map_err(|e| {
                ConnectError::Config(format!("{what} {}: cannot read it: {e}", path.display()))
            })
        };
        match &self.credential {
            Credential::NKeySeed(seed) => check_seed(seed.expose(), "the NKey seed")?,
            Credential::NKeyFile(path) => {
                let seed = std::fs::read_to_string(path).map_err(|e| {
                    ConnectError::Config(format!(
                        "NKey seed file {}: cannot read it: {e}",
                        path.display()
                    ))
                })?;
                check_seed(seed.trim(), &format!("NKey seed file {}", path.display()))?;
            }
            Credential::CredsFile(path) => readable("credentials file", path)?,
            _ => {}
        }
        if let Some(ca) = &self.tls.ca {
            readable("CA file", ca)?;
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => {
                readable("client certificate", cert)?;
                readable("client key", key)?;
            }
            (Some(_), None) => {
                return Err(ConnectError::Config(
                    "a client certificate without its key: set NATS_KEY (--tls-key) too".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConnectError::Config(
                    "a client key without its certificate: set NATS_CERT (--tls-cert) too".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(prefix) = &self.inbox_prefix {
            if prefix.is_empty()
                || prefix
                    .split('.')
                    .any(|t| crate::token::check_token("inbox prefix token", t).is_err())
            {
                return Err(ConnectError::Config(format!(
                    "inbox prefix {prefix:?} is not a subject without wildcards"
                )));
            }
        }
        Ok(addrs)
    }

    /// The async-nats options these settings make.
    async fn client_options(&self) -> Result<async_nats::ConnectOptions, ConnectError> {
        let mut options = async_nats::ConnectOptions::new().connection_timeout(self.timeout);
        options = match &self.credential {
            Credential::None => options,
            Credential::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.expose().to_string())
            }
            Credential::Token(token) => options.token(token.expose().to_string()),
            Credential::NKeySeed(seed) => options.nkey(seed.expose().to_string()),
            Credential::NKeyFile(path) => {
                let seed = std::fs::read_to_string(path).map_err(|e| {
                    ConnectError::Config(format!(
                        "NKey seed file {}: cannot read it: {e}",
                        path.display()
                    ))
                })?;
                options.nkey(seed.trim().to_string())
            }
            Credential::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
                ConnectError::Config(format!("credentials file {}: {e}", path.display()))
            })?,
        };
        if let Some(ca) = &self.tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls.first {
            options = options.tls_first();
        }
        if self.tls.is_set() {
            options = options.require_tls(true);
        }
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options)
    }

    /// Connects to the first server that answers.
    ///
    /// # Errors
    /// A [`ConnectError`] naming the servers, the credential kind and the
    /// cause: settings, a refused credential, TLS, or no server reachable.
    pub async fn connect(&self) -> Result<async_nats::Client, ConnectError> {
        let addrs = self.check()?;
        let options = self.client_options().await?;
        tracing::debug!(options = ?self, "connecting to NATS");
        options.connect(addrs).await.map_err(|e| self.explain(e))
    }

    /// Sorts a client error into one [`ConnectError`].
    fn explain(&self, e: async_nats::ConnectError) -> ConnectError {
        use async_nats::ConnectErrorKind as Kind;
        let servers = self.servers_text();
        let cause = e.to_string();
        match e.kind() {
            Kind::AuthorizationViolation | Kind::Authentication => ConnectError::Refused {
                servers,
                credential: self.credential.kind(),
                cause,
            },
            Kind::Tls => ConnectError::Tls { servers, cause },
            Kind::ServerParse => ConnectError::Config(cause),
            // A TLS failure during the handshake surfaces as I/O.
            Kind::Io if looks_like_tls(&cause) => ConnectError::Tls { servers, cause },
            _ => ConnectError::Unreachable { servers, cause },
        }
    }
}

/// Whether an I/O error text is a TLS handshake failure.
fn looks_like_tls(cause: &str) -> bool {
    let lower = cause.to_ascii_lowercase();
    ["tls", "certificate", "handshake", "alert"]
        .iter()
        .any(|w| lower.contains(w))
}

/// Checks that `seed` is a user NKey seed, without printing it.
fn check_seed(seed: &str, what: &str) -> Result<(), ConnectError> {
    let valid = seed.starts_with("SU") && nkeys::KeyPair::from_seed(seed).is_ok();
    if valid {
        Ok(())
    } else {
        Err(ConnectError::Config(format!(
            "{what} is not a user NKey seed (one line starting with SU, from `nsc` or `nk -gen user`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn secrets_are_redacted_in_debug() -> Result<(), ConnectError> {
        let options = ConnectOptions::from_lookup(lookup(&[
            ("NATS_URL", "nats://a:4222, nats://b:4222"),
            ("NATS_USER", "svc"),
            ("NATS_PASSWORD", "hunter2-s3cret"),
        ]))?;
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("svc"),
            "{shown}"
        );
        assert_eq!(options.server_list(), ["nats://a:4222", "nats://b:4222"]);
        let token = ConnectOptions::default().token("tok-123-secret");
        assert!(!format!("{token:?}").contains("tok-123"));
        let seed = ConnectOptions::default().nkey_seed("SUAAAsecretseed");
        assert!(!format!("{seed:?}").contains("secretseed"));
        Ok(())
    }

    #[test]
    fn the_environment_gives_one_credential() -> Result<(), ConnectError> {
        let none = ConnectOptions::from_lookup(lookup(&[]))?;
        assert_eq!(none.server_list(), [DEFAULT_SERVER]);
        assert_eq!(none.get_credential(), &Credential::None);
        let creds = ConnectOptions::from_lookup(lookup(&[("NATS_CREDS", "/x/a.creds")]))?;
        assert_eq!(
            creds.get_credential(),
            &Credential::CredsFile("/x/a.creds".into())
        );
        let err = ConnectOptions::from_lookup(lookup(&[
            ("NATS_TOKEN", "t"),
            ("NATS_CREDS", "/x/a.creds"),
        ]))
        .expect_err("two credentials");
        assert!(
            err.to_string()
                .contains("NATS_TOKEN, NATS_CREDS are all set"),
            "{err}"
        );
        let err =
            ConnectOptions::from_lookup(lookup(&[("NATS_USER", "u")])).expect_err("no password");
        assert!(err.to_string().contains("NATS_PASSWORD is not"), "{err}");
        Ok(())
    }

    #[test]
    fn settings_are_checked_before_connecting() {
        let bad_seed = ConnectOptions::default()
            .nkey_seed("SUnot-a-seed-secret")
            .check()
            .expect_err("bad seed");
        assert!(
            bad_seed.to_string().contains("not a user NKey seed"),
            "{bad_seed}"
        );
        assert!(!bad_seed.to_string().contains("secret"), "{bad_seed}");
        let missing = ConnectOptions::default()
            .ca_file("/nonexistent/ca.pem")
            .check()
            .expect_err("no CA");
        assert!(
            missing.to_string().contains("CA file /nonexistent/ca.pem"),
            "{missing}"
        );
        let half = ConnectOptions::default()
            .tls(Tls {
                cert: Some("/x/c.pem".into()),
                ..Tls::default()
            })
            .check()
            .expect_err("cert without key");
        assert!(half.to_string().contains("NATS_KEY"), "{half}");
        let url = ConnectOptions::new("http://x:1:2:3")
            .check()
            .expect_err("bad url");
        assert!(url.to_string().contains("not a NATS server URL"), "{url}");
        let prefix = ConnectOptions::default()
            .inbox_prefix("_INBOX.*")
            .check()
            .expect_err("wildcard");
        assert!(prefix.to_string().contains("inbox prefix"), "{prefix}");
    }
}
