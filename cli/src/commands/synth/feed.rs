//! `synth --shape feed`: a news feed whose truth is known.
//!
//! Authors write on a topic; items have an author, a topic, a hidden quality and an integrity
//! score (clickbait scores low: it draws likes, and hides). Users care about a few topics. A
//! logging policy (partly relevance, partly a favour to some items, partly noise) ranks 50
//! random candidates per request and shows the top 10; a user examines position `k` with
//! probability `k^-0.8` and then engages
//! with each head's true probability. The impressions, the engagement events, the catalog and
//! a model file go to the output folder, with the truth beside them for tests: every
//! (user, item) pair's probabilities (`truth.csv`) and the examination curve
//! (`examination.csv`). The model never reads those.

use std::io::Write;
use std::path::Path;

/// The heads, in the order of `truth.csv`, with the value weights of the generated model file.
pub const HEADS: [(&str, f64); 4] = [
    ("like", 1.0),
    ("comment", 15.0),
    ("share", 30.0),
    ("hide", -100.0),
];
/// Shown per request, and the candidates the logging policy ranks.
const PAGE: usize = 10;
const CANDIDATES: usize = 50;
/// `truth.csv` holds every pair up to this many.
const MAX_TRUTH_PAIRS: usize = 4_000_000;
/// The first impression's time and the span of the log.
const START: i64 = 1_767_225_600; // 2026-01-01
const DAYS: i64 = 28;

pub struct FeedSpec<'a> {
    pub out: &'a Path,
    pub items: usize,
    pub users: usize,
    pub impressions: usize,
    pub topics: usize,
    pub seed: u64,
}

/// SplitMix64: a small, seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

struct Item {
    author: usize,
    topic: usize,
    quality: f64,
    integrity: f64,
}

struct User {
    /// Interest per topic, summing to 1 over a few favourites.
    interest: Vec<f64>,
    propensity: f64,
}

/// The true probability of each head, had the user examined the item.
fn truth(u: &User, i: &Item) -> [f64; 4] {
    let r = u.interest[i.topic];
    let s = 4.0 * r + i.quality + u.propensity;
    let bait = 1.0 - i.integrity;
    [
        sigmoid(-3.0 + s + 0.8 * bait),
        sigmoid(-4.0 + 0.8 * s),
        sigmoid(-4.5 + 0.9 * s + 0.5 * i.quality),
        sigmoid(-4.0 - 1.5 * r + 3.5 * bait),
    ]
}

/// The probability of examining position `k` (1-based).
pub fn examination(k: usize) -> f64 {
    (k as f64).powf(-0.8)
}

