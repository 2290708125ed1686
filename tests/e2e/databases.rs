//! Database connectors against real servers: the PostgreSQL and MariaDB that `scripts/databases`
//! starts on loopback (the test command runs it), with MovieLens-100K loaded into both, and the
//! same ratings as an SQLite file beside the CSV.

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// Where the servers listen and the test user's password, as `scripts/databases` exports them.
struct Servers {
    pg_port: String,
    mysql_port: String,
    password: String,
}

fn servers() -> Servers {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the database tests need the servers of scripts/databases; \
                 run `eval \"$(scripts/databases)\"` first (scripts/test does)"
            )
        })
    };
    Servers {
        pg_port: var("FEED_TEST_PG_PORT"),
        mysql_port: var("FEED_TEST_MYSQL_PORT"),
        password: var("FEED_TEST_DB_PASSWORD"),
    }
}

pub(crate) fn data_dir() -> String {
    let dir = repo_path("examples/movielens/data/ml-100k");
    for f in [
        "ratings.csv",
        "movies.csv",
        "movies.parquet",
        "movielens.sqlite",
    ] {
        assert!(
            Path::new(&format!("{dir}/{f}")).exists(),
            "{dir}/{f} is missing: run `scripts/databases` (scripts/test does)"
        );
    }
    std::fs::canonicalize(dir).unwrap().display().to_string()
}

/// A model over MovieLens-100K whose events join the `ratings` connector with the `movies`
/// connector. Rows are ordered in the SQL, so that every source gives the same split.
pub(crate) fn model(name: &str, ratings: &str, movies: &str) -> String {
    format!(
        r#"model: {{name: {name}}}
connectors:
  - {ratings}
  - {movies}
fetch:
  events: |
    SELECT r.user_id, r.item_id, r.timestamp,
           CASE WHEN r.rating >= 4 THEN 'like' WHEN r.rating <= 2 THEN 'hide' ELSE 'view' END AS event_type
    FROM ratings r JOIN movies m ON r.item_id = m.item_id
    ORDER BY r.timestamp, r.user_id, r.item_id
  items: SELECT item_id, title, year, genres FROM movies
policies:
  - {{name: popular, type: popular}}
  - {{name: als, type: als, factors: 32, iterations: 5}}
training: {{seed: 42}}
"#
    )
}

fn postgres(s: &Servers, extra: &str) -> String {
    format!(
        "{{id: ratings, type: postgres, host: 127.0.0.1, port: {}, database: movielens, user: feed, password: '${{FEED_DB_PASSWORD}}', tls: disable{extra}}}",
        s.pg_port
    )
}

fn mysql(s: &Servers, extra: &str) -> String {
    format!(
        "{{id: ratings, type: mysql, host: 127.0.0.1, port: {}, database: movielens, user: feed, password: '${{FEED_DB_PASSWORD}}', tls: disable{extra}}}",
        s.mysql_port
    )
}

/// feedctl in the workspace, reading data under `data` and given `password` in the
/// environment variable the model files name.
fn run(ws: &Workspace, data: &str, password: &str, args: &[&str]) -> Output {
    std::process::Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .args(args)
        .env("FEED_DATA_ROOTS", data)
        .env("FEED_DB_PASSWORD", password)
        .env("FEED_LOG", "debug")
        .output()
        .unwrap()
}

