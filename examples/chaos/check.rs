//! The accounting, Jepsen style: what the publishers were told, what the
//! stream holds, what each group handled or dead-lettered.
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

/// What a publisher was told about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// PubAck received: the stream stored it.
    Ok,
    /// The publish failed and nothing was stored (`Outcome::NotStored`, a refusal).
    Failed,
    /// The publish failed and the event may be stored (`Outcome::Unknown`).
    Unknown,
}

/// One publish.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    pub id: Uuid,
    pub outcome: Outcome,
    pub poison: bool,
}

/// One handling, as a subscriber logged it.
#[derive(Debug, Clone)]
pub struct Handled {
    pub id: Uuid,
    pub sequence: u64,
    pub key: String,
    pub delivery: u32,
    /// When, by the wall clock (milliseconds since the Unix epoch).
    pub at_ms: u64,
}

/// The log of one subscriber process (one instance's life).
#[derive(Debug, Clone)]
pub struct ProcessLog {
    pub group: String,
    pub name: String,
    /// Whether the nemesis (or a stop that timed out) SIGKILLed it.
    pub killed: bool,
    pub records: Vec<Handled>,
}

/// When a fault could cause a redelivery: from its start until the ack
/// wait after its healing.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub kind: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Counts and a few examples of one finding.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Finding {
    pub count: usize,
    pub examples: Vec<String>,
}

impl Finding {
    fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < 10 {
            self.examples.push(example());
        }
    }
}

/// Publishing and storage.
#[derive(Debug, Default, Serialize)]
pub struct Storage {
    pub attempted: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    pub unknown_stored: usize,
    pub stored_messages: usize,
    pub stored_events: usize,
    /// Acknowledged (ok) but not in the stream.
    pub lost: Finding,
    /// In the stream without an ok or unknown outcome.
    pub unexpected: Finding,
    /// One event id stored more than once.
    pub duplicated: Finding,
}

/// One consumer group.
#[derive(Debug, Default, Serialize)]
pub struct Group {
    pub ordered: bool,
    pub dedup: bool,
    pub processes: usize,
    pub handlings: usize,
    pub handled_events: usize,
    pub dead_lettered: usize,
    /// Stored, but neither handled nor dead-lettered by this group.
    pub lost: Finding,
    /// Handled by this group more than once (redeliveries after kills,
    /// lost acks, expired ack waits).
    pub handled_twice: Finding,
    /// Each handling after an event's first, by where it ran against the
    /// one before (the same instance; the next instance after the one
    /// before was SIGKILLed; another instance) and the fault whose window
    /// (its start to an ack wait after its healing) it fell in.
    pub handled_again_by_cause: BTreeMap<String, usize>,
    /// Handled, but not in the stream.
    pub handled_not_stored: Finding,
    /// Both handled and dead-lettered.
    pub handled_and_dead_lettered: Finding,
    /// Dead-lettered though not a poison probe.
    pub dead_lettered_not_poison: Finding,
    /// handled + dead-lettered - both == stored.
    pub dlq_accounting_ok: bool,
    /// Ordered group: within one instance's life, first deliveries (the
    /// server's delivery count 1) of one entity handled out of stream order.
    pub order_violations: Option<Finding>,
    /// Ordered group, informational: redeliveries handled after a later
    /// event of their entity in the same instance. The SDK orders an
    /// entity's events as they arrive at an instance; across instances, and
    /// for redeliveries, only a single active instance orders (README).
    pub redelivered_behind_later: Option<usize>,
}

/// The whole accounting.
#[derive(Debug, Default, Serialize)]
pub struct Accounting {
    pub storage: Storage,
    pub groups: BTreeMap<String, Group>,
}

impl Accounting {
    /// Whether the run found a loss, a storage duplicate, an unexpected
    /// event or an order violation.
    pub fn failed(&self) -> bool {
        let s = &self.storage;
        s.lost.count > 0
            || s.duplicated.count > 0
            || s.unexpected.count > 0
            || self.groups.values().any(|g| {
                g.lost.count > 0
                    || g.handled_not_stored.count > 0
                    || !g.dlq_accounting_ok
                    || g.order_violations.as_ref().is_some_and(|o| o.count > 0)
            })
    }
}

/// Settings of a group for the accounting.
pub struct GroupSpec {
    pub name: String,
    pub ordered: bool,
    pub dedup: bool,
}

