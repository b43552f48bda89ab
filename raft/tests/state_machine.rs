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

/// What openraft does with a snapshot between two nodes: the receiver begins receiving, the
/// sender's bytes are written into what it returned (in chunks, as the network would), and the
/// receiver installs it.
async fn transfer(
    snapshot: openraft::Snapshot<TypeConfig>,
    to: &mut StateMachineStore,
) -> Result<(), openraft::StorageError<u64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut from = snapshot.snapshot;
    let mut into = to.begin_receiving_snapshot().await?;
    let mut chunk = vec![0u8; 7];
    loop {
        let n = from.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        into.write_all(&chunk[..n]).await.unwrap();
    }
    to.install_snapshot(&snapshot.meta, into).await
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
            let snapshot_id = snapshot.meta.snapshot_id.clone();
            let b_dir = tempfile::tempdir().unwrap();
            {
                let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
                // Stale state on the receiver must be replaced, not merged.
                b.apply(entries(&[Command::SetSetting { key: "zz".into(), value: "stale".into() }])).await.unwrap();
                transfer(snapshot, &mut b).await.unwrap();
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
            prop_assert_eq!(current.meta.snapshot_id, snapshot_id);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    /// A snapshot is the catalog at the moment its builder was made, however many entries are
    /// applied while it is built (before its scan, during it, keys created, changed and deleted):
    /// installed elsewhere, it holds exactly the state of the first commands, and the receiver that
    /// then applies the rest of the log reaches the sender's state.
    #[test]
    fn a_snapshot_is_the_catalog_at_its_cut(
        first in proptest::collection::vec(command(), 0..40),
        during in proptest::collection::vec(command(), 0..40),
        wait in 0usize..3,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let all: Vec<Command> = first.iter().chain(&during).cloned().collect();
            let log = entries(&all);
            let a_dir = tempfile::tempdir().unwrap();
            let mut a = StateMachineStore::open(&Engine::open(a_dir.path()).unwrap()).unwrap();
            a.apply(log[..first.len()].to_vec()).await.unwrap();
            let mut builder = a.get_snapshot_builder().await;
            let build = tokio::spawn(async move {
                for _ in 0..wait {
                    tokio::task::yield_now().await;
                }
                builder.build_snapshot().await
            });
            for entry in &log[first.len()..] {
                a.apply(vec![entry.clone()]).await.unwrap();
                tokio::task::yield_now().await;
            }
            let snapshot = build.await.unwrap().unwrap();
            prop_assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), (!first.is_empty()).then_some(first.len() as u64));
            prop_assert_eq!(a.catalog().settings().unwrap(), model(&all));

            let b_dir = tempfile::tempdir().unwrap();
            let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
            transfer(snapshot, &mut b).await.unwrap();
            prop_assert_eq!(b.catalog().settings().unwrap(), model(&first));
            b.apply(log[first.len()..].to_vec()).await.unwrap();
            prop_assert_eq!(b.catalog().settings().unwrap(), model(&all));
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

fn file(id: &str) -> artstore_raft::FileRecord {
    artstore_raft::FileRecord {
        id: id.into(),
        name: format!("{id}.txt"),
        content_type: "text/plain".into(),
        size: 0,
        sha256: String::new(),
        chunk_size: 4096,
        chunks: Vec::new(),
        description: String::new(),
        tags: Vec::new(),
        attributes_json: "{}".into(),
        policy: artstore_raft::RetentionPolicy::Permanent,
        expires_at: None,
        retention_until: None,
        created_at: 1,
        created_by: "app".into(),
        updated_at: 1,
        version: 1,
        deleted_at: None,
    }
}

