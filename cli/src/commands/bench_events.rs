//! `bench-events`: live ingest and freshness against a running server, over its HTTP API as an
//! app would use it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use crate::output::table;

/// Measure live events against a running `feedctl serve`: durable events per second with
/// batches from several connections, the rate of one event per request, and freshness (from a
/// click's acknowledgement until `/query` no longer returns the item), p50/p99.
#[derive(Debug, Args)]
pub struct BenchEventsArgs {
    /// The server, `host:port`.
    #[arg(long)]
    addr: String,
    /// A model with an ACTIVE version.
    #[arg(long)]
    model_name: String,
    /// An event type the model accepts as an interaction.
    #[arg(long, default_value = "click")]
    event_type: String,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Batches per connection.
    #[arg(long, default_value_t = 50)]
    batches: usize,
    /// Connections posting at once.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Requests of one event each, per connection.
    #[arg(long, default_value_t = 500)]
    singles: usize,
    /// Clicks timed for freshness.
    #[arg(long, default_value_t = 200)]
    probes: usize,
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    addr: String,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            addr: addr.to_string(),
            reader: BufReader::new(stream),
        })
    }

    fn post(&mut self, path: &str, content_type: &str, body: &str) -> anyhow::Result<Value> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.contains(" 200 ") {
            bail!("{path}: {} {value}", status.trim());
        }
        Ok(value)
    }
}

fn events(user: &str, items: &[String], kind: &str) -> String {
    items
        .iter()
        .map(|i| json!({"user_id": user, "item_id": i, "type": kind}).to_string() + "\n")
        .collect()
}

const NDJSON: &str = "application/x-ndjson";

/// Runs `post` on `--clients` connections at once; the events it reports, and the seconds.
fn from_clients(
    args: &BenchEventsArgs,
    post: impl Fn(usize, &mut Client) -> anyhow::Result<usize> + Sync,
) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let total = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..args.clients)
            .map(|c| {
                let post = &post;
                scope.spawn(move || post(c, &mut Client::connect(&args.addr)?))
            })
            .collect();
        threads.into_iter().try_fold(0, |sum, t| {
            let n = t
                .join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??;
            anyhow::Ok(sum + n)
        })
    })?;
    Ok((total, started.elapsed().as_secs_f64()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(args: BenchEventsArgs) -> anyhow::Result<()> {
    let events_path = format!("/models/{}/events", args.model_name);
    let query_path = format!("/models/{}/query", args.model_name);
    let mut probe = Client::connect(&args.addr)?;
    let top = probe.post(
        &query_path,
        "application/json",
        &json!({"query": "SELECT * FROM popular(limit = 1000) LIMIT 1000"}).to_string(),
    )?;
    let items: Vec<String> = top["results"]
        .as_array()
        .context("the query returned no results")?
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    if items.is_empty() {
        bail!("model `{}` has no items", args.model_name);
    }
    let run_id = std::process::id();

    // Batches from several connections at once: what group commit is for.
    let (size, kind) = (args.batch_size, args.event_type.as_str());
    let (batched, batch_seconds) = from_clients(&args, |c, client| {
        let mut sent = 0;
        for b in 0..args.batches {
            let user = format!("bench-{run_id}-{c}-{b}");
            let batch: Vec<String> = (0..size).map(|k| items[k % items.len()].clone()).collect();
            let r = client.post(&events_path, NDJSON, &events(&user, &batch, kind))?;
            sent += r["accepted"].as_u64().unwrap_or(0) as usize;
        }
        Ok(sent)
    })?;
    // One event per request.
    let (singles, single_seconds) = from_clients(&args, |c, client| {
        let user = format!("single-{run_id}-{c}");
        for k in 0..args.singles {
            let one = std::slice::from_ref(&items[k % items.len()]);
            client.post(&events_path, NDJSON, &events(&user, one, kind))?;
        }
        Ok(args.singles)
    })?;

    // Freshness: a fresh user's top unseen item; click it; time until the query moves past it.
    let mut fresh = Vec::with_capacity(args.probes);
    let mut first_query = 0;
    for p in 0..args.probes {
        let user = format!("fresh-{run_id}-{p}");
        let query = json!({
            "query": "SELECT * FROM popular(limit = 2) WHERE NOT seen($user_id) LIMIT 1",
            "params": {"user_id": user},
        })
        .to_string();
        let top = |probe: &mut Client| -> anyhow::Result<String> {
            let r = probe.post(&query_path, "application/json", &query)?;
            Ok(r["results"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        };
        let item = top(&mut probe)?;
        probe.post(
            &events_path,
            NDJSON,
            &events(&user, std::slice::from_ref(&item), &args.event_type),
        )?;
        let acknowledged = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            if top(&mut probe)? != item {
                break;
            }
            if acknowledged.elapsed() > Duration::from_secs(10) {
                bail!("a click was not visible to /query after 10 s");
            }
        }
        first_query += usize::from(polls == 1);
        fresh.push(acknowledged.elapsed().as_secs_f64() * 1e3);
    }
    fresh.sort_by(f64::total_cmp);
    let rows = vec![
        vec![
            format!(
                "batches of {} from {} connections",
                args.batch_size, args.clients
            ),
            format!("{batched}"),
            format!("{:.0}", batched as f64 / batch_seconds),
        ],
        vec![
            format!("one event per request, {} connections", args.clients),
            format!("{singles}"),
            format!("{:.0}", singles as f64 / single_seconds),
        ],
    ];
    print!(
        "{}",
        table(&["durable ingest", "events", "events/s"], &rows)
    );
    println!(
        "freshness over {} clicks: p50 {:.2} ms, p99 {:.2} ms (acknowledgement to the first /query that no longer returns the item; {} of {} on the first query)",
        fresh.len(),
        percentile(&fresh, 0.5),
        percentile(&fresh, 0.99),
        first_query,
        fresh.len()
    );
    Ok(())
}
