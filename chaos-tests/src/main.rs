//! `artstore-chaos`: runs chaos scenarios against real `artstore` nodes and prints the verdict.
//!
//! ```text
//! artstore-chaos run                          # every scenario, short profile
//! artstore-chaos run --scenario isolated-leader --soak --out chaos-report
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use artstore_chaos::report;
use artstore_chaos::scenario::{find_artstore_bin, run_all, Profile, RunOptions, Scenario};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "artstore-chaos", about = "Fault injection and a history checker for ArtStore")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios; exits 1 if any acknowledged upload was lost or any promise broken.
    Run {
        /// Scenarios to run (default: all). One of: leader-kill-loop, minority-partition,
        /// isolated-leader, asymmetric-partition, rolling-restart, lossy-network, paused-leader,
        /// membership-during-partition, wipe-and-rejoin, wide-area.
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
        /// Long faults and many rounds instead of the few-minute profile.
        #[arg(long)]
        soak: bool,
        /// Concurrent clients.
        #[arg(long, default_value_t = 6)]
        workers: usize,
        /// Folder for the histories (JSONL), report.json and the PNG timelines.
        #[arg(long, default_value = "chaos-report")]
        out: PathBuf,
        /// The `artstore` binary (default: next to this one, or ARTSTORE_BIN).
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Also run the network-namespace scenario (needs root; says why when it cannot).
        #[arg(long)]
        netns: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Run { scenarios, soak, workers, out, bin, netns } = Cli::parse().command;
    let mut scenarios: Vec<Scenario> = if scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        scenarios
            .iter()
            .map(|s| Scenario::parse(s).with_context(|| format!("--scenario: unknown scenario {s:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    if netns {
        match artstore_chaos::netns::unavailable() {
            None => scenarios.push(Scenario::NetnsPartition),
            Some(why) => eprintln!("skipping the network-namespace scenario: {why}"),
        }
    }
    let bin = bin.or_else(find_artstore_bin).context("--bin: cannot find the artstore binary; pass --bin")?;
    let opts = RunOptions {
        bin,
        profile: if soak { Profile::Soak } else { Profile::Short },
        workers,
        replication: None,
        node_env: Vec::new(),
        out: Some(out.clone()),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("--out: {}", out.display()))?;
    let results = run_all(&scenarios, &opts).await;
    let mut reports = Vec::new();
    let mut bad = false;
    for r in results {
        match r {
            Ok(r) => {
                bad |= r.violations > 0;
                reports.push(r);
            }
            Err((name, e)) => {
                bad = true;
                eprintln!("scenario {name} could not run: {e}");
            }
        }
    }
    report::print_table(&reports);
    for r in reports.iter().filter(|r| r.violations > 0) {
        eprintln!("{}: {}", r.scenario, serde_json::to_string_pretty(&r.verdict)?);
    }
    for line in report::broken_bounds(&reports) {
        bad = true;
        eprintln!("availability: {line}");
    }
    report::write_json(&reports, &out.join("report.json"))?;
    eprintln!("histories, report.json and timelines in {}", out.display());
    if bad {
        std::process::exit(1);
    }
    Ok(())
}
