//! `artstore repair status`, `artstore cluster drain`, and `artstore recover`.

use std::time::Duration;

use clap::Subcommand;

use super::{Connection, Output};

#[derive(Subcommand)]
pub enum RepairCommand {
    /// The repair queue, unreachable nodes, and the answering node's repair and scrub counters.
    Status {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

pub async fn run_repair(cmd: RepairCommand) -> anyhow::Result<()> {
    match cmd {
        RepairCommand::Status { conn, output } => {
            let s = conn.client()?.repair_status().await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!("node {} (leader {:?})", s.node_id, s.leader_id);
            println!("queued files:        {}", s.queued_files);
            println!("missing replicas:    {}", s.missing_replicas);
            for (n, secs) in &s.unreachable_nodes {
                println!("unreachable node:    {n} for {secs} s");
            }
            println!("chunks repaired:     {} ({} bytes) by this node", s.chunks_repaired, s.bytes_repaired);
            println!("unrecoverable:       {}", s.unrecoverable_chunks);
            println!("last repair pass:    {}", s.last_repair_pass.as_deref().unwrap_or("-"));
            let sc = &s.scrub;
            println!(
                "scrub:               {} · {} passes · {} chunks ({} bytes) checked · {} damaged · last finished {}{}",
                if sc.enabled { "on" } else { "off" },
                sc.passes,
                sc.chunks_checked,
                sc.bytes_checked,
                sc.damaged_found,
                sc.last_pass_finished.as_deref().unwrap_or("-"),
                if sc.running { " · running now" } else { "" }
            );
        }
    }
    Ok(())
}

/// `artstore cluster drain NODE`: start (or `--cancel`) draining, then follow it until the node
/// holds no replicas.
pub async fn drain(conn: Connection, node_id: u64, cancel: bool, no_wait: bool, output: Output) -> anyhow::Result<()> {
    let client = conn.client()?;
    let mut status = if cancel { client.cancel_drain(node_id).await? } else { client.drain_node(node_id).await? };
    if !cancel && !no_wait {
        let mut last = u64::MAX;
        while status.replicas_remaining > 0 {
            if status.replicas_remaining != last && output == Output::Text {
                eprintln!("node {node_id}: {} replicas still to move", status.replicas_remaining);
                last = status.replicas_remaining;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            status = client.drain_status(node_id).await?;
        }
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if cancel {
        println!("node {node_id} is no longer draining");
    } else if status.replicas_remaining == 0 {
        println!("node {node_id} holds no replicas; remove it with `artstore cluster remove {node_id}`");
    } else {
        println!("node {node_id} is draining: {} replicas still to move", status.replicas_remaining);
    }
    Ok(())
}
