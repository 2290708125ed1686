//! `promote`: the shadow version or an experiment's winning variant made ACTIVE.

use std::path::Path;

use clap::Args;
use feed_engine::lifecycle::{Candidate, Promoted};
use feed_engine::Registry;

/// Make the shadow version, or a variant of the ACTIVE version's experiment, what the model
/// serves. A version (the shadow, a `version:` variant) becomes ACTIVE as a rollback moves it;
/// a value model, saved query or the control becomes a new version made from ACTIVE's trained
/// artifacts, its model file the ACTIVE one's with the variant written in and the experiment
/// removed (printed, for your own file to follow).
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// Promote the shadow version.
    #[arg(long, required_unless_present = "variant", conflicts_with = "variant")]
    shadow: bool,
    /// The variant to promote.
    #[arg(long)]
    variant: Option<String>,
    /// Its experiment (needed only when two experiments have a variant of that name).
    #[arg(long, requires = "variant")]
    experiment: Option<String>,
    /// Move ACTIVE to a version (the shadow, a `version:` variant) even while another version
    /// is being made (it replaces the promoted one when it deploys).
    #[arg(long)]
    force: bool,
}

pub async fn run(home: &Path, args: PromoteArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    let candidate = match args.variant {
        Some(variant) => Candidate::Variant {
            experiment: args.experiment,
            variant,
        },
        None => Candidate::Shadow,
    };
    match feed_engine::lifecycle::promote(&registry, &args.model_name, candidate, args.force)
        .await?
    {
        Promoted::Moved(m) => println!(
            "model `{}`: ACTIVE moved from version {} to version {}",
            m.model, m.from, m.to
        ),
        Promoted::Made {
            from,
            version,
            status,
            text,
        } => {
            println!(
                "model `{}`: version {version} is {status}, made from version {from}'s trained artifacts with the variant written in",
                args.model_name
            );
            println!("its model file (make yours match before the next update-model):\n");
            print!("{text}");
        }
    }
    Ok(())
}
