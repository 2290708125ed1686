//! `fetch.engine: ballista`: the fetch SQL runs on an Apache Ballista cluster (a scheduler and
//! two executors, each its own `feedctl cluster` process on loopback) and yields the dataset a
//! local fetch does, byte for byte, with ties in time ordered as in the file; a cluster that
//! cannot be used is refused at the field to fix.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::*;

/// A process stopped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `feedctl` with `args`, its log in `<name>.log` of the workspace.
fn spawn(ws: &Workspace, name: &str, args: &[&str]) -> Process {
    let log = std::fs::File::create(ws.path(&format!("{name}.log"))).unwrap();
    Process(
        ws.command()
            .args(args)
            .env("FEED_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The files under `dir` (relative path, bytes), sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The model file of `model_yaml` with its fetch on the cluster at `scheduler`.
fn on_cluster(name: &str, scheduler: &str) -> String {
    model_yaml(name, 3, 8).replace(
        "fetch:\n",
        // A bound on the wait, should the cluster lose its executors.
        &format!("fetch:\n  engine: ballista\n  scheduler: {scheduler}\n  timeout_seconds: 120\n"),
    )
}

#[test]
fn a_fetch_on_a_ballista_cluster_builds_the_dataset_of_a_local_fetch() {
    let ws = Workspace::new();
    let data = ws.path("data");
    Synth {
        users: 6000,
        items: 500,
        clusters: 10,
        events_per_user: 20,
        seed: 11,
    }
    .write(&data);
    // Times to the hour: many events of a user tie, so the order rows arrive in decides the
    // sequences and the split. About 3 MB: the file is read as several byte ranges.
    let ratings = std::fs::read_to_string(data.join("ratings.csv")).unwrap();
    let hourly: String = ratings
        .lines()
        .enumerate()
        .map(|(i, line)| match (i, line.rsplit_once(',')) {
            (0, _) | (_, None) => format!("{line}\n"),
            (_, Some((rest, t))) => {
                format!("{rest},{}\n", t.parse::<u64>().unwrap() / 7200 * 7200)
            }
        })
        .collect();
    std::fs::write(data.join("ratings.csv"), hourly).unwrap();
    assert!(std::fs::metadata(data.join("ratings.csv")).unwrap().len() > 2 << 20);

    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let _scheduler = spawn(
        &ws,
        "scheduler",
        &["cluster", "scheduler", "--bind", &address],
    );
    let executors: Vec<Process> = (0..2)
        .map(|k| {
            let work = ws.path(&format!("executor{k}"));
            std::fs::create_dir_all(&work).unwrap();
            spawn(
                &ws,
                &format!("executor{k}"),
                &[
                    "cluster",
                    "executor",
                    "--scheduler",
                    &address,
                    "--port",
                    &free_port().to_string(),
                    "--grpc-port",
                    &free_port().to_string(),
                    "--concurrent-tasks",
                    "2",
                    "--work-dir",
                    work.to_str().unwrap(),
                ],
            )
        })
        .collect();
    poll(Duration::from_secs(60), "the scheduler to listen", || {
        std::net::TcpStream::connect(&address)
            .map(drop)
            .map_err(|e| e.to_string())
    });

    let local = ws.write("local.yaml", &model_yaml("local", 3, 8));
    let cluster = ws.write(
        "cluster.yaml",
        &on_cluster("cluster", &format!("df://{address}")),
    );
    ws.ok(&["create-model", "--file", local.to_str().unwrap()]);
    let out = ws.feedctl(&["create-model", "--file", cluster.to_str().unwrap()]);
    if !out.status.success() {
        let logs: Vec<String> = ["scheduler", "executor0", "executor1"]
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(ws.path(&format!("{n}.log"))).unwrap();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "== {n}:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect();
        panic!(
            "create-model on the cluster failed:\n{}\n{}",
            text(&out),
            logs.join("\n")
        );
    }
    let dataset = |m: &str| {
        ws.home()
            .join(format!("models/{m}/versions/000001/dataset"))
    };
    let (a, b) = (files(&dataset("local")), files(&dataset("cluster")));
    assert!(
        a.len() >= 5,
        "{:?}",
        a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name_a, bytes_a), (name_b, bytes_b)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert!(bytes_a == bytes_b, "dataset/{name_a} differs");
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(
        comparable_metrics(&ws.view_json("cluster")),
        comparable_metrics(&ws.view_json("local"))
    );
    // A join merges partitions: it runs as one task on the cluster, and one partition here,
    // with the same result.
    let join = |text: String| {
        text.replace(
            "SELECT user_id, item_id, timestamp FROM ratings",
            "SELECT r.user_id, r.item_id, r.timestamp FROM ratings r JOIN items i ON r.item_id = i.item_id WHERE i.year > 1960",
        )
    };
    let local_join = ws.write("local_join.yaml", &join(model_yaml("local_join", 3, 8)));
    let cluster_join = ws.write(
        "cluster_join.yaml",
        &join(on_cluster("cluster_join", &format!("df://{address}"))),
    );
    ws.ok(&["create-model", "--file", local_join.to_str().unwrap()]);
    ws.ok(&["create-model", "--file", cluster_join.to_str().unwrap()]);
    let (a, b) = (
        files(&dataset("local_join")),
        files(&dataset("cluster_join")),
    );
    assert_eq!(a.len(), b.len());
    for ((name, bytes_a), (_, bytes_b)) in a.iter().zip(&b) {
        assert!(bytes_a == bytes_b, "joined dataset/{name} differs");
    }

    // The executors ran the job: their work folders hold its stage outputs.
    let worked = (0..2)
        .filter(|k| {
            std::fs::read_dir(ws.path(&format!("executor{k}")))
                .unwrap()
                .next()
                .is_some()
        })
        .count();
    assert!(worked >= 1, "no executor wrote anything");
    drop(executors);

    // What cannot be used is refused before anything runs.
    let silent = ws.write(
        "silent.yaml",
        &on_cluster("silent", &format!("df://127.0.0.1:{}", free_port())),
    );
    ws.refused(
        &["validate", "--file", silent.to_str().unwrap()],
        &[
            "fetch.scheduler",
            "no Ballista scheduler answers",
            "feedctl cluster scheduler",
        ],
    );
    let malformed = ws.write("malformed.yaml", &on_cluster("m", "df://nowhere"));
    ws.refused(
        &["validate", "--file", malformed.to_str().unwrap()],
        &[
            "fetch.scheduler",
            "not a scheduler address",
            "df://host:port",
        ],
    );
    let alone = ws.write(
        "alone.yaml",
        &model_yaml("m", 3, 8).replace("fetch:\n", "fetch:\n  engine: ballista\n"),
    );
    ws.refused(
        &["validate", "--file", alone.to_str().unwrap()],
        &["fetch.engine", "needs `fetch.scheduler`"],
    );
    let database = ws.write(
        "database.yaml",
        &on_cluster("m", &format!("df://{address}")).replace(
            "{id: ratings, type: file, path: data/ratings.csv}",
            "{id: ratings, type: postgres, host: 127.0.0.1, database: d, user: u, \
             password: '${PG_PASSWORD}', table: ratings}",
        ),
    );
    ws.refused(
        &["validate", "--file", database.to_str().unwrap()],
        &["connectors[0].type", "reads only `type: file` connectors"],
    );
    let bucket = ws.write(
        "bucket.yaml",
        &on_cluster("m", &format!("df://{address}")).replace(
            "path: data/ratings.csv",
            "path: 's3://feed-data/ml-100k/ratings.csv'",
        ),
    );
    ws.refused(
        &["validate", "--file", bucket.to_str().unwrap()],
        &["connectors[0].path", "not read on a Ballista cluster"],
    );
    assert_eq!(ws.view_json("local")["active_version"], 1);
}