/// Computes the accounting.
pub fn account(
    publishes: &[Publish],
    stored: &[(Uuid, u64)],
    dead_letters: &[(String, Uuid)],
    logs: &[ProcessLog],
    groups: &[GroupSpec],
    windows: &[FaultWindow],
) -> Accounting {
    let mut out = Accounting::default();
    let s = &mut out.storage;
    let by_id: HashMap<Uuid, Publish> = publishes.iter().map(|p| (p.id, *p)).collect();
    s.attempted = publishes.len();
    let mut copies: HashMap<Uuid, usize> = HashMap::with_capacity(stored.len());
    for (id, _) in stored {
        *copies.entry(*id).or_default() += 1;
    }
    s.stored_messages = stored.len();
    s.stored_events = copies.len();
    for p in publishes {
        match p.outcome {
            Outcome::Ok => {
                s.ok += 1;
                if !copies.contains_key(&p.id) {
                    s.lost.add(|| p.id.to_string());
                }
            }
            Outcome::Failed => s.failed += 1,
            Outcome::Unknown => {
                s.unknown += 1;
                if copies.contains_key(&p.id) {
                    s.unknown_stored += 1;
                }
            }
        }
    }
    for (id, n) in &copies {
        if *n > 1 {
            s.duplicated.add(|| format!("{id} stored {n} times"));
        }
        match by_id.get(id).map(|p| p.outcome) {
            Some(Outcome::Ok | Outcome::Unknown) => {}
            Some(Outcome::Failed) => s
                .unexpected
                .add(|| format!("{id}: publish said not stored")),
            None => s.unexpected.add(|| format!("{id}: never published")),
        }
    }

    for spec in groups {
        let mut g = Group {
            ordered: spec.ordered,
            dedup: spec.dedup,
            ..Default::default()
        };
        let mut times: HashMap<Uuid, usize> = HashMap::new();
        for log in logs.iter().filter(|l| l.group == spec.name) {
            g.processes += 1;
            for r in &log.records {
                g.handlings += 1;
                *times.entry(r.id).or_default() += 1;
            }
        }
        g.handled_events = times.len();
        g.handled_again_by_cause = handled_again_by_cause(logs, &spec.name, windows);
        for (id, n) in &times {
            if *n > 1 {
                g.handled_twice.add(|| format!("{id} handled {n} times"));
            }
            if !copies.contains_key(id) {
                g.handled_not_stored.add(|| id.to_string());
            }
        }
        let dead: HashSet<Uuid> = dead_letters
            .iter()
            .filter(|(group, _)| *group == spec.name)
            .map(|(_, id)| *id)
            .collect();
        g.dead_lettered = dead.len();
        for id in &dead {
            if times.contains_key(id) {
                g.handled_and_dead_lettered.add(|| id.to_string());
            }
            if !by_id.get(id).is_some_and(|p| p.poison) {
                g.dead_lettered_not_poison.add(|| id.to_string());
            }
        }
        for id in copies.keys() {
            if !times.contains_key(id) && !dead.contains(id) {
                g.lost.add(|| id.to_string());
            }
        }
        let accounted = g.handled_events + g.dead_lettered - g.handled_and_dead_lettered.count;
        g.dlq_accounting_ok = accounted == s.stored_events && g.handled_not_stored.count == 0;
        if spec.ordered {
            g.order_violations = Some(order_violations(logs, &spec.name));
            g.redelivered_behind_later = Some(redelivered_behind_later(logs, &spec.name));
        }
        out.groups.insert(spec.name.clone(), g);
    }
    out
}

/// Every handling of `group` after an event's first, counted by cause (see
/// [`Group::handled_again_by_cause`]).
fn handled_again_by_cause(
    logs: &[ProcessLog],
    group: &str,
    windows: &[FaultWindow],
) -> BTreeMap<String, usize> {
    let mut handlings: HashMap<Uuid, Vec<(u64, usize)>> = HashMap::new();
    for (p, log) in logs.iter().enumerate().filter(|(_, l)| l.group == group) {
        for r in &log.records {
            handlings.entry(r.id).or_default().push((r.at_ms, p));
        }
    }
    let mut causes = BTreeMap::new();
    for list in handlings.values_mut().filter(|l| l.len() > 1) {
        list.sort_unstable();
        for pair in list.windows(2) {
            let ((_, before), (at, now)) = (pair[0], pair[1]);
            let place = if now == before {
                "same instance"
            } else if logs[before].killed {
                "another instance, after a SIGKILL of the one before"
            } else {
                "another instance"
            };
            // Windows may overlap: the latest fault started before it.
            let fault = windows
                .iter()
                .rev()
                .find(|w| w.from_ms <= at && at <= w.to_ms)
                .map_or("no fault", |w| w.kind.as_str());
            *causes.entry(format!("{place}; {fault}")).or_default() += 1;
        }
    }
    causes
}

