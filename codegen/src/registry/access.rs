//! Who consumes what, and the least-privilege NATS permissions that follow.
//!
//! `tidings.toml` says which consumer groups each service runs and which
//! event types each group handles, and which event types each kind of
//! tenant-scoped reader may read:
//!
//! ```toml
//! [services.analytics.groups]
//! analytics = ["auth.user.created", "catalog.product.created"]
//!
//! [readers.dashboard]
//! types = ["analytics.report.generated"]
//! ```
//!
//! From that and the event schemas (each type's stream), [`permissions`]
//! derives one [`UserPermissions`] per user:
//!
//! * **a service** publishes only its own event types' subjects
//!   (`auth.user.created.>`); consumes only through its groups' durable
//!   consumers on the streams of their types (consumer info, create/update,
//!   pull, ack); moves dead letters only to its groups' DLQ subjects
//!   (`dlq.<group>.>`) and keeps only its groups' keys in the failures
//!   bucket; and reads replies only on its own inbox, `_INBOX_<user>`;
//! * **a tenant reader** (`reader-<kind>-<org>`) may only create consumers
//!   whose filter, named in the request subject, is `<type>.<org>.>` of the
//!   types it may read, under one consumer name per type
//!   ([`reader_consumer`]), and pull and ack through them;
//! * **the operator** manages streams and consumers and the dead-letter
//!   queue (list, redrive, purge) through the JetStream API.
//!
//! No user may subscribe to event subjects directly: events are read only
//! through consumers, whose filters the server checks.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::{Config, CONFIG_FILE};
use super::finding::Finding;

/// The dead-letter stream (the runtime's `tidings::dlq::DLQ_STREAM`).
pub const DLQ_STREAM: &str = "DLQ_EVENTS";
/// The failures bucket (the runtime's `tidings::dlq::FAILURES_BUCKET`).
pub const FAILURES_BUCKET: &str = "tidings_failures";
/// The prefix of the keys the mover keeps for stuck moves.
const STUCK_PREFIX: &str = "stuck";
/// The user name of the operator.
pub const OPERATOR: &str = "operator";

/// One service's consumer groups: group name to the event types it handles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Consumer groups by name, each with the event types it handles.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// A kind of tenant-scoped reader: the event types it may read, of its own
/// organization only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reader {
    /// Event types this kind of reader may read.
    pub types: Vec<String>,
}

/// Who a user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "role")]
pub enum Role {
    /// A service: publishes its types, runs its consumer groups.
    Service {
        /// The service (`auth`).
        service: String,
    },
    /// A tenant-scoped reader of one organization.
    Reader {
        /// The kind of reader (a `[readers.<kind>]` of the config).
        kind: String,
        /// The organization it may read.
        organization: String,
    },
    /// Streams and dead-letter operations.
    Operator,
}

/// Allowed subjects, the shape of a JWT user's `pub` and `sub` claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Allow {
    /// Subjects (with wildcards) the user may use.
    pub allow: Vec<String>,
}

/// One user's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPermissions {
    /// The user name, also the suffix of its inbox prefix.
    pub user: String,
    /// Who the user is.
    #[serde(flatten)]
    pub role: Role,
    /// The inbox prefix the user's client must set (`_INBOX_<user>`).
    pub inbox_prefix: String,
    /// Subjects the user may publish to.
    #[serde(rename = "pub")]
    pub publish: Allow,
    /// Subjects the user may subscribe to.
    #[serde(rename = "sub")]
    pub subscribe: Allow,
}

/// Why permissions cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A reader kind the config does not declare.
    #[error("no reader kind {0:?} in {CONFIG_FILE}: declare [readers.{0}] with its types")]
    UnknownReader(String),
    /// An organization id that cannot be a subject token.
    #[error(
        "organization id {0:?} is not a subject token of ASCII letters, digits and - _ : @ + = ~"
    )]
    Organization(String),
    /// The config names event types or groups that do not check.
    #[error("{CONFIG_FILE} has access errors; run `tidings check`: {0}")]
    Config(String),
}

