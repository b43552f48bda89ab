//! The ingest actor's control state: which uploads are in flight, and whether new ones are
//! accepted. Every upload holds an [`UploadTicket`] from its first byte to its commit (or its
//! failure); on shutdown the supervisor closes the door ([`Message::Close`]) and waits, bounded,
//! until the last ticket is returned ([`Message::Drain`]).
//!
//! Invariant: once closed, no new upload starts, so a drain that reached zero stays at zero.

use crate::mailbox::{Actor, Handled, Mailbox, Reply, WeakMailbox};
use crate::StorageError;

pub(super) enum Message {
    /// A new upload asks to start.
    Begin(Reply<Result<UploadTicket, StorageError>>),
    /// An upload ended (committed, failed or abandoned).
    End,
    /// Refuse new uploads from now on.
    Close,
    /// Answer once no upload is in flight (the caller bounds the wait).
    Drain(Reply<()>),
    /// How many uploads are in flight.
    InFlight(Reply<usize>),
}

/// Held by one upload while it runs; returning it (dropping) tells the actor.
pub struct UploadTicket {
    uploads: Mailbox<Message>,
}

impl Drop for UploadTicket {
    fn drop(&mut self) {
        // The actor outlives uploads unless the node is already gone.
        let _ = self.uploads.tell(Message::End);
    }
}

pub(super) struct Uploads {
    in_flight: usize,
    closed: bool,
    /// Supervisors waiting for the last upload.
    drains: Vec<Reply<()>>,
    /// This actor's own mailbox, handed out with each ticket.
    me: WeakMailbox<Message>,
}

impl Uploads {
    pub(super) fn spawn() -> Mailbox<Message> {
        Mailbox::spawn_with(|me| Uploads { in_flight: 0, closed: false, drains: Vec::new(), me })
    }
}

impl Actor for Uploads {
    type Message = Message;
    const NAME: &'static str = "ingest";

    async fn handle(&mut self, message: Message) -> Handled {
        match message {
            Message::Begin(reply) => {
                let answer = match (self.me.upgrade(), self.closed) {
                    (_, true) | (None, _) => Err(StorageError::ShuttingDown(
                        "this node is shutting down and takes no new uploads; send it to another node".into(),
                    )),
                    (Some(uploads), false) => {
                        self.in_flight += 1;
                        Ok(UploadTicket { uploads })
                    }
                };
                if let Err(Ok(ticket)) = reply.send(answer) {
                    // The caller gave up before hearing the answer: the ticket comes back at once.
                    drop(ticket);
                }
            }
            Message::End => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if self.in_flight == 0 {
                    for d in self.drains.drain(..) {
                        let _ = d.send(());
                    }
                }
            }
            Message::Close => self.closed = true,
            Message::Drain(reply) => {
                if self.in_flight == 0 {
                    let _ = reply.send(());
                } else {
                    self.drains.push(reply);
                }
            }
            Message::InFlight(reply) => {
                let _ = reply.send(self.in_flight);
            }
        }
        Handled::Continue
    }
}
