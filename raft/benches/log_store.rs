//! The Raft log's write path on today's engine (sled) against `raft-log`, a log store made for
//! Raft by openraft's author (append-only chunk files, one flush thread, group commit). Both take
//! the same entries, encoded as the log stores them today (JSON of a real `Entry`), and make them
//! durable the way the node does: appended, then one flush (fsync) for the group, waited for.
//!
//! Cases: one entry per flush (a leader under light load: openraft hands it its own entries one
//! at a time) and 16 entries per flush (a follower receiving a replication batch), with entries
//! of one file record (an upload at low concurrency) and of a `Command::Batch` of 32 records.
//! Reported per entry: wall time and the process's CPU time (all threads, from `/proc/self/stat`).
//!
//! `cargo bench -p artstore-raft --bench log_store`

use std::io;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_raft::store::engine::Engine;
use artstore_raft::{Command, TypeConfig};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use raft_log::api::raft_log_writer::RaftLogWriter;

#[path = "support/records.rs"]
mod records;
use records::record;
#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_time;

/// The types `raft-log` stores: (term, index) ids, the entry's JSON, (term, voted for) votes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct LogTypes;

impl raft_log::Types for LogTypes {
    type LogId = (u64, u64);
    type LogPayload = String;
    type Vote = (u64, u64);
    type UserData = String;
    type Callback = SyncSender<io::Result<()>>;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.1
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

/// The stored form of entry `index` holding `files` file records.
fn entry_json(index: u64, files: usize) -> String {
    let create = |n: u64| Command::CreateFile { file: record(n), idempotency: None };
    let command = match files {
        1 => create(index),
        n => Command::Batch((0..n as u64).map(|i| create(index * 1000 + i)).collect()),
    };
    let entry: openraft::Entry<TypeConfig> = openraft::Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(command),
    };
    serde_json::to_string(&entry).expect("an entry encodes")
}

/// A log under test: appends a group of entries and returns once they are durable.
trait Log {
    fn append_durably(&mut self, group: &[(u64, String)]);
}

/// Today's log: each entry inserted into tree `log` by big-endian index, one engine flush per group.
struct SledLog {
    engine: Engine,
    log: artstore_raft::store::engine::Tree,
}

impl Log for SledLog {
    fn append_durably(&mut self, group: &[(u64, String)]) {
        for (index, json) in group {
            self.log.insert(&index.to_be_bytes(), json.as_bytes()).expect("sled insert");
        }
        self.engine.flush().expect("sled flush");
    }
}

struct RaftLog {
    log: raft_log::RaftLog<LogTypes>,
}

impl Log for RaftLog {
    fn append_durably(&mut self, group: &[(u64, String)]) {
        self.log.append(group.iter().map(|(i, json)| ((1, *i), json.clone()))).expect("raft-log append");
        let (tx, rx) = sync_channel(1);
        self.log.flush(true, Some(tx)).expect("raft-log flush");
        rx.recv().expect("the flush answers").expect("raft-log flush");
    }
}

fn open(store: &str, dir: &std::path::Path) -> Box<dyn Log> {
    match store {
        "sled" => {
            let engine = Engine::open(&dir.join("raft")).expect("sled opens");
            let log = engine.tree("log").expect("tree log");
            Box::new(SledLog { engine, log })
        }
        _ => {
            let mut config = raft_log::Config::new(dir.join("raft-log").to_string_lossy());
            // Its flush thread waits up to 1 ms for more work by default; ours does not wait.
            config.wal.flush_batch_wait = Some(Duration::ZERO);
            let config = Arc::new(config);
            std::fs::create_dir_all(dir.join("raft-log")).expect("a folder");
            Box::new(RaftLog { log: raft_log::RaftLog::open(config).expect("raft-log opens") })
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks cases by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    println!("{:<34} {:>9} {:>13} {:>13} {:>9}", "case", "entries", "wall/entry", "cpu/entry", "MiB/s");
    for (files, per_flush, groups) in [(1usize, 1usize, 1500usize), (1, 16, 200), (32, 1, 600), (32, 16, 40)] {
        let templates: Vec<String> = (1..=per_flush as u64).map(|i| entry_json(i, files)).collect();
        let bytes: usize = templates.iter().map(String::len).sum();
        for store in ["sled", "raft-log"] {
            let name = format!("{store}/{files}-file entries/{per_flush} per flush");
            if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let dir = tempfile::tempdir().expect("a temporary folder");
            let mut log = open(store, dir.path());
            let mut next = 1u64;
            let group = |next: &mut u64| -> Vec<(u64, String)> {
                templates
                    .iter()
                    .map(|t| {
                        *next += 1;
                        (*next, t.clone())
                    })
                    .collect()
            };
            // Warm up (files created, caches filled), then measure.
            for _ in 0..groups / 10 {
                let g = group(&mut next);
                log.append_durably(&g);
            }
            let prepared: Vec<Vec<(u64, String)>> = (0..groups).map(|_| group(&mut next)).collect();
            let (cpu0, t0) = (cpu_time(), Instant::now());
            for g in &prepared {
                log.append_durably(g);
            }
            let (wall, cpu) = (t0.elapsed(), cpu_time().saturating_sub(cpu0));
            let entries = (groups * per_flush) as u32;
            println!(
                "{:<34} {:>9} {:>10.1} µs {:>10.1} µs {:>9.1}",
                name,
                entries,
                wall.as_secs_f64() * 1e6 / entries as f64,
                cpu.as_secs_f64() * 1e6 / entries as f64,
                (bytes * groups) as f64 / wall.as_secs_f64() / (1 << 20) as f64
            );
        }
    }
}
