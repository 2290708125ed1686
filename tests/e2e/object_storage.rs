//! `type: file` on S3: the moto server that `scripts/object-storage` starts on loopback (the test
//! command runs it), with IAM checks on, holding MovieLens-100K's ratings (CSV) and movies
//! (Parquet, under a prefix beside a `_SUCCESS` marker).

use std::process::Output;

use crate::databases::{data_dir, model};
use crate::support::*;

/// Where the server listens and the test user's credentials, as `scripts/object-storage`
/// exports them.
pub struct Store {
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

pub fn store() -> Store {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the object-storage tests need the S3 server of \
                 scripts/object-storage; run `eval \"$(scripts/object-storage)\"` first \
                 (scripts/test does)"
            )
        })
    };
    Store {
        endpoint: var("FEED_TEST_S3_ENDPOINT"),
        key_id: var("FEED_TEST_S3_KEY_ID"),
        secret: var("FEED_TEST_S3_SECRET"),
    }
}

/// The ratings on S3, signed with the connector's own `s3:` block.
fn ratings(path: &str, extra: &str) -> String {
    format!(
        "{{id: ratings, type: file, path: '{path}', s3: {{endpoint: '${{FEED_S3_ENDPOINT}}', \
         access_key_id: '${{FEED_S3_KEY_ID}}', secret_access_key: '${{FEED_S3_SECRET}}'{extra}}}}}"
    )
}

/// The movies on S3: a prefix of Parquet parts, signed with the `AWS_*` environment.
const MOVIES: &str =
    "{id: movies, type: file, path: 's3://feed-data/ml-100k/movies/', format: parquet}";

/// feedctl in the workspace with the credentials in the environment: `secret` for the block's
/// reference, the real ones in `AWS_*`.
fn run(ws: &Workspace, s: &Store, endpoint: &str, secret: &str, args: &[&str]) -> Output {
    std::process::Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .args(args)
        .env("FEED_DATA_ROOTS", data_dir())
        .env("FEED_S3_ENDPOINT", endpoint)
        .env("FEED_S3_KEY_ID", &s.key_id)
        .env("FEED_S3_SECRET", secret)
        .env("AWS_ENDPOINT_URL", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", &s.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret)
        .env("AWS_REGION", "us-east-1")
        .env("FEED_LOG", "debug")
        .output()
        .unwrap()
}

#[test]
fn objects_on_s3_train_the_models_of_the_local_files_and_the_secret_stays_out() {
    let s = store();
    let data = data_dir();
    let ws = Workspace::new();
    let csv = model(
        "from_csv",
        &format!("{{id: ratings, type: file, path: {data}/ratings.csv}}"),
        &format!("{{id: movies, type: file, path: {data}/movies.csv}}"),
    );
    let s3 = model(
        "from_s3",
        &ratings("s3://feed-data/ml-100k/ratings.csv", ""),
        MOVIES,
    );
    let mut said = String::new();
    for (name, text_) in [("from_csv", csv), ("from_s3", s3)] {
        let file = ws.write(&format!("{name}.yaml"), &text_);
        let out = run(
            &ws,
            &s,
            &s.endpoint,
            &s.secret,
            &["create-model", "--file", file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{name}: {}", text(&out));
        said.push_str(&text(&out));
    }
    let (csv, s3) = (ws.view_json("from_csv"), ws.view_json("from_s3"));
    assert_eq!(csv["metrics"]["users"], 943);
    assert_eq!(comparable_metrics(&s3), comparable_metrics(&csv));
    let stored = files_holding(&ws.home(), &s.secret);
    assert!(stored.is_empty(), "the secret is stored in {stored:?}");
    assert!(!said.contains(&s.secret), "the secret was printed");
    assert!(said.contains("registered"), "no debug log was read");
}

#[test]
fn storage_failures_name_the_connector_and_the_field_and_never_the_secret() {
    let s = store();
    let ws = Workspace::new();
    let good = ratings("s3://feed-data/ml-100k/ratings.csv", "");
    let file = ws.write("good.yaml", &model("lake", &good, MOVIES));
    let out = run(
        &ws,
        &s,
        &s.endpoint,
        &s.secret,
        &["create-model", "--file", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));

    let wrong = "not-the-secret-Key0";
    let endpoint = s.endpoint.as_str();
    let secret = s.secret.as_str();
    let cases: Vec<(&str, String, &str, &str, Vec<&str>)> = vec![
        (
            "wrong secret",
            good.clone(),
            endpoint,
            wrong,
            vec![
                "connectors[0].s3.secret_access_key",
                "SignatureDoesNotMatch",
            ],
        ),
        (
            "bucket without access",
            ratings("s3://feed-private/ratings.csv", ""),
            endpoint,
            secret,
            vec![
                "connectors[0].path",
                "AccessDenied",
                "may not read this bucket",
            ],
        ),
        (
            "missing key",
            ratings("s3://feed-data/ml-100k/no_such.csv", ""),
            endpoint,
            secret,
            vec!["connectors[0].path", "no object `ml-100k/no_such.csv`"],
        ),
        (
            "malformed URI",
            ratings("s3:///ml-100k/ratings.csv", ""),
            endpoint,
            secret,
            vec!["connectors[0].path", "names no bucket"],
        ),
        (
            "unsupported scheme",
            ratings("ftp://feed-data/ratings.csv", ""),
            endpoint,
            secret,
            vec!["connectors[0].path", "not a storage Feed reads"],
        ),
        (
            "unreachable endpoint",
            good.clone(),
            "http://127.0.0.1:1",
            secret,
            vec!["connectors[0].s3.endpoint", "check `s3.endpoint`"],
        ),
        (
            "secret written in the file",
            good.replace("'${FEED_S3_SECRET}'", wrong),
            endpoint,
            secret,
            vec![
                "connectors[0].s3.secret_access_key",
                "must come from the environment",
            ],
        ),
    ];
    for (what, ratings, endpoint, secret, pieces) in cases {
        let file = ws.write("bad.yaml", &model("lake", &ratings, MOVIES));
        for command in ["validate", "update-model"] {
            let out = run(
                &ws,
                &s,
                endpoint,
                secret,
                &[command, "--file", file.to_str().unwrap()],
            );
            let pieces = [&["connector `ratings`"], &pieces[..]].concat();
            let secrets = [wrong, s.secret.as_str()];
            assert_refused_without_secrets(&out, &format!("{what}, {command}"), &pieces, &secrets);
        }
    }
    let view = ws.view_json("lake");
    assert_eq!(view["active_version"], 1, "{view}");
    assert!(files_holding(&ws.home(), &s.secret).is_empty());
}
