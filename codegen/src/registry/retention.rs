//! What a stream's `retention` kind asks of the groups and readers that
//! consume it (`tidings check`).
//!
//! * A **work queue** deletes an event when one consumer acks it, and the
//!   server refuses a second consumer whose filter overlaps the first's:
//!   each event type on it may be handled by one consumer group only, and
//!   no tenant reader may read it (`config/workqueue-shared`,
//!   `config/workqueue-reader`).
//! * An **interest** stream deletes an event once every group covering it
//!   has acked it, and at once when no group covers it: a type on it that
//!   no group handles is lost as it is published (`config/interest-unconsumed`,
//!   a warning: a group may be added before the first publish).
//! * The dead-letter stream keeps the limits kind: dead letters must stay
//!   until an operator redrives or purges them (`config/dlq-retention`).
use std::collections::BTreeMap;

use super::access::DLQ_STREAM;
use super::config::{Config, Retention, CONFIG_FILE};
use super::finding::Finding;

/// Checks each stream's retention kind against the groups and readers of
/// `config` (`types`: every event type and its stream).
pub fn check(config: &Config, text: &str, types: &BTreeMap<String, String>) -> Vec<Finding> {
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut findings = Vec::new();
    for (name, stream) in &config.streams {
        let at = line(&format!("[streams.{name}]"));
        let retention = stream.retention;
        if name == DLQ_STREAM && retention != Retention::Limits {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "config/dlq-retention",
                    format!(
                        "stream {DLQ_STREAM} has retention = \"{retention}\": dead letters would be deleted \
                         without an operator's redrive or purge (under interest at once, no group consumes them; \
                         under workqueue by the first listing or redrive)"
                    ),
                    format!("remove `retention` from [streams.{DLQ_STREAM}] (the default, \"limits\", keeps them for max_age)"),
                )
                .at_line(at),
            );
            continue;
        }
        // The types stored on this stream, and who consumes each.
        let on_stream = |ty: &String| types.get(ty).is_some_and(|s| s == name);
        let mut handlers: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for ty in types.keys().filter(|t| on_stream(t)) {
            handlers.entry(ty.as_str()).or_default();
        }
        for (service, s) in &config.services {
            for (group, handled) in &s.groups {
                for ty in handled.iter().filter(|t| on_stream(t)) {
                    handlers
                        .entry(ty.as_str())
                        .or_default()
                        .push((service.as_str(), group.as_str()));
                }
            }
        }
        match retention {
            Retention::Limits => {}
            Retention::WorkQueue => {
                for (ty, groups) in &handlers {
                    let Some((first_service, first)) = groups.first() else {
                        continue;
                    };
                    for (service, group) in groups.iter().skip(1) {
                        findings.push(
                            Finding::error(
                                CONFIG_FILE,
                                "",
                                "config/workqueue-shared",
                                format!(
                                    "stream {name} is a work queue (retention = \"workqueue\"), but groups {first} \
                                     (service {first_service}) and {group} (service {service}) both handle {ty}: \
                                     the server refuses the second group's consumer, and an event acked by one \
                                     group is deleted before the other sees it"
                                ),
                                format!(
                                    "let one group handle {ty}, or set retention = \"interest\" in [streams.{name}] \
                                     (every group gets each event; it is deleted once all have acked it)"
                                ),
                            )
                            .at_line(line(&format!("{group} =")).max(at)),
                        );
                    }
                }
                for (kind, reader) in &config.readers {
                    for ty in reader.types.iter().filter(|t| on_stream(t)) {
                        findings.push(
                            Finding::error(
                                CONFIG_FILE,
                                "",
                                "config/workqueue-reader",
                                format!(
                                    "reader {kind} reads {ty}, which is on work-queue stream {name}: a reader's \
                                     consumer overlaps the group's (the server refuses one of them), and each \
                                     event it acked would be deleted before the group handled it"
                                ),
                                format!(
                                    "remove {ty} from [readers.{kind}], or set retention = \"interest\" or \
                                     \"limits\" in [streams.{name}]"
                                ),
                            )
                            .at_line(line(&format!("[readers.{kind}]"))),
                        );
                    }
                }
            }
            Retention::Interest => {
                for (ty, groups) in &handlers {
                    if groups.is_empty() {
                        findings.push(
                            Finding::error(
                                CONFIG_FILE,
                                "",
                                "config/interest-unconsumed",
                                format!(
                                    "stream {name} keeps events only for the groups consuming them (retention = \
                                     \"interest\"), and no group in [services] handles {ty}: its events are \
                                     deleted as soon as they are stored"
                                ),
                                format!(
                                    "add a group handling {ty} under [services.<service>.groups] (started before \
                                     the first publish), or set retention = \"limits\" in [streams.{name}]"
                                ),
                            )
                            .at_line(at)
                            .warning(),
                        );
                    }
                }
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> BTreeMap<String, String> {
        [
            ("auth.user.created", "AUTH_EVENTS"),
            ("auth.user.deleted", "AUTH_EVENTS"),
            ("catalog.product.created", "CATALOG_EVENTS"),
        ]
        .into_iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect()
    }

    fn findings(text: &str) -> Vec<Finding> {
        let config = Config::parse(text).expect("a valid config");
        check(&config, text, &types())
    }

    const STREAMS: &str = "[streams.CATALOG_EVENTS]\nsubjects = [\"catalog.>\"]\n[streams.DLQ_EVENTS]\nsubjects = [\"dlq.>\"]\nevents = false\n";

    #[test]
    fn limits_asks_nothing_of_the_groups() {
        let text = format!(
            "[streams.AUTH_EVENTS]\nsubjects = [\"auth.>\"]\n{STREAMS}\
             [services.a.groups]\ng1 = [\"auth.user.created\"]\n[services.b.groups]\ng2 = [\"auth.user.created\"]\n"
        );
        assert_eq!(findings(&text), vec![]);
    }

    #[test]
    fn a_work_queue_type_handled_by_two_groups_names_both_and_the_way_out() {
        let text = format!(
            "[streams.AUTH_EVENTS]\nsubjects = [\"auth.>\"]\nretention = \"workqueue\"\n{STREAMS}\
             [services.a.groups]\ng1 = [\"auth.user.created\", \"catalog.product.created\"]\n\
             [services.b.groups]\ng2 = [\"auth.user.created\", \"auth.user.deleted\"]\n\
             g3 = [\"catalog.product.created\"]\n"
        );
        let found = findings(&text);
        // Two groups on catalog.product.created, but CATALOG_EVENTS is limits.
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.rule, "config/workqueue-shared");
        assert_eq!(f.severity, super::super::finding::Severity::Error);
        assert!(f.message.contains("AUTH_EVENTS"), "{}", f.message);
        assert!(f.message.contains("g1 (service a)"), "{}", f.message);
        assert!(f.message.contains("g2 (service b)"), "{}", f.message);
        assert!(f.message.contains("auth.user.created"), "{}", f.message);
        assert!(f.help.contains("retention = \"interest\""), "{}", f.help);
        assert_eq!(f.line, 12, "the second group's line: {f:?}");
    }

    #[test]
    fn a_work_queue_allows_one_group_per_type_and_no_reader() {
        let text = format!(
            "[streams.AUTH_EVENTS]\nsubjects = [\"auth.>\"]\nretention = \"workqueue\"\n{STREAMS}\
             [services.a.groups]\ng1 = [\"auth.user.created\"]\n\
             [services.b.groups]\ng2 = [\"auth.user.deleted\"]\n"
        );
        assert_eq!(findings(&text), vec![]);
        let with_reader = format!("{text}[readers.dashboard]\ntypes = [\"auth.user.deleted\"]\n");
        let found = findings(&with_reader);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "config/workqueue-reader");
        assert!(found[0].message.contains("dashboard"), "{found:?}");
        assert!(found[0].help.contains("[readers.dashboard]"), "{found:?}");
    }

    #[test]
    fn an_interest_stream_warns_of_each_type_no_group_handles() {
        let text = format!(
            "[streams.AUTH_EVENTS]\nsubjects = [\"auth.>\"]\nretention = \"interest\"\n{STREAMS}\
             [services.a.groups]\ng1 = [\"auth.user.created\"]\n[services.b.groups]\ng2 = [\"auth.user.created\"]\n"
        );
        let found = findings(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.rule, "config/interest-unconsumed");
        assert_eq!(f.severity, super::super::finding::Severity::Warning);
        assert!(f.message.contains("auth.user.deleted"), "{}", f.message);
        assert_eq!(f.line, 1);
    }

    #[test]
    fn the_dead_letter_stream_keeps_the_limits_kind() {
        for kind in ["interest", "workqueue"] {
            let text = format!(
                "[streams.DLQ_EVENTS]\nsubjects = [\"dlq.>\"]\nevents = false\nretention = \"{kind}\"\n"
            );
            let found = findings(&text);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].rule, "config/dlq-retention");
            assert!(found[0].message.contains(kind), "{found:?}");
        }
    }
}
