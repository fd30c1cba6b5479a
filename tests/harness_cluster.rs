//! Proves the cluster harness: an R3 stream on three loopback nodes keeps
//! accepting writes with its leader killed, and the killed node catches up
//! after it is started again.
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use tidings::testing::{eventually, NatsCluster, NatsServer};

const STREAM: &str = "CATALOG_EVENTS";

/// Messages and last sequence of `STREAM` as stored by this node itself.
async fn local_state(node: &NatsServer) -> anyhow::Result<(u64, u64)> {
    let jsz = node.monitor("/jsz?accounts=true&streams=true").await?;
    let streams = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten());
    for detail in streams {
        if detail["name"] == STREAM {
            let state = &detail["state"];
            return Ok((
                state["messages"].as_u64().context("messages")?,
                state["last_seq"].as_u64().context("last_seq")?,
            ));
        }
    }
    anyhow::bail!("{} holds no replica of {STREAM} yet", node.name())
}

async fn publish_all(js: &jetstream::Context, from: u64, to: u64) -> anyhow::Result<()> {
    for n in from..to {
        let payload = format!("{{\"n\":{n}}}");
        // During the election after a node loss a publish may time out or find
        // no responders; the same message id makes the retry safe.
        eventually(
            &format!("PubAck for message {n}"),
            Duration::from_secs(30),
            || {
                let js = js.clone();
                let payload = payload.clone();
                async move {
                    let publish = jetstream::message::PublishMessage::build()
                        .payload(payload.into())
                        .message_id(format!("msg-{n}"));
                    js.send_publish("catalog.product.updated", publish)
                        .await?
                        .await
                }
            },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn r3_stream_survives_losing_its_leader_and_the_node_catches_up() -> anyhow::Result<()> {
    let mut cluster = NatsCluster::launch().await?;
    assert_eq!(cluster.nodes().len(), 3);
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(cluster.urls())
        .await?;
    let js = jetstream::new(client);
    let mut stream = js
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["catalog.>".into()],
            storage: stream::StorageType::File,
            num_replicas: 3,
            ..Default::default()
        })
        .await?;
    publish_all(&js, 0, 100).await?;

    let info = stream.info().await?;
    let cluster_info = info
        .cluster
        .as_ref()
        .context("an R3 stream has cluster info")?;
    let leader = cluster_info.leader.clone().context("a leader")?;
    assert_eq!(
        cluster_info.replicas.len(),
        2,
        "two followers beside the leader"
    );
    let victim = cluster
        .index_of(&leader)
        .context("leader is one of our nodes")?;

    cluster.node_mut(victim)?.kill()?;
    publish_all(&js, 100, 200).await?;
    let info = stream.info().await?;
    assert_eq!(
        info.state.messages, 200,
        "every write with one node down was stored once"
    );
    let new_leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
    assert_ne!(
        new_leader.as_deref(),
        Some(leader.as_str()),
        "a survivor leads"
    );

    cluster.node_mut(victim)?.start().await?;
    let restarted = cluster.node(victim)?;
    let caught_up = eventually(
        "the restarted node to hold all 200 messages",
        Duration::from_secs(30),
        || async {
            match local_state(restarted).await {
                Ok((200, 200)) => Ok((200, 200)),
                Ok(other) => Err(format!("local state {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    assert_eq!(caught_up, (200, 200));
    Ok(())
}

#[tokio::test]
async fn launch_with_applies_the_builder_to_every_node() -> anyhow::Result<()> {
    let cluster = NatsCluster::launch_with(NatsServer::builder().sync_always(true)).await?;
    let mut names = Vec::new();
    for node in cluster.nodes() {
        let jsz = node.monitor("/jsz").await?;
        assert_eq!(
            jsz["config"]["sync_always"],
            true,
            "{} runs with sync_interval: always: {jsz}",
            node.name()
        );
        names.push(node.name().to_string());
    }
    assert_eq!(names, ["n1", "n2", "n3"], "each node keeps its own name");
    Ok(())
}
