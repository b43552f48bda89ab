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
            for w in &s.workers {
                let error = w.last_error.as_deref().map(|e| format!(" · last error: {e}")).unwrap_or_default();
                println!(
                    "worker {:<13} {:<8} {} steps, {} failed, last took {} ms{error}",
                    w.name, w.state, w.steps, w.errors, w.last_step_ms
                );
            }
            for a in &s.set_aside {
                println!(
                    "set aside ({}):    file {} at index {}, {} attempts, next retry {}: {}",
                    a.consumer, a.file_id, a.index, a.attempts, a.next_retry_at, a.error
                );
            }
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

#[derive(clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    conn: Connection,
    /// Node data folders or storage element folders to read sidecars and chunks from (every
    /// node's, to find every replica).
    #[arg(long = "from", required = true, num_args = 1..)]
    from: Vec<std::path::PathBuf>,
    /// Commit even though the catalog already holds files (records with the same id are replaced).
    #[arg(long)]
    force: bool,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// `artstore recover --from DIR...`: rebuilds file records from sidecars and verified chunks
/// and commits them through the cluster.
pub async fn recover(args: RecoverArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    let client = args.conn.client()?;
    if !args.force {
        let existing = client.list_files("", 1).await?;
        if !existing.files.is_empty() {
            return Err(artstore_client::ClientError::Conflict {
                reason: "the catalog already holds files; recover refuses to overwrite it without --force".into(),
            }
            .into());
        }
    }
    let from = args.from.clone();
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template("reading sidecars [{bar:30}] {pos}/{len} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb
    });
    let pb = bar.clone();
    let rec = tokio::task::spawn_blocking(move || {
        artstore_actors::storage::recover::scan(&from, &move |done, total| {
            if let Some(pb) = &pb {
                pb.set_length(total);
                pb.set_position(done);
            }
        })
    })
    .await?
    .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if args.output == Output::Text {
        eprintln!(
            "{} elements, {} sidecars, {} chunk copies verified: {} files complete, {} incomplete",
            rec.elements.len(),
            rec.sidecars,
            rec.chunks_verified,
            rec.files.len(),
            rec.incomplete.len()
        );
    }
    let token = client.token().await?;
    let http = reqwest::Client::new();
    let mut committed = 0u64;
    let mut refused: Vec<crate::http::recover::RefusedRecord> = Vec::new();
    for batch in recover_batches(&rec.files) {
        let body = crate::http::recover::RecoverRequest { files: batch.to_vec(), overwrite: args.force };
        let mut last_err = None;
        let mut done = false;
        for url in client.urls() {
            match http.post(format!("{url}/api/v1/admin/recover")).bearer_auth(&token).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    let answer: crate::http::recover::RecoverResponse = r.json().await?;
                    committed += answer.recovered;
                    refused.extend(answer.refused);
                    done = true;
                    break;
                }
                Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                    let text = r.text().await.unwrap_or_default();
                    return Err(artstore_client::ClientError::Conflict { reason: text }.into());
                }
                // Every record of the batch judged unsafe (another node would judge them the
                // same): they are reported, and recovery goes on with the next batch. Any other
                // refusal stops it, saying what was committed.
                Ok(r) if r.status().is_client_error() => {
                    let (status, text) = (r.status(), r.text().await.unwrap_or_default());
                    let code = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
                    if status != reqwest::StatusCode::BAD_REQUEST || code.as_deref() != Some("invalid_record") {
                        anyhow::bail!(
                            "{url} refused a batch of {} records ({status}): {text}; {committed} records were \
                             committed before it",
                            batch.len()
                        );
                    }
                    refused.extend(batch.iter().map(|f| crate::http::recover::RefusedRecord {
                        id: f.id.clone(),
                        error: format!("{status}: {text}"),
                    }));
                    done = true;
                    break;
                }
                Ok(r) => last_err = Some(format!("{url}: {} {}", r.status(), r.text().await.unwrap_or_default())),
                Err(e) => last_err = Some(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(artstore_client::ClientError::Unavailable(last_err.unwrap_or_default()).into());
        }
    }
    if args.output == Output::Json {
        let out = serde_json::json!({
            "recovered": committed,
            "refused": refused,
            "incomplete": rec.incomplete,
            "sidecars": rec.sidecars,
            "chunks_verified": rec.chunks_verified,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("recovered {committed} files");
        for r in &refused {
            println!("refused: {} ({})", r.id, r.error);
        }
        for f in &rec.incomplete {
            if f.missing_chunks.is_empty() {
                println!("incomplete: {} {} (its sidecar lists no chunks)", f.id, f.name);
            } else {
                println!("incomplete: {} {} ({} chunks with no intact copy)", f.id, f.name, f.missing_chunks.len());
            }
        }
    }
    Ok(())
}

/// Records per recover request at most.
const RECOVER_BATCH_FILES: usize = 200;
/// JSON bytes of the records of one recover request: a batch closes once it reaches this, well
/// within one catalog entry ([`artstore_raft::MAX_ENTRY_BYTES`]; JSON is larger than the entry's
/// encoding), so a batch of records with large attributes is never refused as too large.
const RECOVER_BATCH_BYTES: usize = 1 << 20;

/// `files` in request-sized batches, in order, each at least one record.
fn recover_batches(files: &[artstore_raft::FileRecord]) -> Vec<&[artstore_raft::FileRecord]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let size = serde_json::to_vec(f).map(|v| v.len()).unwrap_or(RECOVER_BATCH_BYTES);
        if i > start && (i - start >= RECOVER_BATCH_FILES || bytes + size > RECOVER_BATCH_BYTES) {
            batches.push(&files[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < files.len() {
        batches.push(&files[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(attributes: usize) -> artstore_raft::FileRecord {
        artstore_raft::FileRecord {
            attributes_json: format!("{{\"a\":\"{}\"}}", "x".repeat(attributes)),
            ..Default::default()
        }
    }

    #[test]
    fn recover_batches_are_bounded_by_count_and_bytes_and_keep_every_record_in_order() {
        let small: Vec<_> = (0..450).map(|_| record(10)).collect();
        let sizes: Vec<usize> = recover_batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [200, 200, 50]);
        // Records of 60 KiB of attributes: 17 fit in 1 MiB of JSON.
        let large: Vec<_> = (0..40).map(|_| record(60 << 10)).collect();
        let batches = recover_batches(&large);
        assert!(batches.iter().all(|b| serde_json::to_vec(b).unwrap().len() <= RECOVER_BATCH_BYTES + 1024));
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 40);
        assert!(batches.len() >= 3, "{}", batches.len());
        // A record larger than a batch goes alone rather than being dropped.
        let huge = [record(10), record(2 << 20), record(10)];
        assert_eq!(recover_batches(&huge).iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 1, 1]);
        assert!(recover_batches(&[]).is_empty());
    }
}