/// Every event type of the registry and its stream (from `x-stream`).
pub fn event_streams(loaded: &super::load::Loaded) -> BTreeMap<String, String> {
    loaded
        .events
        .iter()
        .filter_map(|e| Some((e.event_type.as_ref()?.to_string(), e.stream.clone()?)))
        .collect()
}

/// The consumer groups of `[services.*.groups]` whose handlers take
/// `event_type`, as (service, group).
pub fn groups_handling<'a>(
    config: &'a super::config::Config,
    event_type: &str,
) -> Vec<(&'a str, &'a str)> {
    let mut groups = Vec::new();
    for (service, declared) in &config.services {
        for (group, types) in &declared.groups {
            if types.iter().any(|t| t == event_type) {
                groups.push((service.as_str(), group.as_str()));
            }
        }
    }
    groups
}

/// The inbox prefix of `user`: `_INBOX_<user>`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// The user name of a tenant reader: `reader-<kind>-<org>`.
pub fn reader_user(kind: &str, organization: &str) -> String {
    format!("reader-{kind}-{organization}")
}

/// The one consumer name a tenant reader may use for `event_type`:
/// `<user>-<service>_<entity>_<action>`.
pub fn reader_consumer(user: &str, event_type: &str) -> String {
    format!("{user}-{}", event_type.replace('.', "_"))
}

/// The ASCII allow-list of data tokens (the runtime's `tidings::token`).
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('$')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:@+=~".contains(c))
}

/// A consumer group name: ASCII letters, digits, `-`, `_`, at most 64 bytes
/// (the runtime's `tidings::token::check_group`).
fn is_group(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks the `[services]` and `[readers]` sections against the registry's
/// event types (`types`: event type to stream).
pub fn check(config: &Config, text: &str, types: &BTreeMap<String, String>) -> Vec<Finding> {
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut findings = Vec::new();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    let unknown = |at: usize, whose: String, ty: &str, findings: &mut Vec<Finding>| {
        if !types.contains_key(ty) {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "access/unknown-type",
                    format!("{whose} names event type {ty:?}, which no schema declares"),
                    "name an event type of the registry (service.entity.action), or add its schema",
                )
                .at_line(at),
            );
        }
    };
    for (service, s) in &config.services {
        let at = line(&format!("[services.{service}"));
        if !is_group(service) {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "access/service-name",
                    format!("service name {service:?} cannot be a NATS user and subject token"),
                    "use ASCII letters, digits, '-' and '_'",
                )
                .at_line(at),
            );
        }
        for (group, handled) in &s.groups {
            let at = line(&format!("{group} =")).max(at);
            if !is_group(group) {
                findings.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "access/group-name",
                        format!("service {service}: consumer group {group:?} is not a group name"),
                        "use ASCII letters, digits, '-' and '_', at most 64 bytes",
                    )
                    .at_line(at),
                );
            }
            if let Some(other) = owners.insert(group, service) {
                findings.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "access/group-shared",
                        format!("consumer group {group:?} is declared by services {other} and {service}"),
                        "a group is one durable consumer per stream, run by one service: rename one",
                    )
                    .at_line(at),
                );
            }
            if handled.is_empty() {
                findings.push(
                    Finding::error(
                        CONFIG_FILE,
                        "",
                        "access/group-empty",
                        format!("service {service}: consumer group {group} handles no event type"),
                        "list the event types its handlers take, or remove the group",
                    )
                    .at_line(at),
                );
            }
            for ty in handled {
                unknown(
                    at,
                    format!("service {service}, group {group},"),
                    ty,
                    &mut findings,
                );
            }
        }
    }
    for (kind, r) in &config.readers {
        let at = line(&format!("[readers.{kind}]"));
        if !is_group(kind) {
            findings.push(
                Finding::error(
                    CONFIG_FILE,
                    "",
                    "access/reader-name",
                    format!("reader kind {kind:?} cannot be part of a NATS user name"),
                    "use ASCII letters, digits, '-' and '_'",
                )
                .at_line(at),
            );
        }
        for ty in &r.types {
            unknown(at, format!("reader {kind}"), ty, &mut findings);
        }
    }
    findings
}

