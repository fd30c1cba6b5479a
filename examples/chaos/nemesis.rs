//! The nemesis: one fault at a time, each healed before the next, in a
//! fixed rotation so that even a short run meets several kinds.
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tidings::testing::{FaultProxy, NatsCluster};

use super::event::STREAM;
use super::processes::Subscribers;

/// The kinds of fault, in the order the nemesis applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// SIGKILL a server node, start it again 5 s later.
    KillNode,
    /// SIGKILL a subscriber process, start it again 1 s later.
    KillSubscriber,
    /// Ask the stream's leader to step down.
    LeaderStepdown,
    /// Blackhole the proxied clients' links for 12 s, then reset them.
    Partition,
    /// SIGSTOP a server node for 5 s, then SIGCONT.
    PauseNode,
    /// Stop a server node gracefully and start it again.
    RestartNode,
    /// SIGTERM a subscriber process and start it again.
    RestartSubscriber,
}

const ROTATION: [Kind; 7] = [
    Kind::KillNode,
    Kind::KillSubscriber,
    Kind::LeaderStepdown,
    Kind::Partition,
    Kind::PauseNode,
    Kind::RestartNode,
    Kind::RestartSubscriber,
];

/// One applied fault.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Seconds from the start of the run.
    pub at_s: f64,
    pub kind: Kind,
    pub target: String,
    /// From the fault to its healing, in milliseconds.
    pub healed_after_ms: u128,
    /// Set if applying or healing failed.
    pub error: Option<String>,
}

/// What the nemesis acts on.
pub struct Targets<'a> {
    pub cluster: &'a mut NatsCluster,
    pub subscribers: &'a mut Subscribers,
    pub proxies: &'a [FaultProxy],
    pub admin: &'a async_nats::Client,
}

/// Applies the `n`-th fault of the rotation, on a target chosen by `rng`.
pub async fn apply(n: usize, rng: &mut fastrand::Rng, t: &mut Targets<'_>, at_s: f64) -> Fault {
    let kind = ROTATION[n % ROTATION.len()];
    let started = Instant::now();
    let mut target = String::new();
    let result = tokio::time::timeout(Duration::from_secs(90), async {
        match kind {
            Kind::KillNode | Kind::PauseNode | Kind::RestartNode => {
                let i = rng.usize(0..t.cluster.nodes().len());
                target = t.cluster.node(i)?.name().to_string();
                let node = t.cluster.node_mut(i)?;
                match kind {
                    Kind::KillNode => {
                        node.kill()?;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        node.start().await?;
                    }
                    Kind::PauseNode => {
                        node.pause().await?;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        node.resume().await?;
                    }
                    _ => node.restart().await?,
                }
            }
            Kind::KillSubscriber | Kind::RestartSubscriber => {
                let i = rng.usize(0..t.subscribers.len());
                target = t.subscribers.name(i);
                if kind == Kind::KillSubscriber {
                    t.subscribers.kill(i)?;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                } else {
                    t.subscribers.stop(i).await?;
                }
                t.subscribers.restart(i)?;
            }
            Kind::LeaderStepdown => {
                target = STREAM.to_string();
                let answer = t
                    .admin
                    .request(
                        format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}"),
                        "".into(),
                    )
                    .await
                    .context("asking for a leader step-down")?;
                let json: serde_json::Value = serde_json::from_slice(&answer.payload)?;
                anyhow::ensure!(json["success"] == true, "step-down refused: {json}");
            }
            Kind::Partition => {
                target = format!("{} proxied clients", t.proxies.len());
                for proxy in t.proxies {
                    proxy.blackhole(true);
                }
                tokio::time::sleep(Duration::from_secs(12)).await;
                for proxy in t.proxies {
                    proxy.blackhole(false);
                    proxy.reset_all();
                }
            }
        }
        anyhow::Ok(())
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("not healed within 90 s")));
    if let Err(e) = &result {
        tracing::error!(?kind, %target, error = %e, "fault");
    } else {
        tracing::info!(?kind, %target, "fault applied and healed");
    }
    Fault {
        at_s,
        kind,
        target,
        healed_after_ms: started.elapsed().as_millis(),
        error: result.err().map(|e| format!("{e:#}")),
    }
}

/// Brings every node back (started and resumed) and opens the proxies.
pub async fn heal(cluster: &mut NatsCluster, proxies: &[FaultProxy]) -> anyhow::Result<()> {
    for proxy in proxies {
        proxy.blackhole(false);
    }
    for i in 0..cluster.nodes().len() {
        let node = cluster.node_mut(i)?;
        if !node.is_running() {
            node.start().await?;
        }
        // A no-op on a running node; undoes a pause left by an interrupted fault.
        if node.resume().await.is_err() {
            tracing::warn!(node = node.name(), "could not resume");
        }
    }
    Ok(())
}
