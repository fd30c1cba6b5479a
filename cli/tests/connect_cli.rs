//! The connection flags every NATS command shares, and `tidings
//! permissions`: secrets stay hidden, a refused credential is one clear
//! error, the generated permissions parse.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use tidings::testing::NatsServer;

async fn tidings(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(args).env("NO_COLOR", "1");
    for var in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_NKEY",
        "NATS_CREDS",
        "NATS_CA",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_INBOX_PREFIX",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().await.unwrap()
}

#[tokio::test]
async fn help_shows_the_variables_but_never_a_secret() {
    let out = tidings(
        &["dlq", "ls", "--help"],
        &[
            ("NATS_PASSWORD", "hunter2-secret"),
            ("NATS_TOKEN", "tok-secret"),
            ("NATS_USER", "ops"),
        ],
    )
    .await;
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CA",
        "NATS_CERT",
        "NATS_KEY",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
    assert!(!help.contains("secret"), "{help}");
}

#[tokio::test]
async fn a_wrong_password_names_the_server_and_the_user_and_exits_2() -> anyhow::Result<()> {
    let server = NatsServer::builder()
        .extra_config("authorization { users = [ { user: \"ops\", password: \"right-one\" } ] }")
        .launch()
        .await?;
    let url = server.url();
    let out = tidings(
        &["dlq", "ls"],
        &[
            ("NATS_URL", url.as_str()),
            ("NATS_USER", "ops"),
            ("NATS_PASSWORD", "wrong-s3cret"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("NATS at {url} refused user \"ops\"")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // The right password gets past authentication (to the missing stream).
    let out = tidings(
        &["dlq", "ls", "--server", url.as_str(), "--user", "ops"],
        &[("NATS_PASSWORD", "right-one")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DLQ_EVENTS does not exist"), "{stderr}");
    // Two credentials at once are refused before connecting.
    let out = tidings(
        &[
            "dlq",
            "ls",
            "--token",
            "t",
            "--user",
            "u",
            "--password",
            "p",
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("give one credential"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn permissions_are_generated_from_the_registry() {
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let out = tidings(
        &[
            "permissions",
            "--schemas",
            schemas,
            "--format",
            "json",
            "--reader",
            "dashboard=org-A",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let users = json["users"].as_array().unwrap();
    let auth = users.iter().find(|u| u["user"] == "auth").unwrap();
    assert_eq!(auth["role"], "service");
    assert_eq!(auth["inbox_prefix"], "_INBOX_auth");
    let publish: Vec<&str> = auth["pub"]["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(publish.contains(&"auth.user.created.>"), "{publish:?}");
    assert!(
        !publish.iter().any(|s| s.starts_with("catalog.")),
        "{publish:?}"
    );
    let reader = users
        .iter()
        .find(|u| u["user"] == "reader-dashboard-org-A")
        .unwrap();
    assert_eq!(reader["organization"], "org-A");

    let out = tidings(
        &[
            "permissions",
            "--schemas",
            schemas,
            "--reader",
            "dashboard=org-A\u{200b}",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a subject token"));
    let out = tidings(&["permissions", "--schemas", schemas], &[]).await;
    let conf = String::from_utf8_lossy(&out.stdout);
    assert!(
        conf.contains("password: $TIDINGS_PASSWORD_ANALYTICS"),
        "{conf}"
    );
}

#[tokio::test]
async fn streams_apply_as_the_generated_operator_makes_the_streams_and_the_failures_bucket(
) -> anyhow::Result<()> {
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let out = tidings(&["permissions", "--schemas", schemas], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    // Every user's password from its variable, written in for the test.
    let conf: String = String::from_utf8(out.stdout)?
        .lines()
        .map(
            |line| match line.split_once("password: $TIDINGS_PASSWORD_") {
                Some((head, _)) => format!("{head}password: \"pw-test\"\n"),
                None => format!("{line}\n"),
            },
        )
        .collect();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("permissions.conf");
    std::fs::write(&path, conf)?;
    let server = NatsServer::builder().config_file(&path).launch().await?;
    let url = server.url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("NATS_USER", "operator"),
        ("NATS_PASSWORD", "pw-test"),
        ("NATS_INBOX_PREFIX", "_INBOX_operator"),
    ];
    let apply = ["streams", "apply", "--schemas", schemas, "--profile", "dev"];
    let out = tidings(&apply, &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("DLQ_EVENTS: create"), "{stdout}");
    assert!(stdout.contains("tidings_failures: present"), "{stdout}");
    let client = tidings::connect::ConnectOptions::new(&url)
        .user_password("operator", "pw-test")
        .inbox_prefix("_INBOX_operator")
        .connect()
        .await?;
    let js = async_nats::jetstream::new(client);
    let bucket = js.get_key_value(tidings::dlq::FAILURES_BUCKET).await?;
    let dlq = js
        .get_stream(tidings::dlq::DLQ_STREAM)
        .await?
        .cached_info()
        .config
        .clone();
    let status = bucket.status().await?;
    assert_eq!(
        status.max_age(),
        dlq.max_age,
        "kept as long as dead letters"
    );

    // Again: nothing to do; and `plan` agrees.
    let out = tidings(&apply, &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("DLQ_EVENTS: unchanged"), "{stdout}");
    let out = tidings(
        &["streams", "plan", "--schemas", schemas, "--profile", "dev"],
        &env,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Copies the repository's registry into `dir` with AUTH_EVENTS' retention
/// set to `kind`.
fn registry_with_auth_retention(dir: &std::path::Path, kind: &str) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let text = std::fs::read_to_string(repo.join("tidings.toml")).unwrap();
    let text = text.replacen(
        "subjects = [\"auth.>\"]",
        &format!("subjects = [\"auth.>\"]\nretention = \"{kind}\""),
        1,
    );
    std::fs::write(dir.join("tidings.toml"), text).unwrap();
}

#[tokio::test]
async fn a_retention_change_is_kept_back_until_consent_or_refused_for_a_work_queue(
) -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let url = server.url();
    let env = [("NATS_URL", url.as_str())];
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let apply = |schemas: &str, consent: bool| {
        let mut args = vec!["streams", "apply", "--schemas", schemas, "--profile", "dev"];
        if consent {
            args.push("--allow-data-loss");
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tidings(&args, &env).await;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(apply(repo, false)).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let dir = tempfile::tempdir()?;
    let schemas = dir.path().to_str().unwrap();
    registry_with_auth_retention(dir.path(), "interest");
    let (code, stdout, stderr) = run(apply(schemas, false)).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("AUTH_EVENTS: retention: server Limits -> config Interest (may delete stored events) (not applied)"),
        "{stdout}"
    );
    assert!(stderr.contains("re-run with --allow-data-loss"), "{stderr}");
    let (code, stdout, stderr) = run(apply(schemas, true)).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("AUTH_EVENTS: retention: server Limits -> config Interest"),
        "{stdout}"
    );

    registry_with_auth_retention(dir.path(), "workqueue");
    let (code, stdout, stderr) = run(apply(schemas, true)).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("AUTH_EVENTS: retention: server Interest -> config WorkQueue (cannot be changed in place"),
        "{stdout}"
    );
    assert!(
        stderr.contains("JetStream cannot change retention of an existing stream"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("re-run with --allow-data-loss"),
        "{stderr}"
    );
    Ok(())
}
