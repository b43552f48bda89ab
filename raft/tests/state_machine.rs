//! Property tests of the state machine: applying commands is deterministic, and a snapshot built
//! on one node and installed on another reproduces the catalog exactly (what a lagging node relies
//! on), surviving a reopen of the engine.

use artstore_raft::store::engine::Engine;
use artstore_raft::store::StateMachineStore;
use artstore_raft::{Command, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    let key = "[a-c]{1,2}";
    prop_oneof![
        (key, "[a-z0-9]{0,8}").prop_map(|(key, value)| Command::SetSetting { key, value }),
        key.prop_map(|key| Command::DeleteSetting { key }),
    ]
}

fn entries(commands: &[Command]) -> Vec<openraft::Entry<TypeConfig>> {
    commands
        .iter()
        .enumerate()
        .map(|(i, c)| openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i as u64 + 1),
            payload: EntryPayload::Normal(c.clone()),
        })
        .collect()
}

fn model(commands: &[Command]) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for c in commands {
        match c {
            Command::SetSetting { key, value } => {
                m.insert(key.clone(), value.clone());
            }
            Command::DeleteSetting { key } => {
                m.remove(key);
            }
            other => unreachable!("the strategy generates only settings commands, not {other:?}"),
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn snapshots_reproduce_the_catalog(commands in proptest::collection::vec(command(), 0..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let a_dir = tempfile::tempdir().unwrap();
            let mut a = StateMachineStore::open(&Engine::open(a_dir.path()).unwrap()).unwrap();
            let results = a.apply(entries(&commands)).await.unwrap();
            prop_assert_eq!(results.len(), commands.len());
            prop_assert_eq!(a.catalog().settings().unwrap(), model(&commands));

            let snapshot = a.get_snapshot_builder().await.build_snapshot().await.unwrap();
            let b_dir = tempfile::tempdir().unwrap();
            {
                let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
                // Stale state on the receiver must be replaced, not merged.
                b.apply(entries(&[Command::SetSetting { key: "zz".into(), value: "stale".into() }])).await.unwrap();
                b.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
            }
            // sled's background flusher may hold the file lock a moment after the last handle drops.
            let mut reopened = Engine::open(b_dir.path());
            for _ in 0..100 {
                if reopened.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                reopened = Engine::open(b_dir.path());
            }
            let mut b = StateMachineStore::open(&reopened.unwrap()).unwrap();
            prop_assert_eq!(b.catalog().settings().unwrap(), model(&commands));
            let (applied, _) = b.applied_state().await.unwrap();
            prop_assert_eq!(applied.map(|l| l.index), (!commands.is_empty()).then_some(commands.len() as u64));
            let current = b.get_current_snapshot().await.unwrap().unwrap();
            prop_assert_eq!(current.meta.snapshot_id, snapshot.meta.snapshot_id);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]
    /// Commands grouped into `Command::Batch` entries leave the same catalog as one entry each,
    /// and every command gets its own result.
    #[test]
    fn batched_entries_apply_like_single_ones(commands in proptest::collection::vec(command(), 0..40), size in 1usize..6) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut sm = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
            let batches: Vec<Command> = commands.chunks(size).map(|c| Command::Batch(c.to_vec())).collect();
            let results = sm.apply(entries(&batches)).await.unwrap();
            prop_assert_eq!(results.iter().map(|r| r.batch.len()).sum::<usize>(), commands.len());
            prop_assert!(results.iter().flat_map(|r| &r.batch).all(|r| r.rejected.is_none()));
            prop_assert_eq!(sm.catalog().settings().unwrap(), model(&commands));
            Ok(())
        })?;
    }
}
