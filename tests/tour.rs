//! The tour (examples/tour.rs) on a server running the users
//! `tidings permissions` generates from `schemas/`: the operator sets up,
//! `auth` publishes, `tour` runs the consumer groups, and no step needs
//! more than its user may do.
#[path = "../examples/tour.rs"]
#[allow(dead_code)]
mod tour;

use tidings::connect::ConnectOptions;
use tidings::testing::NatsServer;
use tidings_codegen::registry::access::{self, ServerCredential};
use tidings_codegen::registry::{load::load, Source};

fn password(user: &str) -> String {
    format!("pw-{user}-tour-only")
}

#[tokio::test]
async fn the_tour_runs_with_the_generated_permissions_and_no_violation() -> anyhow::Result<()> {
    let source = Source::from_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas"
    )))?;
    let loaded = load(&source);
    let users = access::permissions(&loaded.config, &access::event_streams(&loaded), &[])?;
    let with: Vec<_> = users
        .into_iter()
        .map(|u| {
            let credential = ServerCredential::Password(password(&u.user));
            (u, Some(credential))
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("permissions.conf");
    std::fs::write(&path, access::server_config(&with))?;
    let server = NatsServer::builder()
        .name("tidings-tour-secured")
        .config_file(&path)
        .launch()
        .await?;

    let operator = ConnectOptions::new(&server.url())
        .user_password(access::OPERATOR, password(access::OPERATOR))
        .inbox_prefix(access::inbox_prefix(access::OPERATOR));
    let credentials = tour::Credentials::users(operator, password("auth"), password("tour"));
    let metrics = {
        let free = std::net::TcpListener::bind("127.0.0.1:0")?;
        free.local_addr()?
    };
    tour::serve_metrics(metrics)?;
    tour::tour(&credentials, None).await?;

    // The metrics endpoint, scraped as Prometheus would (reqwest leaves
    // the choice of rustls' crypto provider to the process: ring, as
    // async-nats).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scrape = reqwest::get(format!("http://{metrics}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str, labels: &[&str]| -> f64 {
        scrape
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let created = r#"tidings_event_type="auth.user.created""#;
    assert_eq!(
        value(
            "messaging_client_sent_messages_total",
            &[created, r#"tidings_outcome="stored""#]
        ),
        2.0,
        "{scrape}"
    );
    let analytics = r#"messaging_consumer_group_name="tour-analytics""#;
    let billing = r#"messaging_consumer_group_name="tour-billing""#;
    assert_eq!(
        value("messaging_client_consumed_messages_total", &[analytics]),
        2.0,
        "{scrape}"
    );
    assert_eq!(
        value("tidings_consumer_acks_total", &[analytics]),
        2.0,
        "{scrape}"
    );
    assert_eq!(
        value(
            "tidings_handler_runs_total",
            &[billing, r#"tidings_outcome="failed""#]
        ),
        6.0,
        "{scrape}"
    );
    assert_eq!(
        value("tidings_consumer_dead_letters_total", &[billing]),
        2.0,
        "{scrape}"
    );
    // Two dead letters, one redriven.
    assert_eq!(
        value("tidings_dlq_depth", &[billing, created]),
        1.0,
        "{scrape}"
    );
    assert!(
        scrape.contains("# TYPE messaging_process_duration_seconds histogram"),
        "{scrape}"
    );

    let log = std::fs::read_to_string(server.log_path())?;
    let violations: Vec<&str> = log.lines().filter(|l| l.contains("Violation")).collect();
    assert!(violations.is_empty(), "{violations:#?}");
    Ok(())
}
