//! `tidings permissions`: least-privilege NATS users generated from the
//! registry: each service, tenant readers, the operator.
//!
//! Exit 0 written, 2 usage or I/O error (an unknown reader kind, a registry
//! whose access sections do not check).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use tidings_codegen::registry::access::{self, ServerCredential};
use tidings_codegen::registry::{load::load, Source};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An nats-server `authorization { users = [...] }` block to include.
    Conf,
    /// JSON: every user with its role, inbox prefix and `pub`/`sub` allow
    /// lists, the shape of a user JWT's permissions (for nsc or other JWT tooling).
    Json,
}

/// Arguments of `tidings permissions`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry directory.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Conf)]
    pub format: Format,
    /// Add a tenant reader: a kind declared in [readers.KIND] and the
    /// organization it may read (repeatable).
    #[arg(long, value_name = "KIND=ORG")]
    pub reader: Vec<String>,
    /// Authenticate USER with this NKey public key instead of a password
    /// read from TIDINGS_PASSWORD_<USER> (repeatable).
    #[arg(long, value_name = "USER=PUBLIC_KEY")]
    pub nkey: Vec<String>,
}

fn pair<'a>(flag: &str, value: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    value
        .split_once('=')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{flag} {value:?}: write it as NAME=VALUE"))
}

/// Runs `tidings permissions`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let source = Source::from_dir(&args.schemas)
        .with_context(|| format!("reading {}", args.schemas.display()))?;
    let loaded = load(&source);
    anyhow::ensure!(
        loaded.config_ok,
        "{}/tidings.toml is missing or invalid: run `tidings check`",
        args.schemas.display()
    );
    let readers = args
        .reader
        .iter()
        .map(|r| pair("--reader", r).map(|(k, o)| (k.to_string(), o.to_string())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let users = access::permissions(&loaded.config, &access::event_streams(&loaded), &readers)?;
    let mut nkeys = std::collections::BTreeMap::new();
    for n in &args.nkey {
        let (user, key) = pair("--nkey", n)?;
        anyhow::ensure!(
            key.starts_with('U') && key.len() == 56,
            "--nkey {user}=...: {key:?} is not a user NKey public key (56 characters starting with U)"
        );
        anyhow::ensure!(
            users.iter().any(|u| u.user == user),
            "--nkey: no user {user:?}; users are {}",
            users
                .iter()
                .map(|u| u.user.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        nkeys.insert(user.to_string(), ServerCredential::NKey(key.to_string()));
    }
    match args.format {
        Format::Conf => {
            let with: Vec<_> = users
                .into_iter()
                .map(|u| {
                    let credential = nkeys.get(&u.user).cloned();
                    (u, credential)
                })
                .collect();
            print!("{}", access::server_config(&with));
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "users": users }))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
