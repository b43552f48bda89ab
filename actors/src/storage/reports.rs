//! The storage actor's control state: damaged replicas found by reads and not yet recorded in
//! the catalog. A read that finds a corrupt replica tells the actor; the actor proposes
//! `MarkReplicaDamaged` (which queues the replica for repair) once per replica, however many reads
//! find it while the proposal is in flight.
//!
//! Invariant: at most one proposal per (file, chunk, node) is in flight; a failed proposal is
//! forgotten, so the next read that finds the damage reports it again.

use artstore_raft::{Command, NodeId, RaftNode};

use crate::mailbox::{Actor, Handled, Mailbox, Reply, WeakMailbox};

type Damage = (String, String, NodeId);

pub(super) enum Message {
    /// A read found the replica of chunk `.1` of file `.0` on node `.2` corrupt.
    Damaged(Damage),
    /// The proposal for this replica finished (either way).
    Settled(Damage),
    /// Reports in flight.
    Pending(Reply<usize>),
}

pub(super) struct Reports {
    node: RaftNode,
    pending: std::collections::HashSet<Damage>,
    me: WeakMailbox<Message>,
}

impl Reports {
    pub(super) fn spawn(node: RaftNode) -> Mailbox<Message> {
        Mailbox::spawn_with(|me| Reports { node, pending: Default::default(), me })
    }
}

impl Actor for Reports {
    type Message = Message;
    const NAME: &'static str = "storage";

    async fn handle(&mut self, message: Message) -> Handled {
        match message {
            Message::Damaged(damage) => {
                if !self.pending.insert(damage.clone()) {
                    return Handled::Continue;
                }
                metrics::counter!("artstore_damaged_replicas_reported_total").increment(1);
                let (node, me) = (self.node.clone(), self.me.upgrade());
                // The proposal runs on its own task: the actor never waits on Raft.
                tokio::spawn(async move {
                    let (file, chunk, at) = damage.clone();
                    let command = Command::MarkReplicaDamaged { id: file.clone(), sha256: chunk.clone(), node_id: at };
                    match node.propose(command).await {
                        Ok(_) => tracing::warn!(%file, %chunk, node = at, "damaged replica queued for repair"),
                        Err(e) => {
                            tracing::error!(%file, %chunk, node = at, error = %e, "could not record a damaged replica")
                        }
                    }
                    if let Some(me) = me {
                        let _ = me.tell(Message::Settled(damage));
                    }
                });
            }
            Message::Settled(damage) => {
                self.pending.remove(&damage);
            }
            Message::Pending(reply) => {
                let _ = reply.send(self.pending.len());
            }
        }
        Handled::Continue
    }
}
