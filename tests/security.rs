//! Least-privilege permissions on a real nats-server started with the
//! configuration `tidings permissions` generates from `schemas/`: what each
//! user can do, and what the server refuses.
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt as _;
use support::{fast_config, provision, registry_dir, take, UserCreated};
use tidings::connect::{ConnectError, ConnectOptions};
use tidings::dlq::{DlqFilter, DLQ_STREAM, FAILURES_BUCKET};
use tidings::testing::{eventually, NatsServer};
use tidings::{Event, PublishContext, Publisher, PublisherConfig, Subscriber};
use tidings_codegen::registry::access::{self, ServerCredential, UserPermissions};
use tidings_codegen::registry::{load::load, Source};
use tokio::sync::mpsc;

/// A server running the generated permissions, with every user's credential.
struct Secured {
    server: NatsServer,
    users: BTreeMap<String, UserPermissions>,
    /// The auth service signs in with an NKey; this is its seed.
    auth_seed: String,
    /// And its public key, which the server's log names it by.
    auth_public: String,
    _config_dir: tempfile::TempDir,
}

fn password(user: &str) -> String {
    format!("pw-{user}-not-for-production")
}

impl Secured {
    async fn start() -> anyhow::Result<Self> {
        let source = Source::from_dir(registry_dir())?;
        let loaded = load(&source);
        let readers = [
            ("dashboard".to_string(), "org-A".to_string()),
            ("dashboard".to_string(), "org-B".to_string()),
        ];
        let users = access::permissions(&loaded.config, &access::event_streams(&loaded), &readers)?;
        let auth_key = nkeys::KeyPair::new_user();
        let auth_seed = auth_key.seed()?;
        let with: Vec<_> = users
            .iter()
            .map(|u| {
                let credential = if u.user == "auth" {
                    ServerCredential::NKey(auth_key.public_key())
                } else {
                    ServerCredential::Password(password(&u.user))
                };
                (u.clone(), Some(credential))
            })
            .collect();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("permissions.conf");
        std::fs::write(&path, access::server_config(&with))?;
        let server = NatsServer::builder()
            .name("tidings-secured")
            .config_file(&path)
            .launch()
            .await?;
        let secured = Self {
            server,
            users: users.into_iter().map(|u| (u.user.clone(), u)).collect(),
            auth_seed,
            auth_public: auth_key.public_key(),
            _config_dir: dir,
        };
        // The operator provisions the streams and, with them, the failures
        // bucket.
        let js = secured.js("operator").await?;
        provision(&js, "dev").await?;
        anyhow::ensure!(
            js.get_key_value(FAILURES_BUCKET).await.is_ok(),
            "provisioning made no {FAILURES_BUCKET} bucket"
        );
        Ok(secured)
    }

    fn options(&self, user: &str) -> anyhow::Result<ConnectOptions> {
        let perms = self
            .users
            .get(user)
            .ok_or_else(|| anyhow::anyhow!("no user {user}"))?;
        let options = ConnectOptions::new(&self.server.url())
            .name(user)
            .inbox_prefix(perms.inbox_prefix.as_str());
        Ok(if user == "auth" {
            options.nkey_seed(self.auth_seed.as_str())
        } else {
            options.user_password(user, password(user))
        })
    }

    async fn client(&self, user: &str) -> anyhow::Result<async_nats::Client> {
        Ok(self.options(user)?.connect().await?)
    }

    /// A JetStream context that gives up on an unanswered request after a
    /// second: a refused publish is dropped by the server, never answered.
    async fn js(&self, user: &str) -> anyhow::Result<jetstream::Context> {
        let mut js = jetstream::new(self.client(user).await?);
        js.set_timeout(Duration::from_secs(1));
        Ok(js)
    }