pub fn write(spec: &FeedSpec<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(
        spec.items >= CANDIDATES,
        "a feed needs at least {CANDIDATES} items (the candidates of one request)"
    );
    let mut rng = Rng(spec.seed ^ 0xFEED);
    let topics = spec.topics.clamp(2, 1000);
    let authors = (spec.items / 20).max(2);
    let author_topic: Vec<usize> = (0..authors).map(|_| rng.below(topics)).collect();
    let author_quality: Vec<f64> = (0..authors).map(|_| 0.3 * rng.normal()).collect();
    let items: Vec<Item> = (0..spec.items)
        .map(|_| {
            let author = rng.below(authors);
            let topic = if rng.uniform() < 0.8 {
                author_topic[author]
            } else {
                rng.below(topics)
            };
            let integrity = if rng.uniform() < 0.15 {
                0.5 * rng.uniform()
            } else {
                0.8 + 0.2 * rng.uniform()
            };
            Item {
                author,
                topic,
                quality: author_quality[author] + 0.4 * rng.normal(),
                integrity,
            }
        })
        .collect();
    // The ranker behind the log favoured a tenth of the items (a deal, a bug), whatever their
    // worth: they are shown higher, so engagement counted without the position overrates them.
    // This is what position as a training input is for.
    let favoured: Vec<bool> = (0..spec.items).map(|_| rng.uniform() < 0.1).collect();
    let users: Vec<User> = (0..spec.users)
        .map(|_| {
            let mut interest = vec![0.0; topics];
            for (share, _) in [(0.6, 0), (0.25, 1), (0.15, 2)] {
                interest[rng.below(topics)] += share;
            }
            User {
                interest,
                propensity: 0.3 * rng.normal(),
            }
        })
        .collect();

    let file = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            spec.out.join(name),
        )?))
    };
    let mut out = file("items.csv")?;
    writeln!(out, "item_id,author,topic,integrity,created")?;
    for (i, it) in items.iter().enumerate() {
        let created = START - 86_400 * 7 + rng.below(86_400 * 7) as i64;
        writeln!(
            out,
            "i{i},a{},t{},{:.3},{created}",
            it.author, it.topic, it.integrity
        )?;
    }
    out.flush()?;

    let mut impressions = file("impressions.csv")?;
    writeln!(
        impressions,
        "request_id,user_id,item_id,timestamp,position,like,comment,share,hide"
    )?;
    let mut events = file("events.csv")?;
    writeln!(events, "user_id,item_id,timestamp,event_type")?;
    let requests = spec.impressions.div_ceil(PAGE);
    let mut times: Vec<i64> = (0..requests)
        .map(|_| START + rng.below((DAYS * 86_400) as usize) as i64)
        .collect();
    times.sort_unstable();
    let mut counts = [0usize; 4];
    let mut scored: Vec<(f64, usize)> = Vec::with_capacity(CANDIDATES);
    for (r, &t) in times.iter().enumerate() {
        // Active users come back more often: the smaller of two draws.
        let u = rng.below(spec.users).min(rng.below(spec.users));
        let user = &users[u];
        scored.clear();
        for _ in 0..CANDIDATES {
            let i = rng.below(spec.items);
            let it = &items[i];
            let favour = if favoured[i] { 3.0 } else { 0.0 };
            let logging = 1.5 * user.interest[it.topic] + 0.5 * it.quality + favour + rng.normal();
            scored.push((logging, i));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.dedup_by_key(|s| s.1);
        for (k, &(_, i)) in scored.iter().take(PAGE).enumerate() {
            let position = k + 1;
            let p = truth(user, &items[i]);
            let examined = rng.uniform() < examination(position);
            let mut labels = [0u8; 4];
            for h in 0..4 {
                if examined && rng.uniform() < p[h] {
                    labels[h] = 1;
                    counts[h] += 1;
                    let at = t + 1 + rng.below(600) as i64;
                    writeln!(events, "u{u},i{i},{at},{}", HEADS[h].0)?;
                }
            }
            writeln!(
                impressions,
                "r{r},u{u},i{i},{t},{position},{},{},{},{}",
                labels[0], labels[1], labels[2], labels[3]
            )?;
        }
    }
    impressions.flush()?;
    events.flush()?;

    let mut exam = file("examination.csv")?;
    writeln!(exam, "position,probability")?;
    for k in 1..=PAGE {
        writeln!(exam, "{k},{:.6}", examination(k))?;
    }
    exam.flush()?;
    let pairs = spec.users * spec.items;
    if pairs <= MAX_TRUTH_PAIRS {
        let mut t = file("truth.csv")?;
        writeln!(t, "user_id,item_id,like,comment,share,hide")?;
        for (u, user) in users.iter().enumerate() {
            for (i, it) in items.iter().enumerate() {
                let p = truth(user, it);
                writeln!(
                    t,
                    "u{u},i{i},{:.6},{:.6},{:.6},{:.6}",
                    p[0], p[1], p[2], p[3]
                )?;
            }
        }
        t.flush()?;
    }
    std::fs::write(spec.out.join("model.yaml"), model_file(spec))?;
    println!(
        "wrote {} items, {} users, {} impressions ({} requests; likes {}, comments {}, shares {}, hides {}) and model.yaml to {}{}",
        spec.items,
        spec.users,
        requests * PAGE.min(CANDIDATES),
        requests,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        spec.out.display(),
        if pairs <= MAX_TRUTH_PAIRS {
            ", with truth.csv"
        } else {
            "; no truth.csv (more than 4M user-item pairs)"
        }
    );
    Ok(())
}

/// The model file over the simulator's output: retrieval by ALS on engagements, a multi-task
/// ranker over impressions, value weights over its heads, an integrity demotion.
fn model_file(spec: &FeedSpec<'_>) -> String {
    let weights: Vec<String> = HEADS
        .iter()
        .map(|(h, w)| format!("ranker.{h}: {w}"))
        .collect();
    let header = format!(
        "# A news feed of known truth: {} items, {} users, {} impressions (feedctl synth --shape feed).\n",
        spec.items, spec.users, spec.impressions
    );
    header
        + &r#"model: {name: feed, description: a simulated news feed with engagement heads}
connectors:
  - {id: impressions, type: file, path: impressions.csv}
  - {id: events, type: file, path: events.csv}
  - {id: items, type: file, path: items.csv}
fetch:
  # Positive engagements train retrieval; hides are labels only.
  events: SELECT user_id, item_id, timestamp, event_type FROM events WHERE event_type <> 'hide'
  items: SELECT item_id, author, topic, integrity, 1.0 - integrity AS integrity_risk, created FROM items
  impressions: SELECT user_id, item_id, timestamp, position, request_id, "like", comment, share, hide FROM impressions
events:
  types: [like, comment, share, hide, impression]
policies:
  - {name: als, type: als, factors: 32, iterations: 10}
  - name: ranker
    type: multi_task
    heads:
      - {name: like, label: like}
      - {name: comment, label: comment}
      - {name: share, label: share}
      - {name: hide, label: hide}
    item_features: [author, topic, integrity]
    affinity: [topic, author]
    position: {column: position, serve_at: 1}
    # The simulator's engagement does not vary with the hour of day: no hour input.
    hour_of_day: false
    embedding: 8
    # Each id keeps what author, topic, integrity and the affinities cannot explain only where
    # its data insist (docs/benchmarks.md: the feed gains a point, and every training seed
    # earns at least 90% of the oracle's lift).
    id_l2: 0.3
    epochs: 20
    learning_rate_decay: 0.3
value_model:
  weights: {WEIGHTS}
  demotions: {integrity_risk: 0.5}
serving:
  policy: als
queries:
  feed: |
    SELECT * FROM similarity(embedding = 'als', encoder = 'user', user = $user_id, limit = 300),
                  popular(limit = 100)
    WHERE NOT seen($user_id)
    ORDER BY score(value_model)
    REORDER BY spacing(attribute = 'author', max_run = 1)
    LIMIT 20
"#
        .replace("{WEIGHTS}", &format!("{{{}}}", weights.join(", ")))
}
