//! The connection flags every command that talks to NATS shares, with the
//! environment variables of the `nats` CLI as fallbacks.
use std::path::PathBuf;

use tidings::connect::{ConnectOptions, Credential, Secret, Tls, DEFAULT_SERVER};

/// How to reach and authenticate to NATS (flattened into each command).
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The NATS server URL; several separated by commas.
    #[arg(long, global = true, env = "NATS_URL", value_name = "URL", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// User name (with --password).
    #[arg(long, global = true, env = "NATS_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Password (with --user); prefer the environment variable.
    #[arg(
        long,
        global = true,
        env = "NATS_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// Authentication token; prefer the environment variable.
    #[arg(
        long,
        global = true,
        env = "NATS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// A file holding a user NKey seed.
    #[arg(long, global = true, env = "NATS_NKEY", value_name = "FILE")]
    pub nkey: Option<PathBuf>,
    /// A `.creds` file (user JWT and NKey seed).
    #[arg(long, global = true, env = "NATS_CREDS", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// PEM file of CA certificates to trust.
    #[arg(long = "tls-ca", global = true, env = "NATS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate (mTLS; with --tls-key).
    #[arg(
        long = "tls-cert",
        global = true,
        env = "NATS_CERT",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long = "tls-key", global = true, env = "NATS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Start TLS before the server's first message (servers with handshake_first).
    #[arg(long = "tls-first", global = true)]
    pub tls_first: bool,
    /// The connection's name, shown by the server's monitoring.
    #[arg(
        long = "connection-name",
        global = true,
        value_name = "NAME",
        default_value = "tidings-cli"
    )]
    pub connection_name: String,
    /// Prefix of reply subjects; generated permissions need _INBOX_<user>.
    #[arg(
        long = "inbox-prefix",
        global = true,
        env = "NATS_INBOX_PREFIX",
        value_name = "PREFIX"
    )]
    pub inbox_prefix: Option<String>,
}

impl ConnectArgs {
    /// The library's options from these flags (one credential at most).
    pub fn options(&self) -> anyhow::Result<ConnectOptions> {
        let mut credentials = Vec::new();
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => credentials.push((
                "--user/--password (NATS_USER/NATS_PASSWORD)",
                Credential::UserPassword {
                    user: user.clone(),
                    password: Secret::new(password.as_str()),
                },
            )),
            (Some(_), None) => anyhow::bail!("--user (NATS_USER) needs --password (NATS_PASSWORD)"),
            (None, Some(_)) => anyhow::bail!("--password (NATS_PASSWORD) needs --user (NATS_USER)"),
            (None, None) => {}
        }
        if let Some(token) = &self.token {
            credentials.push((
                "--token (NATS_TOKEN)",
                Credential::Token(Secret::new(token.as_str())),
            ));
        }
        if let Some(path) = &self.nkey {
            credentials.push(("--nkey (NATS_NKEY)", Credential::NKeyFile(path.clone())));
        }
        if let Some(path) = &self.creds {
            credentials.push(("--creds (NATS_CREDS)", Credential::CredsFile(path.clone())));
        }
        if credentials.len() > 1 {
            let names: Vec<&str> = credentials.iter().map(|(n, _)| *n).collect();
            anyhow::bail!("{} are all set: give one credential", names.join(", "));
        }
        let mut options = ConnectOptions::new(&self.server)
            .name(self.connection_name.as_str())
            .tls(Tls {
                ca: self.tls_ca.clone(),
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
                first: self.tls_first,
            });
        if let Some((_, credential)) = credentials.pop() {
            options = options.credential(credential);
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.inbox_prefix(prefix.as_str());
        }
        Ok(options)
    }
}