/// The permissions of every service (those owning event types and those
/// the config lists), of a reader per `(kind, organization)` asked for,
/// and of the operator. `types`: every event type and its stream.
///
/// # Errors
/// An unknown reader kind, an organization id that is not a token, or a
/// config whose access sections do not check.
pub fn permissions(
    config: &Config,
    types: &BTreeMap<String, String>,
    readers: &[(String, String)],
) -> Result<Vec<UserPermissions>, AccessError> {
    let problems = check(config, "", types);
    if let Some(first) = problems.first() {
        return Err(AccessError::Config(first.message.clone()));
    }
    let mut services: BTreeSet<&str> = config.services.keys().map(String::as_str).collect();
    for ty in types.keys() {
        if let Some((service, _)) = ty.split_once('.') {
            services.insert(service);
        }
    }
    let mut users: Vec<UserPermissions> = services
        .into_iter()
        .map(|s| service_permissions(config, types, s))
        .collect();
    for (kind, organization) in readers {
        users.push(reader_permissions(config, types, kind, organization)?);
    }
    users.push(operator_permissions(types));
    Ok(users)
}

fn sorted(set: BTreeSet<String>) -> Allow {
    Allow {
        allow: set.into_iter().collect(),
    }
}

/// A service's permissions (see the [module](self) documentation).
pub fn service_permissions(
    config: &Config,
    types: &BTreeMap<String, String>,
    service: &str,
) -> UserPermissions {
    let mut publish = BTreeSet::new();
    for (ty, stream) in types {
        if ty.split('.').next() == Some(service) {
            publish.insert(format!("{ty}.>"));
            // The publisher reads its stream's duplicate window.
            publish.insert(format!("$JS.API.STREAM.INFO.{stream}"));
        }
    }
    let groups = config
        .services
        .get(service)
        .map(|s| &s.groups)
        .into_iter()
        .flatten();
    let mut any_group = false;
    for (group, handled) in groups {
        any_group = true;
        let streams: BTreeSet<&String> = handled.iter().filter_map(|t| types.get(t)).collect();
        for stream in streams {
            publish.insert(format!("$JS.API.STREAM.INFO.{stream}"));
            publish.insert(format!("$JS.API.CONSUMER.INFO.{stream}.{group}"));
            // The subscriber sends its filters in the body (several types
            // per stream): the server checks the durable name and stream,
            // not the filter; see the README's threat model.
            publish.insert(format!("$JS.API.CONSUMER.CREATE.{stream}.{group}"));
            publish.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{group}"));
            publish.insert(format!("$JS.ACK.{stream}.{group}.>"));
        }
        // Dead-letter moves: the copy, the check for an earlier copy, and
        // the group's keys in the failures bucket.
        publish.insert(format!("dlq.{group}.>"));
        publish.insert(format!("$JS.API.DIRECT.GET.{DLQ_STREAM}.dlq.{group}.>"));
        publish.insert(format!("$KV.{FAILURES_BUCKET}.{group}.>"));
        publish.insert(format!("$KV.{FAILURES_BUCKET}.{STUCK_PREFIX}.{group}.>"));
        publish.insert(format!(
            "$JS.API.DIRECT.GET.KV_{FAILURES_BUCKET}.$KV.{FAILURES_BUCKET}.{group}.>"
        ));
        publish.insert(format!(
            "$JS.API.DIRECT.GET.KV_{FAILURES_BUCKET}.$KV.{FAILURES_BUCKET}.{STUCK_PREFIX}.{group}.>"
        ));
    }
    if any_group {
        publish.insert(format!("$JS.API.STREAM.INFO.{DLQ_STREAM}"));
        publish.insert(format!("$JS.API.STREAM.INFO.KV_{FAILURES_BUCKET}"));
    }
    let inbox = inbox_prefix(service);
    UserPermissions {
        user: service.to_string(),
        role: Role::Service {
            service: service.to_string(),
        },
        subscribe: sorted(BTreeSet::from([format!("{inbox}.>")])),
        inbox_prefix: inbox,
        publish: sorted(publish),
    }
}

