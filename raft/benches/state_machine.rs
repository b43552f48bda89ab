//! The Raft state machine applying committed entries to the catalog, on a real engine (sled) in a
//! temporary folder and without a Raft node around it: file records committed one per entry,
//! 32 single-file entries handed over in one call (as openraft does when several are committed
//! at once), and `Command::Batch` entries of 32 and 128 files (the proposer's group commit).
//! Every record is a 4 KiB upload with one chunk on three nodes; each iteration creates new ones,
//! so the catalog grows as it does in service. Nothing is flushed: durability comes from the log.
//!
//! `cargo bench -p artstore-raft --bench state_machine`

use artstore_raft::store::engine::Engine;
use artstore_raft::store::StateMachineStore;
use artstore_raft::{Command, TypeConfig};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId};

#[path = "support/records.rs"]
mod records;
use records::record;

/// Log positions and file numbers, continuing across iterations.
#[derive(Default)]
struct Sequence {
    index: u64,
    file: u64,
}

impl Sequence {
    fn create_file(&mut self) -> Command {
        self.file += 1;
        Command::CreateFile { file: record(self.file), idempotency: None }
    }

    fn entry(&mut self, command: Command) -> openraft::Entry<TypeConfig> {
        self.index += 1;
        openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(command),
        }
    }

    /// `entries` entries of `per_entry` files each (a `Command::Batch` when more than one).
    fn entries(&mut self, entries: usize, per_entry: usize) -> Vec<openraft::Entry<TypeConfig>> {
        (0..entries)
            .map(|_| {
                let command = match per_entry {
                    1 => self.create_file(),
                    n => Command::Batch((0..n).map(|_| self.create_file()).collect()),
                };
                self.entry(command)
            })
            .collect()
    }
}

fn apply(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let engine = Engine::open(dir.path()).expect("the engine opens");
    let mut sm = StateMachineStore::open(&engine).expect("the state machine opens");
    let mut seq = Sequence::default();
    // What is measured is the success path: every record new, none refused.
    let first = runtime.block_on(sm.apply(seq.entries(1, 4))).expect("entries apply");
    assert!(first[0].batch.iter().all(|r| r.rejected.is_none() && r.existing.is_none()), "{first:?}");

    let mut g = c.benchmark_group("state_machine_apply");
    for (name, entries, per_entry) in
        [("entry_per_file", 1, 1), ("entries_per_call", 32, 1), ("batch", 1, 32), ("batch", 1, 128)]
    {
        let files = entries * per_entry;
        g.throughput(Throughput::Elements(files as u64));
        g.bench_function(BenchmarkId::new(name, files), |b| {
            b.iter_batched(
                || seq.entries(entries, per_entry),
                |batch| runtime.block_on(sm.apply(batch)).expect("entries apply"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