/// The change feed is kept for every subscriber (search index, sidecar keeper, and any that
/// subscribes later): it is pruned only below all of them, and a snapshot install keeps the
/// receiver's own cursors rather than the sender's.
#[tokio::test]
async fn the_change_feed_is_pruned_below_every_subscriber_and_cursors_stay_local() {
    let creates: Vec<Command> =
        (1..=6).map(|i| Command::CreateFile { file: file(&format!("f{i}")), idempotency: None }).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut a = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
    a.apply(entries(&creates)).await.unwrap();
    let catalog = a.catalog().clone();
    let (index, sidecars) = (catalog.subscribe("index").unwrap(), catalog.subscribe("sidecars").unwrap());
    let batch = index.next_batch(0, 100).unwrap();
    assert_eq!((batch.files.len(), batch.reached), (6, 6));
    let first_two = index.next_batch(0, 2).unwrap();
    assert_eq!((first_two.files.len(), first_two.reached), (2, 2), "a full batch stops at its last change");

    // The index is done up to 4, the sidecar keeper has not committed: nothing goes.
    assert_eq!(index.commit(4).unwrap(), 0);
    assert_eq!((catalog.change_floor().unwrap(), catalog.changes(0, 6, 100).unwrap().len()), (0, 6));
    // The keeper reaches 2: changes 1 and 2 go.
    assert_eq!(sidecars.commit(2).unwrap(), 2);
    assert_eq!(catalog.change_floor().unwrap(), 2);
    assert!(sidecars.behind(1).unwrap() && !sidecars.behind(2).unwrap());
    assert_eq!(catalog.changes(0, 6, 100).unwrap().first().map(|c| c.0), Some(3));
    // The keeper passes the index: the index now holds the feed at 4.
    assert_eq!(sidecars.commit(6).unwrap(), 2);
    assert_eq!(catalog.change_floor().unwrap(), 4);
    assert_eq!((index.cursor().unwrap(), sidecars.cursor().unwrap()), (4, 6));
    // A later subscriber starts at the floor and holds the feed there until it commits.
    let webhooks = catalog.subscribe("webhooks").unwrap();
    assert_eq!(webhooks.cursor().unwrap(), 4);
    assert_eq!(index.commit(6).unwrap(), 0);
    assert_eq!(webhooks.next_batch(webhooks.cursor().unwrap(), 100).unwrap().files.len(), 2);
    assert_eq!(webhooks.commit(6).unwrap(), 2);

    // A poison record is set aside, handed back once its backoff has passed, and forgotten.
    let aside = sidecars.set_aside("f5", 5, "disk said no").unwrap();
    assert_eq!((aside.attempts, sidecars.count_set_aside().unwrap()), (1, 1));
    assert!(sidecars.retries_due(10).unwrap().is_empty(), "not before its backoff");
    assert_eq!(index.count_set_aside().unwrap(), 0, "set-aside records are per subscriber");
    sidecars.retried("f5").unwrap();
    assert_eq!(sidecars.count_set_aside().unwrap(), 0);

    // A receiver that has consumed less keeps its own cursors through the install.
    let creates: Vec<Command> =
        (1..=6).map(|i| Command::CreateFile { file: file(&format!("g{i}")), idempotency: None }).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut a = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
    a.apply(entries(&creates)).await.unwrap();
    let (index, sidecars) = (a.catalog().subscribe("index").unwrap(), a.catalog().subscribe("sidecars").unwrap());
    index.commit(4).unwrap();
    sidecars.commit(6).unwrap();
    let snapshot = a.get_snapshot_builder().await.build_snapshot().await.unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut b = StateMachineStore::open(&Engine::open(b_dir.path()).unwrap()).unwrap();
    b.apply(entries(&creates[..1])).await.unwrap();
    b.catalog().subscribe("sidecars").unwrap().commit(1).unwrap();
    transfer(snapshot, &mut b).await.unwrap();
    let catalog = b.catalog();
    assert_eq!(catalog.change_floor().unwrap(), 4, "the sender's feed and floor arrive");
    // Below the floor: the keeper knows it must rewrite everything it holds.
    assert_eq!(catalog.change_cursor("sidecars").unwrap(), 1);
    assert!(catalog.subscribe("sidecars").unwrap().behind(1).unwrap());
    assert_eq!(catalog.change_cursor("index").unwrap(), 4, "never subscribed on this node: the floor");
    assert_eq!(catalog.changes(4, 6, 100).unwrap().len(), 2);
}

/// Revocations: by token, by account (widened, never narrowed, by a later one), refused for an
/// unknown account or an ambiguous request, and pruned once their tokens have expired.
#[tokio::test]
async fn revocations_name_their_tokens_and_are_pruned_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(&Engine::open(dir.path()).unwrap()).unwrap();
    let account = artstore_raft::ServiceAccount::new("app", vec![], String::new(), 0);
    let revoke = |jti: Option<&str>, client: Option<&str>, before: i64, until: i64| Command::RevokeTokens {
        jti: jti.map(Into::into),
        client_id: client.map(Into::into),
        issued_before: before,
        until,
    };
    let results = sm
        .apply(entries(&[
            Command::CreateAccount { account },
            revoke(Some("t1"), None, 0, 5_000),
            revoke(None, Some("app"), 2_000, 6_000),
            revoke(None, Some("app"), 1_000, 4_000),
            revoke(None, Some("nobody"), 1_000, 4_000),
            revoke(Some("t2"), Some("app"), 1_000, 4_000),
        ]))
        .await
        .unwrap();
    assert!(results[..4].iter().all(|r| r.rejected.is_none()), "{results:?}");
    assert!(results[4].rejected.is_some() && results[5].rejected.is_some(), "{results:?}");
    let c = sm.catalog();
    assert!(c.token_revoked("t1", "other", 9_999).unwrap());
    assert!(c.token_revoked("t9", "app", 1_999).unwrap(), "the later, narrower revocation did not narrow it");
    assert!(!c.token_revoked("t9", "app", 2_000).unwrap());
    assert!(!c.token_revoked("t9", "other", 0).unwrap());

    let pruned = |now: i64| {
        let mut e = entries(&[Command::PruneRevocations { now }]);
        e[0].log_id.index += 10 + now as u64;
        e
    };
    sm.apply(pruned(5_500)).await.unwrap();
    assert!(!c.token_revoked("t1", "other", 0).unwrap(), "the token revocation outlived its tokens");
    assert!(c.token_revoked("t9", "app", 0).unwrap(), "the account's revocation is kept until 6000");
    sm.apply(pruned(6_500)).await.unwrap();
    assert!(!c.token_revoked("t9", "app", 0).unwrap());
}