/// A tenant reader's permissions (see the [module](self) documentation).
///
/// # Errors
/// An unknown reader kind or an organization id that is not a token.
pub fn reader_permissions(
    config: &Config,
    types: &BTreeMap<String, String>,
    kind: &str,
    organization: &str,
) -> Result<UserPermissions, AccessError> {
    let reader = config
        .readers
        .get(kind)
        .ok_or_else(|| AccessError::UnknownReader(kind.to_string()))?;
    if !is_token(organization) {
        return Err(AccessError::Organization(organization.to_string()));
    }
    let user = reader_user(kind, organization);
    let mut publish = BTreeSet::new();
    for ty in &reader.types {
        let Some(stream) = types.get(ty) else {
            continue;
        };
        let consumer = reader_consumer(&user, ty);
        // The filter is in the request subject, so the server refuses any
        // other filter in the body.
        publish.insert(format!(
            "$JS.API.CONSUMER.CREATE.{stream}.{consumer}.{ty}.{organization}.>"
        ));
        publish.insert(format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"));
        publish.insert(format!("$JS.API.CONSUMER.DELETE.{stream}.{consumer}"));
        publish.insert(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"));
        publish.insert(format!("$JS.ACK.{stream}.{consumer}.>"));
    }
    let inbox = inbox_prefix(&user);
    Ok(UserPermissions {
        role: Role::Reader {
            kind: kind.to_string(),
            organization: organization.to_string(),
        },
        subscribe: sorted(BTreeSet::from([format!("{inbox}.>")])),
        inbox_prefix: inbox,
        publish: sorted(publish),
        user,
    })
}

/// The operator's permissions: the JetStream API (streams, consumers, the
/// dead-letter queue and the failures bucket), redrives to every event
/// subject, and DLQ alerts on `tidings.dlq.>`.
pub fn operator_permissions(types: &BTreeMap<String, String>) -> UserPermissions {
    let mut publish: BTreeSet<String> = [
        "$JS.API.>".to_string(),
        format!("$JS.ACK.{DLQ_STREAM}.>"),
        format!("$KV.{FAILURES_BUCKET}.>"),
        "tidings.dlq.>".to_string(),
    ]
    .into();
    for ty in types.keys() {
        publish.insert(format!("{ty}.>"));
    }
    let inbox = inbox_prefix(OPERATOR);
    UserPermissions {
        user: OPERATOR.to_string(),
        role: Role::Operator,
        subscribe: sorted(BTreeSet::from([format!("{inbox}.>")])),
        inbox_prefix: inbox,
        publish: sorted(publish),
    }
}

/// How a user proves who it is in the generated server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCredential {
    /// A password read by nats-server from this environment variable.
    PasswordEnv(String),
    /// A password written into the file (tests only).
    Password(String),
    /// A user NKey public key (`U...`).
    NKey(String),
}

/// The environment variable holding `user`'s password in generated
/// configurations: `TIDINGS_PASSWORD_<USER>` (upper case, `-` as `_`).
pub fn password_env(user: &str) -> String {
    let name: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("TIDINGS_PASSWORD_{name}")
}

/// A quoted string in nats-server's configuration syntax.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn list(items: &[String]) -> String {
    let lines: Vec<String> = items
        .iter()
        .map(|s| format!("          {}", quoted(s)))
        .collect();
    format!("[\n{}\n        ]", lines.join(",\n"))
}

