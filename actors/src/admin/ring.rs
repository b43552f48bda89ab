//! The admin actor's control state: the key ring, the catalog's signing keys decoded once into
//! what signs and verifies tokens. The actor is its only writer and publishes every new ring
//! through a `watch` channel, so validating a token (every request) reads it without a round
//! trip; a reader that finds it older than [`RING_REFRESH`], or that met a key it does not know
//! (rotated in on another node a moment ago), asks the actor to look at the catalog again.
//!
//! Invariant: a ring is rebuilt only when the catalog's keys changed (their fingerprint), and
//! the published ring is never older than what the last refresh saw.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artstore_raft::RaftNode;
use tokio::sync::watch;

use super::keys::{self, KeyRing};
use crate::mailbox::{Actor, Handled, Mailbox, Reply};
use crate::AdminError;

/// How long a published ring is used before the catalog is looked at again.
pub(super) const RING_REFRESH: Duration = Duration::from_millis(500);

/// A ring and when the catalog was last compared with it.
pub(super) type Published = (Instant, Arc<KeyRing>);

pub(super) enum Message {
    /// Look at the catalog's keys if the ring is older than `RING_REFRESH` (or at once with
    /// `force`), publish, and answer with the ring now current.
    Refresh { force: bool, reply: Option<Reply<Result<Arc<KeyRing>, AdminError>>> },
}

pub(super) struct RingKeeper {
    node: RaftNode,
    published: watch::Sender<Published>,
}

impl RingKeeper {
    /// Starts the keeper; the receiver is how readers see the ring.
    pub(super) fn spawn(node: RaftNode) -> (Mailbox<Message>, watch::Receiver<Published>) {
        let stale = Instant::now().checked_sub(RING_REFRESH * 2).unwrap_or_else(Instant::now);
        let (published, ring) = watch::channel((stale, Arc::new(KeyRing::default())));
        (Mailbox::spawn(RingKeeper { node, published }), ring)
    }

    fn refresh(&self, force: bool) -> Result<Arc<KeyRing>, AdminError> {
        let (checked, ring) = self.published.borrow().clone();
        if !force && checked.elapsed() < RING_REFRESH {
            return Ok(ring);
        }
        let keys = self.node.catalog().signing_keys()?;
        let ring = if ring.fingerprint == keys::fingerprint(&keys) { ring } else { Arc::new(KeyRing::build(&keys)) };
        self.published.send_replace((Instant::now(), ring.clone()));
        Ok(ring)
    }
}

impl Actor for RingKeeper {
    type Message = Message;
    const NAME: &'static str = "admin";

    async fn handle(&mut self, message: Message) -> Handled {
        match message {
            Message::Refresh { force, reply } => {
                let ring = self.refresh(force);
                if let Some(reply) = reply {
                    let _ = reply.send(ring);
                }
            }
        }
        Handled::Continue
    }
}