    /// Waits until the server has logged refusing `user` to publish to
    /// `subject` (what the client cannot see: the server drops the message).
    async fn refused(&self, user: &str, subject: &str) -> anyhow::Result<()> {
        let path = self.server.log_path();
        let want_user = self.who(user);
        let want_subject = format!("Subject \"{subject}\"");
        eventually(
            "the server logs the refusal",
            Duration::from_secs(10),
            || {
                let path = path.clone();
                let (want_user, want_subject) = (want_user.clone(), want_subject.clone());
                async move {
                    let log = std::fs::read_to_string(&path)?;
                    if log.lines().any(|l| {
                        l.contains("Publish Violation")
                            && l.contains(&want_user)
                            && l.contains(&want_subject)
                    }) {
                        Ok(())
                    } else {
                        Err(std::io::Error::other(format!(
                            "no publish violation of {want_user} on {want_subject} yet"
                        )))
                    }
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Every permission violation the server logged for `user`.
    fn violations(&self, user: &str) -> anyhow::Result<Vec<String>> {
        let log = std::fs::read_to_string(self.server.log_path())?;
        let who = self.who(user);
        Ok(log
            .lines()
            .filter(|l| l.contains("Violation") && l.contains(&who))
            .map(str::to_string)
            .collect())
    }

    /// How the server's log names a user.
    fn who(&self, user: &str) -> String {
        // `[ERR] ... - "$G/user:analytics" - Publish Violation - Subject "..."`
        if user == "auth" {
            format!("/nkey:{}\"", self.auth_public)
        } else {
            format!("/user:{user}\"")
        }
    }

    async fn messages(&self, stream: &str) -> anyhow::Result<u64> {
        let js = self.js("operator").await?;
        Ok(js.get_stream(stream).await?.cached_info().state.messages)
    }
}

#[tokio::test]
async fn the_auth_service_publishes_auth_types_and_is_refused_catalog_types() -> anyhow::Result<()>
{
    let secured = Secured::start().await?;
    let client = secured.client("auth").await?;
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let published = publisher
        .publish(&PublishContext::new("org-A")?, &UserCreated::numbered(1))
        .await?;
    assert_eq!(published.subject, "auth.user.created.org-A.u-1");

    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(1));
    let subject = "catalog.product.created.org-A.p-1";
    let ack = js.publish(subject, "{}".into()).await?.await;
    assert!(ack.is_err(), "a catalog event was acknowledged: {ack:?}");
    secured.refused("auth", subject).await?;
    assert_eq!(secured.messages("CATALOG_EVENTS").await?, 0);
    assert_eq!(secured.messages("AUTH_EVENTS").await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_wrong_credential_is_one_clear_error_without_the_secret() -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let err = ConnectOptions::new(&secured.server.url())
        .user_password("analytics", "wrong-password-s3cret")
        .connect()
        .await
        .expect_err("a wrong password");
    let text = err.to_string();
    assert!(matches!(err, ConnectError::Refused { .. }), "{text}");
    assert!(text.contains(&secured.server.url()), "{text}");
    assert!(text.contains("user \"analytics\""), "{text}");
    assert!(
        text.to_lowercase().contains("authorization violation"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_tenant_reader_reads_its_organization_and_cannot_see_another() -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let publisher = Publisher::new(secured.client("auth").await?, PublisherConfig::default())?;
    publisher
        .publish(&PublishContext::new("org-A")?, &UserCreated::numbered(1))
        .await?;
    publisher
        .publish(&PublishContext::new("org-B")?, &UserCreated::numbered(2))
        .await?;

    let user = access::reader_user("dashboard", "org-A");
    let js = secured.js(&user).await?;
    let name = access::reader_consumer(&user, "auth.user.created");
    let pull = |filter: &str| consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: filter.to_string(),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    // Its own organization: one consumer, one message, acked.
    let mine = js
        .create_consumer_on_stream(pull("auth.user.created.org-A.>"), "AUTH_EVENTS")
        .await?;
    let mut batch = mine
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await?;
    let first = batch
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("no message for org-A"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(first.subject.as_str(), "auth.user.created.org-A.u-1");
    first.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(
        batch.next().await.is_none(),
        "a second message reached the org-A reader"
    );

    // The same consumer widened to organization B, or to every tenant.
    for filter in ["auth.user.created.org-B.>", "auth.user.created.>", ">"] {
        let result = js
            .create_consumer_on_stream(pull(filter), "AUTH_EVENTS")
            .await;
        assert!(result.is_err(), "{filter}: {result:?}");
    }
    // Its own organization in the request subject, another in the body:
    // the server checks that they agree.
    let request = serde_json::json!({
        "stream_name": "AUTH_EVENTS",
        "config": {"durable_name": name, "filter_subject": "auth.user.created.org-B.>", "ack_policy": "explicit"},
    });
    let subject = format!("$JS.API.CONSUMER.CREATE.AUTH_EVENTS.{name}.auth.user.created.org-A.>");
    let answer = js
        .client()
        .request(subject, request.to_string().into())
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload)?;
    assert!(answer.get("error").is_some(), "{answer}");
    // Organization B's reader's consumer, and reading messages by sequence.
    let theirs = access::reader_consumer(
        &access::reader_user("dashboard", "org-B"),
        "auth.user.created",
    );
    let other = consumer::pull::Config {
        durable_name: Some(theirs.clone()),
        filter_subject: "auth.user.created.org-B.>".into(),
        ..Default::default()
    };
    assert!(js
        .create_consumer_on_stream(other, "AUTH_EVENTS")
        .await
        .is_err());
    secured
        .refused(
            &user,
            &format!("$JS.API.CONSUMER.CREATE.AUTH_EVENTS.{theirs}.auth.user.created.org-B.>"),
        )
        .await?;
    let get = js
        .get_stream_no_info("AUTH_EVENTS")
        .await?
        .get_raw_message(2)
        .await;
    assert!(get.is_err(), "{get:?}");
    secured
        .refused(&user, "$JS.API.STREAM.MSG.GET.AUTH_EVENTS")
        .await?;

    // No tenant credential can put an event on the bus, of its own
    // organization or another.
    let mut raw = jetstream::new(js.client());
    raw.set_timeout(Duration::from_secs(1));
    for subject in ["auth.user.created.org-B.u-9", "auth.user.created.org-A.u-9"] {
        let ack = raw.publish(subject, "{}".into()).await?.await;
        assert!(ack.is_err(), "{subject}: {ack:?}");
        secured.refused(&user, subject).await?;
    }
    assert_eq!(secured.messages("AUTH_EVENTS").await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_consumer_group_works_end_to_end_with_only_its_generated_permissions(
) -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(
        secured.client("analytics").await?,
        "analytics",
        tidings::SubscriberConfig {
            max_deliveries: 2,
            ..fast_config()
        },
    )?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let id = event.payload.user_id.clone();
            let _ = tx.send((id.clone(), event.meta.delivery));
            match (id.as_str(), event.meta.delivery) {
                // Always fails: dead-lettered after two deliveries.
                ("u-1", _) => Err("the warehouse refused u-1".to_string()),
                // Reports progress, then fails once (a NAK), then succeeds.
                ("u-2", 1) => {
                    event.progress().await.map_err(|e| e.to_string())?;
                    Err("try again".to_string())
                }
                _ => Ok(()),
            }
        }
    });
    let running = subscriber.start().await?;
    let publisher = Publisher::new(secured.client("auth").await?, PublisherConfig::default())?;
    let ctx = PublishContext::new("org-A")?;
    for n in 1..=3 {
        publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
    }
    let mut got = take(&mut rx, 5).await?;
    got.sort();
    assert_eq!(
        got,
        [
            ("u-1".to_string(), 1),
            ("u-1".to_string(), 2),
            ("u-2".to_string(), 1),
            ("u-2".to_string(), 2),
            ("u-3".to_string(), 1)
        ]
    );
    let operator = secured.js("operator").await?;
    let dead = eventually("u-1 reaches the DLQ", Duration::from_secs(20), || async {
        let found = tidings::dlq::ops::list(&operator, &DlqFilter::default(), None).await?;
        if found.len() == 1 {
            Ok(found)
        } else {
            Err(anyhow::anyhow!("{} dead letters", found.len()))
        }
    })
    .await?;
    assert_eq!(dead[0].group(), Some("analytics"));
    assert_eq!(dead[0].record.clone()?.error, "the warehouse refused u-1");
    running.shutdown().await;
    let refused = secured.violations("analytics")?;
    assert!(refused.is_empty(), "the group needed more: {refused:#?}");
    Ok(())
}

#[tokio::test]
async fn a_service_cannot_list_purge_or_redrive_the_dlq() -> anyhow::Result<()> {
    let secured = Secured::start().await?;
    let js = secured.js("analytics").await?;
    let listed = tidings::dlq::ops::list(&js, &DlqFilter::default(), None).await;
    assert!(listed.is_err(), "{listed:?}");
    let purged = js.get_stream_no_info(DLQ_STREAM).await?.purge().await;
    assert!(purged.is_err(), "{purged:?}");
    secured
        .refused("analytics", &format!("$JS.API.STREAM.PURGE.{DLQ_STREAM}"))
        .await?;
    let deleted = js
        .get_stream_no_info(DLQ_STREAM)
        .await?
        .delete_message(1)
        .await;
    assert!(deleted.is_err(), "{deleted:?}");
    // Another group's dead letters: neither written nor read.
    let mut raw = jetstream::new(js.client());
    raw.set_timeout(Duration::from_secs(1));
    let subject = "dlq.ddmrp-planning.auth.user.created.org-A.1";
    assert!(raw.publish(subject, "{}".into()).await?.await.is_err());
    secured.refused("analytics", subject).await?;
    Ok(())
}

/// A test CA and, signed by it, a server certificate for 127.0.0.1 and a
/// client certificate, as PEM files.
struct Pki {
    ca: std::path::PathBuf,
    server: (std::path::PathBuf, std::path::PathBuf),
    client: (std::path::PathBuf, std::path::PathBuf),
}

fn pki(dir: &std::path::Path) -> anyhow::Result<Pki> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tidings test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let write = |name: &str, text: String| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let leaf = |name: &str,
                sans: Vec<String>,
                usage: ExtendedKeyUsagePurpose|
     -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca)?;
        Ok((
            write(&format!("{name}.pem"), cert.pem())?,
            write(&format!("{name}-key.pem"), key.serialize_pem())?,
        ))
    };
    Ok(Pki {
        ca: write("ca.pem", ca.pem())?,
        server: leaf(
            "server",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?,
        client: leaf("client", vec![], ExtendedKeyUsagePurpose::ClientAuth)?,
    })
}

/// Connects, publishes and flushes: the connection works.
async fn round_trip(options: &ConnectOptions) -> anyhow::Result<()> {
    let client = options.connect().await?;
    client.publish("tidings.tls.check", "ok".into()).await?;
    client.flush().await?;
    Ok(())
}

#[tokio::test]
async fn tls_needs_the_test_ca_and_mtls_the_client_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = pki(dir.path())?;
    let tls = |verify: bool| {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n}}",
            pki.server.0.display(),
            pki.server.1.display(),
            pki.ca.display()
        )
    };
    // TLS: the server's certificate is trusted only through the test CA.
    let server = NatsServer::builder()
        .extra_config(tls(false))
        .launch()
        .await?;
    let plain = ConnectOptions::new(&server.url());
    let err = plain.connect().await.expect_err("an unknown CA");
    assert!(matches!(err, ConnectError::Tls { .. }), "{err}");
    assert!(err.to_string().contains(&server.url()), "{err}");
    round_trip(&plain.clone().ca_file(&pki.ca)).await?;

    // mTLS: the CA alone is not enough; the client certificate is.
    let server = NatsServer::builder()
        .extra_config(tls(true))
        .launch()
        .await?;
    let with_ca = ConnectOptions::new(&server.url()).ca_file(&pki.ca);
    let err = with_ca.connect().await.expect_err("no client certificate");
    assert!(
        matches!(
            err,
            ConnectError::Tls { .. } | ConnectError::Unreachable { .. }
        ),
        "{err}"
    );
    round_trip(&with_ca.client_cert(&pki.client.0, &pki.client.1)).await?;
    Ok(())
}
