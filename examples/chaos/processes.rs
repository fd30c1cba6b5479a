//! The subscriber processes: spawned from this binary, killed and restarted
//! by pid, and every one of them killed when the set is dropped (also on an
//! error or Ctrl-C path).
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How one instance is started.
#[derive(Debug, Clone)]
pub struct Spec {
    pub group: String,
    pub instance: usize,
    pub urls: String,
    pub ordered: bool,
    pub dedup: bool,
}

struct Instance {
    spec: Spec,
    child: Option<Child>,
}

/// Every subscriber process of the run.
pub struct Subscribers {
    exe: PathBuf,
    dir: PathBuf,
    instances: Vec<Instance>,
    /// Processes that exited without being told to.
    pub unexpected_exits: usize,
    /// The pids of the processes this set SIGKILLed (their last acks may
    /// be lost with them).
    pub killed: std::collections::HashSet<u32>,
}

impl Subscribers {
    /// Spawns one process per spec.
    pub fn spawn(dir: &Path, specs: Vec<Spec>) -> anyhow::Result<Self> {
        let mut set = Self {
            exe: std::env::current_exe().context("finding this binary")?,
            dir: dir.to_path_buf(),
            instances: specs
                .into_iter()
                .map(|spec| Instance { spec, child: None })
                .collect(),
            unexpected_exits: 0,
            killed: Default::default(),
        };
        for i in 0..set.instances.len() {
            set.start(i)?;
        }
        Ok(set)
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// The group and instance of one.
    pub fn name(&self, i: usize) -> String {
        let spec = &self.instances[i].spec;
        format!("{}/{}", spec.group, spec.instance)
    }

    fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let spec = self.instances[i].spec.clone();
        let stderr = OpenOptions::new().create(true).append(true).open(
            self.dir
                .join(format!("{}.{}.stderr", spec.group, spec.instance)),
        )?;
        let mut command = Command::new(&self.exe);
        command
            .arg("subscriber")
            .args(["--group", &spec.group])
            .args(["--instance", &spec.instance.to_string()])
            .args(["--urls", &spec.urls])
            .arg("--dir")
            .arg(self.dir.join("handled"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr);
        if spec.ordered {
            command.arg("--ordered");
        }
        if spec.dedup {
            command.arg("--dedup");
        }
        let child = command
            .spawn()
            .with_context(|| format!("spawning subscriber {}", self.name(i)))?;
        self.instances[i].child = Some(child);
        Ok(())
    }

    /// SIGKILLs one instance and reaps it.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            self.killed.insert(child.id());
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERMs one instance, waits for it to exit (SIGKILL after 15 s).
    pub async fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        let Some(mut child) = self.instances[i].child.take() else {
            return Ok(());
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                tracing::warn!(subscriber = %self.name(i), "ignored SIGTERM for 15 s; killing it");
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                self.killed.insert(child.id());
                child.wait()?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts one instance again (after `kill` or `stop`).
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.instances[i].child.is_none() {
            self.start(i)?;
        }
        Ok(())
    }

    /// Restarts every instance that exited on its own, counting them.
    pub fn revive(&mut self) -> anyhow::Result<()> {
        for i in 0..self.instances.len() {
            let exited = match self.instances[i].child.as_mut() {
                Some(child) => child.try_wait()?.is_some(),
                None => false,
            };
            if exited {
                tracing::warn!(subscriber = %self.name(i), "exited on its own; restarting it");
                self.unexpected_exits += 1;
                self.instances[i].child = None;
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// Stops every instance gracefully.
    pub async fn stop_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.instances.len() {
            self.stop(i).await?;
        }
        Ok(())
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
            }
        }
    }
}