/// The nats-server `authorization` block for these users, each with its
/// credential (`None`: a password from [`password_env`]).
pub fn server_config(users: &[(UserPermissions, Option<ServerCredential>)]) -> String {
    let mut out = String::from(
        "# Generated by `tidings permissions` from schemas/: least-privilege users.\n\
         # Each client must set its inbox prefix (NATS_INBOX_PREFIX=_INBOX_<user>).\n\
         authorization {\n  users = [\n",
    );
    for (user, credential) in users {
        let credential = credential
            .clone()
            .unwrap_or_else(|| ServerCredential::PasswordEnv(password_env(&user.user)));
        let who = match &credential {
            ServerCredential::PasswordEnv(var) => {
                format!("user: {}, password: ${var}", quoted(&user.user))
            }
            ServerCredential::Password(p) => {
                format!("user: {}, password: {}", quoted(&user.user), quoted(p))
            }
            ServerCredential::NKey(key) => format!("nkey: {}", quoted(key)),
        };
        out.push_str(&format!(
            "    # {}\n    {{\n      {who}\n      permissions: {{\n        publish: {{ allow: {} }}\n        subscribe: {{ allow: {} }}\n      }}\n    }}\n",
            describe(user),
            list(&user.publish.allow),
            list(&user.subscribe.allow),
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

fn describe(user: &UserPermissions) -> String {
    match &user.role {
        Role::Service { service } => format!("service {service} (user {})", user.user),
        Role::Reader { kind, organization } => {
            format!(
                "{kind} reader of organization {organization} (user {})",
                user.user
            )
        }
        Role::Operator => format!("operator (user {})", user.user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> BTreeMap<String, String> {
        [
            ("auth.user.created", "AUTH_EVENTS"),
            ("auth.user.updated", "AUTH_EVENTS"),
            ("catalog.product.created", "CATALOG_EVENTS"),
        ]
        .into_iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect()
    }

    fn config(text: &str) -> Config {
        Config::parse(text).expect("valid config")
    }

    #[test]
    fn a_service_publishes_its_types_and_consumes_through_its_groups() {
        let c = config("[services.catalog.groups]\ncatalog-users = [\"auth.user.created\"]\n");
        let p = service_permissions(&c, &types(), "catalog");
        let allow = &p.publish.allow;
        assert!(allow.contains(&"catalog.product.created.>".to_string()));
        assert!(!allow.iter().any(|s| s.starts_with("auth.")), "{allow:?}");
        for needed in [
            "$JS.API.CONSUMER.CREATE.AUTH_EVENTS.catalog-users",
            "$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.catalog-users",
            "$JS.ACK.AUTH_EVENTS.catalog-users.>",
            "dlq.catalog-users.>",
        ] {
            assert!(allow.contains(&needed.to_string()), "{needed}: {allow:?}");
        }
        assert!(!allow
            .iter()
            .any(|s| s.contains("PURGE") || s.contains("DELETE")));
        assert_eq!(p.subscribe.allow, ["_INBOX_catalog.>"]);
    }

    #[test]
    fn a_reader_creates_consumers_only_with_its_organization_in_the_subject() {
        let c = config("[readers.dashboard]\ntypes = [\"auth.user.created\"]\n");
        let p = reader_permissions(&c, &types(), "dashboard", "org-A").expect("valid");
        assert_eq!(p.user, "reader-dashboard-org-A");
        assert!(p.publish.allow.contains(
            &"$JS.API.CONSUMER.CREATE.AUTH_EVENTS.reader-dashboard-org-A-auth_user_created.auth.user.created.org-A.>"
                .to_string()
        ));
        assert!(p.publish.allow.iter().all(|s| s.starts_with("$JS.")));
        assert!(reader_permissions(&c, &types(), "dashboard", "org-A\u{200b}").is_err());
        assert!(reader_permissions(&c, &types(), "nobody", "org-A").is_err());
    }

    #[test]
    fn the_check_names_unknown_types_and_shared_groups() {
        let text = "[services.a.groups]\ng = [\"auth.user.gone\"]\n[services.b.groups]\ng = [\"auth.user.created\"]\n[readers.r]\ntypes = [\"x.y.z\"]\n";
        let findings = check(&config(text), text, &types());
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "access/unknown-type",
                "access/group-shared",
                "access/unknown-type"
            ],
            "{findings:#?}"
        );
        assert_eq!(findings[0].line, 2);
    }

    #[test]
    fn the_server_config_reads_passwords_from_the_environment() {
        let p = service_permissions(&Config::default(), &types(), "auth");
        let text = server_config(&[(p, None)]);
        assert!(text.contains("password: $TIDINGS_PASSWORD_AUTH"), "{text}");
        assert!(text.contains("\"auth.user.created.>\""), "{text}");
    }
}
