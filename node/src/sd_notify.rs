//! systemd's service notification protocol (`sd_notify`): when started by systemd with
//! `Type=notify`, the node says `READY=1` once it serves (databases open, actors running,
//! listeners bound), keeps a one-line `STATUS=` current (waiting for a leader, or ready with its
//! leader and applied index), and says `STOPPING=1` when it begins to shut down.
//!
//! Ready means serving, not Raft-ready: a member is Raft-ready only once a majority of the
//! cluster is up, and a start that waited for that would block the first machines of a cluster
//! until the others start. `artstore health --wait` waits for Raft readiness where it matters.
//! Without `NOTIFY_SOCKET` every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use artstore_actors::admin::AdminHandle;
use artstore_actors::worker::{Next, Stop, Worker};

/// Sends `state` (newline-separated `KEY=VALUE` lines) to systemd; false when not under systemd
/// or the message did not go out.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return false };
    let Ok(socket) = UnixDatagram::unbound() else { return false };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        // An abstract socket (systemd's usual choice): its name follows the '@'.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = &sent {
        tracing::debug!(error = %e, "sd_notify failed");
    }
    sent.is_ok()
}

/// Keeps systemd's status line current: a worker, so it stops with the others on SIGTERM.
pub struct ReadinessStatus {
    admin: AdminHandle,
    said: String,
}

impl ReadinessStatus {
    /// The worker, when the node runs under systemd's notification protocol.
    pub fn under_systemd(admin: AdminHandle) -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET").map(|_| Self { admin, said: String::new() })
    }
}

impl Worker for ReadinessStatus {
    fn name(&self) -> &'static str {
        "sd-notify"
    }

    async fn step(&mut self, _stop: &Stop) -> Result<Next, String> {
        let status = match self.admin.readiness() {
            Ok(()) => {
                let s = self.admin.cluster_status();
                let leader = s.leader_id.map(|l| l.to_string()).unwrap_or_else(|| "?".into());
                format!("ready: leader {leader}, applied index {}", s.applied_index)
            }
            Err(why) => format!("serving; not ready: {why}"),
        };
        // The applied index moves all the time; only a change of state is news.
        let state = status.split(',').next().unwrap_or_default().to_string();
        if state != self.said {
            notify(&format!("STATUS={status}"));
            self.said = state;
        }
        Ok(Next::After(Duration::from_secs(1)))
    }
}