/// Within each process's log, per entity, first deliveries in handling
/// order must rise in stream sequence.
fn order_violations(logs: &[ProcessLog], group: &str) -> Finding {
    let mut finding = Finding::default();
    for log in logs.iter().filter(|l| l.group == group) {
        let mut last: HashMap<&str, u64> = HashMap::new();
        for r in log.records.iter().filter(|r| r.delivery == 1) {
            let previous = last.entry(r.key.as_str()).or_insert(0);
            if r.sequence < *previous {
                let before = *previous;
                finding.add(|| {
                    format!(
                        "{}: key {} sequence {} handled after {}",
                        log.name, r.key, r.sequence, before
                    )
                });
            } else {
                *previous = r.sequence;
            }
        }
    }
    finding
}

/// Per process and entity, redeliveries (delivery > 1) handled after a
/// later event of their entity: the reordering a redelivery brings after a
/// crash, a lost ack or an expired ack wait (informational).
fn redelivered_behind_later(logs: &[ProcessLog], group: &str) -> usize {
    let mut count = 0;
    for log in logs.iter().filter(|l| l.group == group) {
        let mut last: HashMap<&str, u64> = HashMap::new();
        for r in &log.records {
            let previous = last.entry(r.key.as_str()).or_insert(0);
            count += usize::from(r.delivery > 1 && r.sequence < *previous);
            *previous = (*previous).max(r.sequence);
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handled(id: Uuid, at_ms: u64) -> Handled {
        Handled {
            id,
            sequence: 1,
            key: "k".into(),
            delivery: 1,
            at_ms,
        }
    }

    fn log(name: &str, killed: bool, records: Vec<Handled>) -> ProcessLog {
        ProcessLog {
            group: "g".into(),
            name: name.into(),
            killed,
            records,
        }
    }

    #[test]
    fn each_handling_after_the_first_is_told_by_place_and_fault() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let logs = vec![
            // Killed after handling a and b; b again in the same life of
            // another instance, c twice in one instance.
            log("g.1.100", true, vec![handled(a, 1_000), handled(b, 1_100)]),
            log(
                "g.2.200",
                false,
                vec![handled(a, 5_000), handled(c, 6_000), handled(c, 20_000)],
            ),
            log(
                "g.3.300",
                false,
                vec![handled(b, 30_000), handled(b, 31_000)],
            ),
        ];
        let windows = vec![
            FaultWindow {
                kind: "kill_subscriber".into(),
                from_ms: 900,
                to_ms: 7_000,
            },
            FaultWindow {
                kind: "partition".into(),
                from_ms: 15_000,
                to_ms: 21_000,
            },
        ];
        let causes = handled_again_by_cause(&logs, "g", &windows);
        let want: BTreeMap<String, usize> = [
            (
                "another instance, after a SIGKILL of the one before; kill_subscriber",
                1,
            ),
            (
                "another instance, after a SIGKILL of the one before; no fault",
                1,
            ),
            ("same instance; partition", 1),
            ("same instance; no fault", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(causes, want);
        let specs = [GroupSpec {
            name: "g".into(),
            ordered: false,
            dedup: false,
        }];
        let stored: Vec<(Uuid, u64)> = vec![(a, 1), (b, 2), (c, 3)];
        let publishes: Vec<Publish> = [a, b, c]
            .iter()
            .map(|id| Publish {
                id: *id,
                outcome: Outcome::Ok,
                poison: false,
            })
            .collect();
        let accounting = account(&publishes, &stored, &[], &logs, &specs, &windows);
        let g = &accounting.groups["g"];
        assert_eq!(g.handled_twice.count, 3, "a, b and c");
        assert_eq!(
            g.handled_again_by_cause.values().sum::<usize>(),
            4,
            "b ran three times"
        );
        assert!(!accounting.failed());
    }
}
