//! Network-namespace mode (root only): every node in its own namespace, joined to the host by a
//! veth pair on a bridge, so a partition is a link taken down — faults in the kernel's network
//! stack rather than in a proxy.

use std::collections::BTreeMap;
use std::process::Command;

/// Why this machine cannot run the namespace mode, if it cannot.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("network namespaces need root (run as root, as CI does)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    let probe = format!("asprobe{}", std::process::id());
    match run(&["ip", "netns", "add", &probe]) {
        Ok(()) => {
            let _ = run(&["ip", "netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("cannot create a network namespace: {e}")),
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Namespaces, veth pairs and a bridge for a set of nodes; all removed on drop.
pub struct Lab {
    tag: String,
    bridge: String,
    subnet: String,
    nodes: Vec<u64>,
}

impl Lab {
    /// Creates a namespace per node on a fresh 10.x.y.0/24 behind a bridge (host side .1).
    pub fn create(nodes: &[u64]) -> Result<Self, String> {
        let tag = format!("{:04}", rand::random_range(0..10_000u32));
        let subnet = format!("10.{}.{}", rand::random_range(100..200u8), rand::random_range(1..250u8));
        let lab = Self { bridge: format!("asb{tag}"), tag, subnet, nodes: nodes.to_vec() };
        let br = lab.bridge.clone();
        run(&["ip", "link", "add", &br, "type", "bridge"])?;
        run(&["ip", "addr", "add", &format!("{}.1/24", lab.subnet), "dev", &br])?;
        run(&["ip", "link", "set", &br, "up"])?;
        for id in nodes {
            let (ns, host_end, node_end) = (lab.namespace(*id), lab.host_end(*id), format!("asn{}n{id}", lab.tag));
            run(&["ip", "netns", "add", &ns])?;
            run(&["ip", "link", "add", &host_end, "type", "veth", "peer", "name", &node_end])?;
            run(&["ip", "link", "set", &node_end, "netns", &ns])?;
            run(&["ip", "link", "set", &host_end, "master", &br])?;
            run(&["ip", "link", "set", &host_end, "up"])?;
            let inside = |args: &[&str]| {
                let mut full = vec!["ip", "netns", "exec", ns.as_str()];
                full.extend_from_slice(args);
                run(&full)
            };
            inside(&["ip", "addr", "add", &format!("{}/24", lab.ip(*id)), "dev", &node_end])?;
            inside(&["ip", "link", "set", &node_end, "up"])?;
            inside(&["ip", "link", "set", "lo", "up"])?;
            inside(&["ip", "route", "add", "default", "via", &format!("{}.1", lab.subnet)])?;
        }
        Ok(lab)
    }

    pub fn namespace(&self, id: u64) -> String {
        format!("as{}n{id}", self.tag)
    }

    fn host_end(&self, id: u64) -> String {
        format!("ash{}n{id}", self.tag)
    }

    pub fn ip(&self, id: u64) -> String {
        format!("{}.{}", self.subnet, 10 + id)
    }

    pub fn ips(&self) -> BTreeMap<u64, String> {
        self.nodes.iter().map(|id| (*id, self.ip(*id))).collect()
    }

    /// The command prefix that runs a process inside node `id`'s namespace.
    pub fn wrapper(&self, id: u64) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.namespace(id)]
    }

    /// Takes node `id`'s link down (cut off from every peer and client) or up again.
    pub fn link(&self, id: u64, up: bool) -> Result<(), String> {
        run(&["ip", "link", "set", &self.host_end(id), if up { "up" } else { "down" }])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for id in &self.nodes {
            let _ = run(&["ip", "netns", "del", &self.namespace(*id)]);
            let _ = run(&["ip", "link", "del", &self.host_end(*id)]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge]);
    }
}
