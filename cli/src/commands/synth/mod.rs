//! `synth`: synthetic data with planted structure, at any scale, and a model file for it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

mod feed;

/// Write a synthetic catalog and event log with planted taste groups (users mostly pick items of
/// their group, with a popularity skew), plus a model file over them.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder (created): items.csv, events.csv, model.yaml (and, for `feed`,
    /// impressions.csv, truth.csv, examination.csv).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    #[arg(long, default_value_t = 50_000)]
    users: usize,
    /// Events (for `feed`: impressions).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Taste groups; each item belongs to one, and so does each user (for `feed`: topics).
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// `groups`: users pick items of their taste group. `sequential`: each user walks chains,
    /// the next item mostly the fixed successor of the previous one (what only a sequence
    /// model can learn). `feed`: a news feed of known truth — pages shown by a logging policy
    /// with position bias, engagements (like, comment, share, hide) drawn from known
    /// probabilities, written beside the data for tests (the model never reads them).
    #[arg(long, value_enum, default_value_t = Shape::Groups)]
    shape: Shape,
    /// ALS iterations in the generated model file.
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Groups,
    Sequential,
    Feed,
}

/// Share of a sequential walk's steps that follow the planted successor (the rest jump to a
/// random item, skewed to popular ones).
const FOLLOW: u64 = 85;

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.items > 0 && args.users > 0 && args.groups > 0,
        "items, users and groups must be positive"
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if args.shape == Shape::Feed {
        return feed::write(&feed::FeedSpec {
            out: &args.out,
            items: args.items,
            users: args.users,
            impressions: args.events,
            topics: args.groups,
            seed: args.seed,
        });
    }
    let mut s = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let groups = args.groups.min(args.items);
    let genres = [
        "Drama",
        "Comedy",
        "Action",
        "Thriller",
        "Romance",
        "Horror",
        "Sci-Fi",
        "Documentary",
        "Animation",
        "Crime",
    ];
    let mut items = std::io::BufWriter::new(std::fs::File::create(args.out.join("items.csv"))?);
    writeln!(items, "item_id,group,genre,year,price")?;
    for i in 0..args.items {
        let g = i % groups;
        writeln!(
            items,
            "i{i},{g},{},{},{:.2}",
            genres[(g + i / groups) % genres.len()],
            1950 + next() % 75,
            (next() % 10_000) as f64 / 100.0
        )?;
    }
    items.flush()?;
    let per_group = args.items.div_ceil(groups);
    let mut events = std::io::BufWriter::new(std::fs::File::create(args.out.join("events.csv"))?);
    writeln!(events, "user_id,item_id,timestamp")?;
    let mut t = 1_600_000_000u64;
    if args.shape == Shape::Sequential {
        // A random successor for every item (a permutation, so every item has one and is one).
        let mut successor: Vec<usize> = (0..args.items).collect();
        for i in (1..successor.len()).rev() {
            successor.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let per_user = args.events.div_ceil(args.users);
        let random = |r: u64, s: u64| (r % args.items as u64).min(s % args.items as u64) as usize;
        for u in 0..args.users {
            let mut item = random(next(), next());
            for _ in 0..per_user {
                writeln!(events, "u{u},i{item},{t}")?;
                t += 1 + next() % 60;
                item = if next() % 100 < FOLLOW {
                    successor[item]
                } else {
                    random(next(), next())
                };
            }
        }
    }
    for e in 0..args.events * usize::from(args.shape == Shape::Groups) {
        let u = (next() % args.users as u64) as usize;
        let g = u % groups;
        // 80% in the user's group, skewed to its first items; 20% anywhere, skewed likewise.
        let item = if next() % 10 < 8 {
            let r = (next() % per_group as u64).min(next() % per_group as u64) as usize;
            (r * groups + g).min(args.items - 1)
        } else {
            (next() % args.items as u64).min(next() % args.items as u64) as usize
        };
        if e % 10 == 0 {
            t += 1 + next() % 60;
        }
        writeln!(events, "u{u},i{item},{t}")?;
    }
    events.flush()?;
    let structure = match args.shape {
        Shape::Groups => format!("in {groups} taste groups"),
        Shape::Sequential => format!("along planted successor chains ({FOLLOW}% follow)"),
        Shape::Feed => unreachable!("written above"),
    };
    let model = format!(
        "# Synthetic: {} items, {} users, {} events {structure} (feedctl synth).\n\
         model: {{name: synthetic, description: synthetic catalog with planted taste groups}}\n\
         connectors:\n  - {{id: events, type: file, path: events.csv}}\n  - {{id: items, type: file, path: items.csv}}\n\
         fetch:\n  events: SELECT user_id, item_id, timestamp FROM events\n  items: SELECT item_id, \"group\", genre, year, price FROM items\n\
         policies:\n  - {{name: popular, type: popular}}\n  - {{name: als, type: als, factors: 64, iterations: {}}}\n\
         training:\n  eval_users: 500\n\
         serving:\n  policy: als\n",
        args.items, args.users, args.events, args.iterations
    );
    std::fs::write(args.out.join("model.yaml"), model)?;
    println!(
        "wrote {} items, {} events and model.yaml to {}",
        args.items,
        args.events,
        args.out.display()
    );
    Ok(())
}
