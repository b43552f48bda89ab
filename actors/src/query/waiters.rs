//! The query actor's control state: `consistent` searches waiting for the index to reach a log
//! index. The indexer thread tells the actor how far it got after every commit; the actor answers
//! every waiter that is now covered, and keeps the count of those still waiting where the indexer
//! looks for it (a waiting search makes the indexer commit at once instead of letting changes
//! gather).
//!
//! Invariant: a waiter is answered once the index covers its log index, or dropped when its
//! caller gave up; the published count never includes a waiter that was answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::mailbox::{Actor, Handled, Mailbox, Reply};

pub(super) enum Message {
    /// Answer once the index covers log index `.0`.
    Wait(u64, Reply<()>),
    /// The index now covers every change up to this log index.
    Indexed(u64),
}

pub(super) struct Waiters {
    indexed: u64,
    waiting: BTreeMap<u64, Vec<Reply<()>>>,
    /// What the indexer thread reads.
    count: Arc<AtomicUsize>,
}

impl Waiters {
    pub(super) fn spawn(indexed: u64, count: Arc<AtomicUsize>) -> Mailbox<Message> {
        Mailbox::spawn(Waiters { indexed, waiting: BTreeMap::new(), count })
    }

    fn publish(&mut self) {
        self.waiting.retain(|_, replies| {
            replies.retain(|r| !r.is_closed());
            !replies.is_empty()
        });
        self.count.store(self.waiting.values().map(Vec::len).sum(), Ordering::Relaxed);
    }
}

impl Actor for Waiters {
    type Message = Message;
    const NAME: &'static str = "query";

    async fn handle(&mut self, message: Message) -> Handled {
        match message {
            Message::Wait(index, reply) if index <= self.indexed => {
                let _ = reply.send(());
            }
            Message::Wait(index, reply) => self.waiting.entry(index).or_default().push(reply),
            Message::Indexed(index) => {
                self.indexed = self.indexed.max(index);
                let later = self.waiting.split_off(&(self.indexed + 1));
                for reply in std::mem::replace(&mut self.waiting, later).into_values().flatten() {
                    let _ = reply.send(());
                }
            }
        }
        self.publish();
        Handled::Continue
    }
}
