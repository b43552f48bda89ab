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

/// Keeps systemd's status line current until the process ends.
pub fn watch_readiness(admin: AdminHandle) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut said = String::new();
        loop {
            let status = match admin.readiness() {
                Ok(()) => {
                    let s = admin.cluster_status();
                    format!(
                        "ready: leader {}, applied index {}",
                        s.leader_id.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                        s.applied_index
                    )
                }
                Err(why) => format!("serving; not ready: {why}"),
            };
            // The applied index moves all the time; only a change of state is news.
            let state = status.split(',').next().unwrap_or_default().to_string();
            if state != said {
                notify(&format!("STATUS={status}"));
                said = state;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