#[test]
fn database_tables_joined_with_parquet_train_the_models_of_the_csv_files() {
    let s = servers();
    let data = data_dir();
    let ws = Workspace::new();
    let csv_movies = format!("{{id: movies, type: file, path: {data}/movies.csv}}");
    let parquet_movies = format!("{{id: movies, type: file, path: {data}/movies.parquet}}");
    let models = [
        (
            "from_csv",
            format!("{{id: ratings, type: file, path: {data}/ratings.csv}}"),
            csv_movies,
        ),
        ("from_postgres", postgres(&s, ""), parquet_movies.clone()),
        ("from_mysql", mysql(&s, ""), parquet_movies.clone()),
        (
            "from_sqlite",
            format!("{{id: ratings, type: sqlite, path: {data}/movielens.sqlite}}"),
            parquet_movies,
        ),
    ];
    let mut views = Vec::new();
    let mut said = String::new();
    for (name, ratings, movies) in &models {
        let file = ws.write(&format!("{name}.yaml"), &model(name, ratings, movies));
        let out = run(
            &ws,
            &data,
            &s.password,
            &["create-model", "--file", file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{name}: {}", text(&out));
        said.push_str(&text(&out));
        views.push((name, ws.view_json(name)));
    }
    let (_, csv) = &views[0];
    assert_eq!(csv["metrics"]["users"], 943);
    for (name, view) in &views[1..] {
        assert_eq!(
            comparable_metrics(view),
            comparable_metrics(csv),
            "{name} differs from the CSV files"
        );
    }
    // The password reached the servers, and nothing Feed stored or printed (at debug level)
    // holds it: not the stored model files, the status logs, the training keys or the datasets.
    let stored = files_holding(&ws.home(), &s.password);
    assert!(stored.is_empty(), "the password is stored in {stored:?}");
    assert!(!said.contains(&s.password), "the password was printed");
    assert!(said.contains("registered"), "no debug log was read");
}

#[test]
fn database_failures_name_the_connector_and_the_field_and_never_the_secret() {
    let s = servers();
    let data = data_dir();
    let ws = Workspace::new();
    let movies = format!("{{id: movies, type: file, path: {data}/movies.parquet}}");
    let good = ws.write("good.yaml", &model("db", &postgres(&s, ""), &movies));
    let out = run(
        &ws,
        &data,
        &s.password,
        &["create-model", "--file", good.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));

    let wrong_password = "not-the-Pa55word";
    let cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
        (
            "wrong password",
            postgres(&s, ""),
            wrong_password,
            vec!["connectors[0].password", "password authentication failed"],
        ),
        (
            "wrong password (mysql)",
            mysql(&s, ""),
            wrong_password,
            vec!["connectors[0].password", "check `user`"],
        ),
        (
            "unreachable host",
            postgres(&s, "").replace(&format!("port: {}", s.pg_port), "port: 1"),
            &s.password,
            vec![
                "connectors[0].host",
                "127.0.0.1:1",
                "check `host` and `port`",
            ],
        ),
        (
            "missing table",
            postgres(&s, ", table: no_such_table"),
            &s.password,
            vec!["connectors[0].table", "no_such_table"],
        ),
        (
            "missing table (mysql)",
            mysql(&s, ", table: no_such_table"),
            &s.password,
            vec!["connectors[0].table", "no_such_table"],
        ),
        (
            "missing database",
            postgres(&s, "").replace("database: movielens", "database: no_such_db"),
            &s.password,
            vec!["connectors[0].database", "no_such_db"],
        ),
        (
            "missing database (mysql)",
            mysql(&s, "").replace("database: movielens", "database: no_such_db"),
            &s.password,
            vec!["connectors[0].database", "no_such_db"],
        ),
        (
            "encryption the server does not offer (mysql)",
            mysql(&s, "").replace("tls: disable", "tls: require"),
            &s.password,
            vec!["connectors[0].tls", "SSL"],
        ),
        (
            "password written in the file",
            postgres(&s, "").replace("'${FEED_DB_PASSWORD}'", wrong_password),
            &s.password,
            vec!["connectors[0].password", "must come from the environment"],
        ),
        (
            "unset variable",
            postgres(&s, "").replace("FEED_DB_PASSWORD", "FEED_NO_SUCH_VARIABLE"),
            &s.password,
            vec![
                "connectors[0].password",
                "`FEED_NO_SUCH_VARIABLE` is not set",
            ],
        ),
        (
            "missing sqlite file",
            format!("{{id: ratings, type: sqlite, path: {data}/no_such.sqlite}}"),
            &s.password,
            vec!["connectors[0].path", "no such database file"],
        ),
    ];
    for (what, ratings, password, pieces) in cases {
        let file = ws.write("bad.yaml", &model("db", &ratings, &movies));
        for command in ["validate", "update-model"] {
            let out = run(
                &ws,
                &data,
                password,
                &[command, "--file", file.to_str().unwrap()],
            );
            let pieces = [&["connector `ratings`"], &pieces[..]].concat();
            let secrets = [wrong_password, s.password.as_str()];
            assert_refused_without_secrets(&out, &format!("{what}, {command}"), &pieces, &secrets);
        }
    }
    // Nothing that was ACTIVE changed, and no failed version was kept.
    let view = ws.view_json("db");
    assert_eq!(view["active_version"], 1, "{view}");
    assert!(files_holding(&ws.home(), &s.password).is_empty());
    assert!(files_holding(&ws.home(), wrong_password).is_empty());
}
