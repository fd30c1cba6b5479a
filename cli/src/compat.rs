//! `tidings compat OLD.json NEW.json`: compares two standalone schema files
//! under a compatibility mode and policy.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};
use tidings_codegen::compat::{check_versions, Change, Mode, Policy};
use tidings_codegen::registry::config::{Compatibility, CONFIG_FILE};
use tidings_codegen::registry::Config;

/// Output format of `tidings compat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One readable block per breaking change, then a verdict line.
    Text,
    /// `{"compatible", "mode", "policy", "changes": [...]}`.
    Json,
}

/// Arguments of `tidings compat`.
#[derive(clap::Args)]
#[command(after_help = "\
Exit status: 0 compatible, 1 incompatible, 2 invalid input (unreadable file, invalid JSON, \
unresolvable $ref).

Cross-file $refs are bundled first, relative to each file.

`changes` (and the text blocks) list only the changes that break the chosen mode: readers-breaking \
changes for BACKWARD*, writers-breaking ones for FORWARD*, both for FULL*. Informational changes \
(e.g. a changed `default`) and changes in a direction the mode does not check are left out. With two \
files a *_TRANSITIVE mode gives the same verdict as its plain form.

Defaults are those of `tidings check`: the mode is NEW's `x-compatibility`, else the registry's \
`[compatibility] mode` in DIR/tidings.toml (--schemas, default `schemas`), else FULL_TRANSITIVE; the \
policy is the registry's, else strict. The verdict line names the mode and policy used.")]
pub struct Args {
    /// The earlier version of the schema.
    pub old: PathBuf,
    /// The later version of the schema.
    pub new: PathBuf,
    /// NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE
    /// (any case, '-' or '_'). Default: as `tidings check` (see below).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// strict: every possible document counts; lenient: documents carry only the properties
    /// their own schema declares. A property made required with a `default` breaks readers
    /// under strict and is informational under lenient. Default: the registry's.
    #[arg(long, value_parser = parse_policy)]
    pub policy: Option<Policy>,
    /// The registry whose tidings.toml gives the default mode and policy (ignored when it
    /// has none).
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
        .map_err(|e: tidings_codegen::compat::UnknownMode| e.to_string())
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
        .map_err(|e: tidings_codegen::compat::UnknownPolicy| e.to_string())
}

fn load(path: &Path) -> anyhow::Result<Value> {
    tidings_codegen::bundle::bundle_file(path)
        .with_context(|| format!("cannot load schema {}", path.display()))
}

/// The mode and policy `tidings check` would use for `new`: its
/// `x-compatibility`, else the registry's `[compatibility]`, else the
/// config defaults; explicit flags win.
fn settings(args: &Args, new: &Value) -> anyhow::Result<(Mode, Policy)> {
    let config_path = args.schemas.join(CONFIG_FILE);
    let registry = match std::fs::read_to_string(&config_path) {
        Ok(text) => {
            Config::parse(&text)
                .with_context(|| format!("cannot read {}", config_path.display()))?
                .compatibility
        }
        Err(_) => Compatibility::default(),
    };
    let declared = match new.get("x-compatibility") {
        Some(Value::String(m)) => Some(
            m.parse::<Mode>()
                .with_context(|| format!("x-compatibility of {}", args.new.display()))?,
        ),
        _ => None,
    };
    Ok((
        args.mode.or(declared).unwrap_or(registry.mode),
        args.policy.unwrap_or(registry.policy),
    ))
}

/// Runs `tidings compat`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let (mode, policy) = settings(&args, &new)?;
    let findings = check_versions(&[(1, &old), (2, &new)], mode, policy).with_context(|| {
        format!(
            "cannot compare {} with {}",
            args.old.display(),
            args.new.display()
        )
    })?;
    let changes: Vec<Change> = findings.into_iter().map(|f| f.change).collect();
    let compatible = changes.is_empty();
    match args.format {
        Format::Json => {
            // Built by hand to keep the documented key order.
            let changes = serde_json::to_string_pretty(&changes)?.replace('\n', "\n  ");
            println!(
                "{{\n  \"compatible\": {compatible},\n  \"mode\": {},\n  \"policy\": {},\n  \"changes\": {changes}\n}}",
                json!(mode.as_str()),
                json!(policy.as_str()),
            );
        }
        Format::Text => print!("{}", text(&args, mode, policy, &changes)),
    }
    Ok(if compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn pointer(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}

fn text(args: &Args, mode: Mode, policy: Policy, changes: &[Change]) -> String {
    let mut out = String::new();
    for (i, c) in changes.iter().enumerate() {
        let breaks = serde_json::to_value(c.breaks)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "[{}] {} (breaks {breaks})\n",
            i + 1,
            c.kind.as_str()
        ));
        out.push_str(&format!(
            "    old: {} {}\n",
            args.old.display(),
            pointer(&c.old_path)
        ));
        out.push_str(&format!(
            "    new: {} {}\n",
            args.new.display(),
            pointer(&c.new_path)
        ));
        out.push_str(&format!("    {}\n", c.message));
        match &c.example {
            Some(e) => out.push_str(&format!("    example: {e}\n")),
            None => out.push_str("    example: none could be built\n"),
        }
        out.push('\n');
    }
    if changes.is_empty() {
        out.push_str(&format!("compatible under {mode} ({policy})\n"));
    } else {
        out.push_str(&format!(
            "incompatible under {mode} ({policy}): {} breaking change{}\n",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ));
    }
    out
}
