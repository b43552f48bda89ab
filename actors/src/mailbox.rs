//! The one shape of an actor: a task that owns its control state and serves a typed message enum,
//! reached through a cheap, cloneable [`Mailbox`]. A request that needs an answer carries a
//! [`Reply`] (a oneshot sender); a notification carries none.
//!
//! Every actor of a node (admin, storage, ingest, query) has one. Bytes never go through a
//! mailbox: an actor hands out what a request needs (a placement, a key ring, an upload ticket)
//! and the data flows on the request's own task. State read on every request is published by its
//! actor through a `watch` channel, so reading it costs no round trip.
//!
//! Invariants: messages are handled one at a time in the order they were sent, so the actor's
//! state needs no lock; the task ends when its last mailbox is dropped or it is told to stop,
//! and a caller whose actor has ended gets [`Stopped`], never a hang.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Where an actor sends its answer to one message.
pub type Reply<T> = oneshot::Sender<T>;

/// An actor: its state, and what it does with each message.
pub trait Actor: Send + 'static {
    type Message: Send + 'static;

    /// The actor's name in logs.
    const NAME: &'static str;

    /// Handles one message. Returning [`Handled::Stop`] ends the actor after this message.
    fn handle(&mut self, message: Self::Message) -> impl Future<Output = Handled> + Send;
}

/// What the actor's loop does after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    Continue,
    Stop,
}

/// The actor has ended (the node is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} actor has stopped")]
pub struct Stopped(pub &'static str);

/// A handle to a running actor; cheap to clone.
pub struct Mailbox<M> {
    name: &'static str,
    tx: mpsc::UnboundedSender<M>,
}

impl<M> Clone for Mailbox<M> {
    fn clone(&self) -> Self {
        Self { name: self.name, tx: self.tx.clone() }
    }
}

impl<M: Send + 'static> Mailbox<M> {
    /// Starts `actor` on its own task.
    ///
    /// The queue is unbounded on purpose: every request is a caller awaiting its reply, so the
    /// number queued is bounded by the callers (themselves bounded by the HTTP limits), and a
    /// notification can be sent from a `Drop` without waiting.
    pub fn spawn<A: Actor<Message = M>>(actor: A) -> Self {
        Self::spawn_with(|_| actor)
    }

    /// Starts the actor `make` builds from a weak handle to its own mailbox (for an actor that
    /// hands out tokens which message it back, without keeping itself alive).
    pub fn spawn_with<A: Actor<Message = M>>(make: impl FnOnce(WeakMailbox<M>) -> A) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut actor = make(WeakMailbox { name: A::NAME, tx: tx.downgrade() });
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if actor.handle(message).await == Handled::Stop {
                    break;
                }
            }
            tracing::debug!(actor = A::NAME, "actor stopped");
        });
        Self { name: A::NAME, tx }
    }

    /// Sends a request and waits for its answer.
    pub async fn call<T>(&self, message: impl FnOnce(Reply<T>) -> M) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(message(reply)).map_err(|_| Stopped(self.name))?;
        answer.await.map_err(|_| Stopped(self.name))
    }

    /// Sends a notification (no answer); never waits.
    pub fn tell(&self, message: M) -> Result<(), Stopped> {
        self.tx.send(message).map_err(|_| Stopped(self.name))
    }
}

/// A mailbox that does not keep its actor running.
pub struct WeakMailbox<M> {
    name: &'static str,
    tx: mpsc::WeakUnboundedSender<M>,
}

impl<M> WeakMailbox<M> {
    /// The mailbox, while the actor runs.
    pub fn upgrade(&self) -> Option<Mailbox<M>> {
        self.tx.upgrade().map(|tx| Mailbox { name: self.name, tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    enum Msg {
        Add(u64),
        Get(Reply<u64>),
        Stop,
    }
    impl Actor for Counter {
        type Message = Msg;
        const NAME: &'static str = "counter";
        async fn handle(&mut self, message: Msg) -> Handled {
            match message {
                Msg::Add(n) => self.0 += n,
                Msg::Get(reply) => {
                    let _ = reply.send(self.0);
                }
                Msg::Stop => return Handled::Stop,
            }
            Handled::Continue
        }
    }

    #[tokio::test]
    async fn messages_are_served_in_order_and_a_stopped_actor_says_so() {
        let counter = Mailbox::spawn(Counter(0));
        for n in 1..=100 {
            counter.tell(Msg::Add(n)).unwrap();
        }
        assert_eq!(counter.call(Msg::Get).await, Ok(5050));
        counter.tell(Msg::Stop).unwrap();
        // The request after the stop is never served: the caller hears so instead of hanging.
        assert_eq!(counter.call(Msg::Get).await, Err(Stopped("counter")));
    }
}
