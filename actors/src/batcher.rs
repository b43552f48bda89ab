//! Group commit for file records: concurrent uploads' `CreateFile` commands share Raft entries
//! (`Command::Batch`), so a burst of small uploads costs a few log appends, replications and
//! applies instead of one each. A few batches are in flight at once; while they are, new commands
//! gather for the next one. A lone command is proposed as it is (no added latency).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use artstore_raft::{Command, CommandResult, Error, RaftNode};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Commands per entry at most.
const MAX_BATCH: usize = 128;
/// Encoded bytes of the commands of one entry at most, unless one command alone is larger (it is
/// proposed alone): a record of a file of many chunks is large, and an entry must cross the
/// cluster within a heartbeat.
const MAX_BATCH_BYTES: u64 = 1 << 20;
/// Entries in flight at once.
const IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<CommandResult, Error>>;

#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<(Command, Reply)>,
}

/// Commands that must not share an entry (they would read each other's writes): the same
/// idempotency key.
fn conflict_key(c: &Command) -> Option<(String, String)> {
    match c {
        Command::CreateFile { idempotency: Some((client, key)), .. } => Some((client.clone(), key.clone())),
        _ => None,
    }
}

/// How many bytes `c` takes in a log entry as the cluster transport encodes it.
fn encoded_len(c: &Command) -> u64 {
    bincode::serialized_size(c).unwrap_or(u64::MAX)
}

impl Batcher {
    pub fn spawn(node: RaftNode) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Command, Reply)>();
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut deferred: VecDeque<(Command, Reply)> = VecDeque::new();
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let first = match deferred.pop_front() {
                    Some(x) => x,
                    None => match rx.recv().await {
                        Some(x) => x,
                        None => return,
                    },
                };
                let mut keys = HashSet::new();
                keys.extend(conflict_key(&first.0));
                let mut bytes = encoded_len(&first.0);
                let mut items = vec![first];
                let mut still_deferred = VecDeque::new();
                while items.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                    let next = match deferred.pop_front() {
                        Some(x) => x,
                        None => match rx.try_recv() {
                            Ok(x) => x,
                            Err(_) => break,
                        },
                    };
                    let len = encoded_len(&next.0);
                    if bytes.saturating_add(len) > MAX_BATCH_BYTES {
                        // It opens the next entry: a batch never grows past the bound by one
                        // large record (an entry over `MAX_ENTRY_BYTES` is refused whole).
                        still_deferred.push_back(next);
                        break;
                    }
                    match conflict_key(&next.0) {
                        Some(k) if keys.contains(&k) => still_deferred.push_back(next),
                        key => {
                            keys.extend(key);
                            bytes += len;
                            items.push(next);
                        }
                    }
                }
                // Commands set aside go first next time: they came before what is still queued.
                still_deferred.append(&mut deferred);
                deferred = still_deferred;
                let node = node.clone();
                tokio::spawn(async move {
                    propose(&node, items).await;
                    drop(permit);
                });
            }
        });
        Self { tx }
    }

    /// Proposes `command` (possibly together with others) and returns its own result.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((command, tx)).map_err(|_| Error::Stopped("the proposal batcher stopped".into()))?;
        rx.await.map_err(|_| Error::Stopped("the proposal batcher stopped".into()))?
    }
}

async fn propose(node: &RaftNode, mut items: Vec<(Command, Reply)>) {
    if items.len() == 1 {
        let (command, reply) = items.remove(0);
        let _ = reply.send(node.propose(command).await);
        return;
    }
    metrics::histogram!("artstore_ingest_commit_batch_size").record(items.len() as f64);
    let (commands, replies): (Vec<Command>, Vec<Reply>) = items.into_iter().unzip();
    match node.propose(Command::Batch(commands)).await {
        Ok(r) if r.batch.len() == replies.len() => {
            for (reply, mut one) in replies.into_iter().zip(r.batch) {
                one.log_index = r.log_index;
                let _ = reply.send(Ok(one));
            }
        }
        Ok(r) => {
            let e = Error::Storage(format!("a batch of {} got {} results", replies.len(), r.batch.len()));
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
