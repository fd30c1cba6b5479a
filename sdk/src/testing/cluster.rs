use futures_util::future::try_join_all;

use super::ports::free_port;
use super::server::ClusterConfig;
use super::{HarnessError, NatsServer, NatsServerBuilder};

/// Three JetStream servers clustered over loopback (the smallest cluster
/// that keeps an R3 stream writable with one node down).
///
/// Nodes are named `n1`, `n2`, `n3` and addressed by index 0..3. Dropping the
/// cluster kills every node.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// The cluster's name in the servers' configuration.
    pub const NAME: &'static str = "tidings";

    /// Starts three nodes and waits until every one is healthy (which needs
    /// a JetStream meta leader).
    pub async fn launch() -> Result<Self, HarnessError> {
        Self::launch_with(NatsServerBuilder::default()).await
    }

    /// Starts three nodes configured by `builder` (for example
    /// [`sync_always`](NatsServerBuilder::sync_always), the production
    /// profile), each named as in [`launch`](Self::launch), and waits until
    /// every one is healthy.
    pub async fn launch_with(builder: NatsServerBuilder) -> Result<Self, HarnessError> {
        const SIZE: usize = 3;
        let mut last_err = None;
        for _ in 0..5 {
            let mut cluster_ports = Vec::with_capacity(SIZE);
            for _ in 0..SIZE {
                cluster_ports.push(free_port()?);
            }
            let mut nodes = Vec::with_capacity(SIZE);
            for (i, port) in cluster_ports.iter().enumerate() {
                let routes = cluster_ports
                    .iter()
                    .copied()
                    .filter(|p| p != port)
                    .collect();
                let config = ClusterConfig {
                    name: Self::NAME.into(),
                    port: *port,
                    routes,
                };
                nodes.push(
                    builder
                        .clone()
                        .name(format!("n{}", i + 1))
                        .prepare(Some(config))?,
                );
            }
            let mut cluster = Self { nodes };
            for node in &mut cluster.nodes {
                node.spawn()?;
            }
            match try_join_all(cluster.nodes.iter_mut().map(NatsServer::wait_ready)).await {
                Ok(_) => return Ok(cluster),
                Err(err) if cluster.nodes.iter().any(NatsServer::lost_port_race) => {
                    last_err = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::NotRunning {
            name: Self::NAME.into(),
        }))
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, index: usize) -> Result<&NatsServer, HarnessError> {
        let len = self.nodes.len();
        self.nodes
            .get(index)
            .ok_or(HarnessError::NoSuchNode { index, len })
    }

    /// One node, mutably: to kill, stop, start, pause or resume it.
    pub fn node_mut(&mut self, index: usize) -> Result<&mut NatsServer, HarnessError> {
        let len = self.nodes.len();
        self.nodes
            .get_mut(index)
            .ok_or(HarnessError::NoSuchNode { index, len })
    }

    /// The index of the node with this server name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == name)
    }

    /// Every node's client URL, as `async_nats::connect` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Connects one client that knows every node and fails over between them.
    pub async fn connect(&self) -> Result<async_nats::Client, HarnessError> {
        let urls = self.urls();
        async_nats::connect(urls.as_slice())
            .await
            .map_err(|source| HarnessError::Connect {
                url: urls.join(","),
                source,
            })
    }
}
