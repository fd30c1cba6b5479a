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
    tour::tour(&credentials, None).await?;

    let log = std::fs::read_to_string(server.log_path())?;
    let violations: Vec<&str> = log.lines().filter(|l| l.contains("Violation")).collect();
    assert!(violations.is_empty(), "{violations:#?}");
    Ok(())
}
