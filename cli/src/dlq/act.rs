//! `tidings dlq redrive` and `tidings dlq purge`: select, confirm, act on
//! each, report progress; one failure does not stop the others.
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use tidings::dlq::{ops, DeadLetter, DlqError, RedriveTarget};

use super::{connect, ActArgs, Connection};

/// Progress is reported every this many dead letters (and at the end).
const PROGRESS_EVERY: usize = 100;

/// What to do with the selected dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Republish to the original subject, then delete.
    Redrive,
    /// Delete.
    Purge,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Redrive => "redrive",
            Action::Purge => "purge",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Redrive => "redriven",
            Action::Purge => "purged",
        }
    }
}

/// Runs `redrive` or `purge`.
pub async fn run(
    server: &tidings::connect::ConnectOptions,
    action: Action,
    args: ActArgs,
) -> anyhow::Result<ExitCode> {
    let filter = args.filter.to_filter()?;
    if !args.all && args.filter.is_set() {
        bail!(
            "filters (--group, --type, --org, --from, --until) select dead letters for --all; with sequences, name exactly the ones to {}",
            action.verb()
        );
    }
    if args.group_only && action != Action::Redrive {
        bail!("--group-only applies to redrive: it says which groups handle the redriven events");
    }
    let target = if args.group_only {
        RedriveTarget::FailingGroup
    } else {
        RedriveTarget::EveryGroup
    };
    let conn = connect(server).await?;
    let selected = select(&conn, &args, &filter).await?;
    let n = selected.len();
    if n == 0 {
        eprintln!("no dead letters match: nothing to {}", action.verb());
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes && !confirm(action, n)? {
        eprintln!("nothing done");
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = 0usize;
    for (i, dead) in selected.iter().enumerate() {
        match one(&conn, action, target, dead).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
        let done = i + 1;
        if done == n || done % PROGRESS_EVERY == 0 {
            let failures = if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            };
            eprintln!("{} {}/{n}{failures}", action.done(), done - failed);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The dead letters named by sequence (every one must exist), or every one
/// the filters select.
async fn select(
    conn: &Connection,
    args: &ActArgs,
    filter: &tidings::dlq::DlqFilter,
) -> anyhow::Result<Vec<DeadLetter>> {
    if args.all {
        return ops::list(&conn.js, filter, None)
            .await
            .map_err(|e| conn.explain(e));
    }
    let mut sequences = args.sequences.clone();
    sequences.sort_unstable();
    sequences.dedup();
    let mut out = Vec::with_capacity(sequences.len());
    for seq in sequences {
        out.push(ops::get(&conn.js, seq).await.map_err(|e| conn.explain(e))?);
    }
    Ok(out)
}

/// Asks on stdin; refuses when stdin is not a terminal.
fn confirm(action: Action, n: usize) -> anyhow::Result<bool> {
    let what = if n == 1 {
        "1 dead letter".to_string()
    } else {
        format!("{n} dead letters")
    };
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to {} {what} without confirmation: stdin is not a terminal; pass --yes to confirm",
            action.verb()
        );
    }
    eprint!("{} {what}? [y/N] ", action.verb());
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Acts on one dead letter; the line to print on success.
async fn one(
    conn: &Connection,
    action: Action,
    target: RedriveTarget,
    dead: &DeadLetter,
) -> Result<String, DlqError> {
    match action {
        Action::Redrive => {
            let r = ops::redrive(&conn.js, dead, target).await?;
            let only = r
                .group
                .map(|g| format!(", for group {g} only"))
                .unwrap_or_default();
            Ok(format!(
                "#{} redriven to {} ({} #{}, redrive {}{only})",
                r.dlq_sequence, r.subject, r.stream, r.sequence, r.redrive_count
            ))
        }
        Action::Purge => {
            ops::purge(&conn.js, dead.dlq_sequence).await?;
            Ok(format!("#{} purged", dead.dlq_sequence))
        }
    }
}
