//! Start-up refuses bad configuration, naming the setting and never echoing a secret.

use std::process::Command;

fn serve(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.arg("serve")
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: [(&str, &str); 4] = [
    (
        "WARDEN_AUTH_HS256_SECRET",
        "a-perfectly-fine-secret-of-32-bytes-or-more",
    ),
    ("WARDEN_AUTH_ISSUER", "https://issuer.test"),
    ("WARDEN_AUTH_AUDIENCE", "warden"),
    ("WARDEN_LISTEN_ADDR", "127.0.0.1:0"),
];

fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = GOOD
        .iter()
        .copied()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .collect();
    env.extend(overrides.iter().copied().filter(|(_, v)| !v.is_empty()));
    env
}

#[test]
fn bad_settings_stop_start_up_and_are_named() {
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: [Case; 9] = [
        (
            "no key at all (and the issuer's discovery unreachable)",
            with(&[("WARDEN_AUTH_HS256_SECRET", "")]),
            "WARDEN_AUTH_HS256_SECRET",
        ),
        (
            "no issuer",
            with(&[("WARDEN_AUTH_ISSUER", "")]),
            "WARDEN_AUTH_ISSUER",
        ),
        (
            "no audience",
            with(&[("WARDEN_AUTH_AUDIENCE", "")]),
            "WARDEN_AUTH_AUDIENCE",
        ),
        (
            "database scheme",
            with(&[("WARDEN_DATABASE_URL", "mysql://root@localhost/x")]),
            "WARDEN_DATABASE_URL",
        ),
        (
            "unparsable listen address",
            with(&[("WARDEN_LISTEN_ADDR", "not-an-address")]),
            "listen_addr",
        ),
        (
            "unreadable key file",
            with(&[("WARDEN_AUTH_PUBLIC_KEY_FILES", "/nonexistent/key.pem")]),
            "WARDEN_AUTH_PUBLIC_KEY_FILES",
        ),
        (
            "bad duration",
            with(&[("WARDEN_LIMITS__RPC_TIMEOUT", "soon")]),
            "limits.rpc_timeout",
        ),
        (
            "unknown trace sampler",
            with(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]),
            "OTEL_TRACES_SAMPLER",
        ),
        (
            "sampler ratio above 1",
            with(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ]),
            "OTEL_TRACES_SAMPLER_ARG",
        ),
    ];
    for (description, env, setting) in cases {
        let (ok, stderr) = serve(&env, &[]);
        assert!(!ok, "{description}: must not start");
        assert!(
            stderr.contains(setting),
            "{description}: {stderr:?} must name {setting}"
        );
    }
}

#[test]
fn a_short_secret_is_refused_without_being_printed() {
    let (ok, stderr) = serve(
        &with(&[("WARDEN_AUTH_HS256_SECRET", "tiny-secret-value")]),
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("WARDEN_AUTH_HS256_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("tiny-secret-value"),
        "the secret leaked: {stderr}"
    );
}

#[test]
fn an_unknown_setting_in_the_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(
        &file,
        "listen_addr = \"127.0.0.1:0\"\nlisten_adress = \"typo\"\n",
    )
    .unwrap();
    let (ok, stderr) = serve(&GOOD, &["--config", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("listen_adress"), "{stderr}");
}

#[test]
fn kubernetes_service_variables_under_the_prefix_are_ignored() {
    // A Service named `warden` makes Kubernetes inject WARDEN_SERVICE_HOST, WARDEN_PORT, ...
    // `migrate` reads the same configuration and exits, so it shows the variables are harmless.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("migrate")
        .env_clear()
        .env("WARDEN_DATABASE_URL", &url)
        .env("WARDEN_SERVICE_HOST", "10.0.0.1")
        .env("WARDEN_PORT", "tcp://10.0.0.1:50051")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_standard_sampler_variables_are_read_as_the_environment_gives_them() {
    // `0.01` arrives from the environment as a number, `0` as an integer: both are ratios. A
    // server that reaches the database has read and validated its settings; the unreachable
    // database then stops it, named.
    for ratio in ["0.01", "0", "1"] {
        let (ok, stderr) = serve(
            &with(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", ratio),
                ("WARDEN_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
                ("WARDEN_DATABASE__CONNECT_TIMEOUT", "1s"),
            ]),
            &[],
        );
        assert!(!ok, "no database: must not start");
        assert!(!stderr.contains("OTEL_TRACES_SAMPLER"), "{ratio}: {stderr}");
        assert!(stderr.contains("WARDEN_DATABASE_URL"), "{ratio}: {stderr}");
    }
}
