//! Where the nodes of a generated layout are reached: the host each node advertises to peers and
//! clients, the address it listens on, its ports, and the names its certificates carry. Also the
//! check of `host:port` addresses that peers dial, which may name a host by DNS.
//!
//! Two shapes of deployment are covered. Nodes sharing one host (a laptop, CI) are told apart by
//! their ports: node `i` uses `base_port + i - 1` for HTTP and that plus 1000 for QUIC. Nodes with
//! a host each (compose services, Kubernetes pods, machines) all use `base_port` and
//! `base_port + 1000`, listen on the unspecified address when their host is a DNS name, and
//! advertise that name.
//!
//! Invariant: an [`Addressing`] that passed [`Addressing::check`] gives every node of the layout
//! a distinct advertised address, and every host it renders is a DNS name or an IP address.

use std::net::IpAddr;

use crate::error::ConfigError;

/// The node id placeholder of a host pattern (`artstore-{i}` → `artstore-1`, `artstore-2`, …).
pub const NODE_ID_PLACEHOLDER: &str = "{i}";
/// The ordinal placeholder (node id − 1), as Kubernetes numbers StatefulSet pods
/// (`artstore-{ordinal}.artstore` → `artstore-0.artstore` for node 1).
pub const ORDINAL_PLACEHOLDER: &str = "{ordinal}";

/// The host each node is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHosts {
    /// Every node on the same host, told apart by ports (the default: `127.0.0.1`).
    Shared(String),
    /// A host per node from a pattern with [`NODE_ID_PLACEHOLDER`] or [`ORDINAL_PLACEHOLDER`];
    /// the same ports on every node. A pattern without a placeholder names one host, which only
    /// suits a single node (`cluster add-node`).
    Pattern(String),
    /// A host per node, in node id order from node 1; the same ports on every node.
    List(Vec<String>),
}

/// How `cluster init` and `cluster add-node` address nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    pub node_hosts: NodeHosts,
    /// More DNS names and IP addresses every API certificate names (a load balancer, a client
    /// Service); placeholders are rendered per node, so a pod's short name can be listed too.
    pub extra_hosts: Vec<String>,
    /// The IP address nodes listen on when it is not their host: `0.0.0.0` in containers.
    /// Unset: a node listens on its host when that is an IP address, else on `0.0.0.0`.
    pub listen_host: Option<String>,
    /// HTTP port (of node 1 when hosts are shared); QUIC is 1000 above it.
    pub base_port: u16,
}

/// The addresses and certificate names of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddresses {
    pub http_listen: String,
    pub quic_listen: String,
    /// What peers and clients use (`host:port`); equal to the listen address when the node
    /// listens on its host.
    pub http_advertise: String,
    pub quic_advertise: String,
    /// The node's own host first, then the extra hosts: what its API certificate names (its
    /// cluster certificate names the first).
    pub cert_hosts: Vec<String>,
}

impl Addressing {
    /// Nodes on one host told apart by ports, as `cluster init` has always laid them out.
    pub fn shared(host: impl Into<String>, extra_hosts: Vec<String>, base_port: u16) -> Self {
        Self { node_hosts: NodeHosts::Shared(host.into()), extra_hosts, listen_host: None, base_port }
    }

    /// Whether every node has a host of its own (and therefore the same ports).
    pub fn host_per_node(&self) -> bool {
        !matches!(self.node_hosts, NodeHosts::Shared(_))
    }

    /// Checks the hosts and ports for nodes `ids` (every id the layout will address), so that a
    /// mistake is reported before any key is generated.
    pub fn check(&self, ids: impl IntoIterator<Item = u64> + Clone) -> Result<(), ConfigError> {
        let bad = |what: String| Err(ConfigError::Layout(what));
        match &self.node_hosts {
            NodeHosts::Shared(h) if has_placeholder(h) => {
                return bad(format!("--host {h:?}: placeholders belong in --node-host"));
            }
            NodeHosts::List(hosts) => {
                let needed = ids.clone().into_iter().max().unwrap_or(0);
                if (hosts.len() as u64) < needed {
                    return bad(format!(
                        "--node-host: {} hosts given for {needed} nodes; give one pattern with {NODE_ID_PLACEHOLDER} \
                         or {ORDINAL_PLACEHOLDER}, or one host per node",
                        hosts.len()
                    ));
                }
            }
            _ => {}
        }
        if let Some(l) = &self.listen_host {
            if parse_ip(l).is_none() {
                return bad(format!("--listen-host {l:?}: give an IP address such as 0.0.0.0 or ::"));
            }
        }
        for h in self.templates() {
            check_template(h)?;
        }
        let mut seen = std::collections::BTreeMap::new();
        for id in ids {
            let a = self.node(id)?;
            for h in &a.cert_hosts {
                check_host(h).map_err(|why| ConfigError::Layout(format!("host {h:?} of node {id}: {why}")))?;
            }
            if let Some(other) = seen.insert(a.quic_advertise.clone(), id) {
                return bad(format!(
                    "nodes {other} and {id} would both be reached at {}: give each node its own host \
                     (a pattern with {NODE_ID_PLACEHOLDER} or {ORDINAL_PLACEHOLDER})",
                    a.quic_advertise
                ));
            }
        }
        Ok(())
    }

    /// The host node `id` advertises.
    pub fn host(&self, id: u64) -> String {
        match &self.node_hosts {
            NodeHosts::Shared(h) => h.clone(),
            NodeHosts::Pattern(p) => render(p, id),
            NodeHosts::List(hosts) => {
                hosts.get((id as usize).saturating_sub(1)).cloned().unwrap_or_else(|| format!("node{id}"))
            }
        }
    }

    /// The addresses and certificate names of node `id`.
    pub fn node(&self, id: u64) -> Result<NodeAddresses, ConfigError> {
        let (http_port, quic_port) = self.ports(id)?;
        let host = self.host(id);
        let listen = match &self.listen_host {
            Some(l) => l.clone(),
            None if parse_ip(&host).is_some() => host.clone(),
            None => "0.0.0.0".to_string(),
        };
        let mut cert_hosts = vec![host.clone()];
        for extra in &self.extra_hosts {
            let extra = render(extra, id);
            if !cert_hosts.contains(&extra) {
                cert_hosts.push(extra);
            }
        }
        Ok(NodeAddresses {
            http_listen: join_host_port(&listen, http_port),
            quic_listen: join_host_port(&listen, quic_port),
            http_advertise: join_host_port(&host, http_port),
            quic_advertise: join_host_port(&host, quic_port),
            cert_hosts,
        })
    }

    fn ports(&self, id: u64) -> Result<(u16, u16), ConfigError> {
        let offset = if self.host_per_node() { 0 } else { id.saturating_sub(1) };
        let http = u64::from(self.base_port) + offset;
        let quic = http + 1000;
        match (u16::try_from(http), u16::try_from(quic)) {
            (Ok(h), Ok(q)) if id > 0 => Ok((h, q)),
            _ => {
                Err(ConfigError::Layout(format!("--base-port {} leaves no room for node {id}'s ports", self.base_port)))
            }
        }
    }

    fn templates(&self) -> impl Iterator<Item = &String> {
        let hosts: Vec<&String> = match &self.node_hosts {
            NodeHosts::Shared(h) | NodeHosts::Pattern(h) => vec![h],
            NodeHosts::List(v) => v.iter().collect(),
        };
        hosts.into_iter().chain(&self.extra_hosts)
    }
}

fn has_placeholder(s: &str) -> bool {
    s.contains(NODE_ID_PLACEHOLDER) || s.contains(ORDINAL_PLACEHOLDER)
}

fn render(pattern: &str, id: u64) -> String {
    pattern
        .replace(NODE_ID_PLACEHOLDER, &id.to_string())
        .replace(ORDINAL_PLACEHOLDER, &id.saturating_sub(1).to_string())
}

/// Braces are only allowed as the two placeholders.
fn check_template(t: &str) -> Result<(), ConfigError> {
    let rest = t.replace(NODE_ID_PLACEHOLDER, "").replace(ORDINAL_PLACEHOLDER, "");
    if rest.contains(['{', '}']) {
        return Err(ConfigError::Layout(format!(
            "{t:?}: the only placeholders are {NODE_ID_PLACEHOLDER} (node id, from 1) and {ORDINAL_PLACEHOLDER} \
             (node id - 1)"
        )));
    }
    Ok(())
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn join_host_port(host: &str, port: u16) -> String {
    match parse_ip(host) {
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// Whether `host` is an IP address or a DNS name (letters, digits and hyphens in dot-separated
/// labels of at most 63 characters, at most 253 in all; a label neither starts nor ends with a
/// hyphen).
pub fn check_host(host: &str) -> Result<(), String> {
    if parse_ip(host).is_some() {
        return Ok(());
    }
    if host.is_empty() || host.len() > 253 {
        return Err("a DNS name has 1 to 253 characters".into());
    }
    for label in host.strip_suffix('.').unwrap_or(host).split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("{label:?} is not a DNS label (letters, digits and inner hyphens, at most 63)"));
        }
    }
    Ok(())
}

/// Whether `value` is an address a peer can be dialled at: `IP:port`, `[IPv6]:port` or
/// `dns-name:port` (the name is resolved each time the peer is dialled).
pub fn check_peer_address(value: &str) -> Result<(), String> {
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(format!("{value:?} is not host:port"));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{value:?}: the port must be a number from 1 to 65535"));
    }
    if host.contains(':') || host.starts_with('[') {
        return Err(format!("{value:?}: an IPv6 address is written [address]:port"));
    }
    check_host(host).map_err(|why| format!("{value:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Addressing {
        Addressing {
            node_hosts: NodeHosts::Pattern(p.into()),
            extra_hosts: vec!["artstore".into(), "artstore-{ordinal}.artstore".into()],
            listen_host: None,
            base_port: 8080,
        }
    }

    #[test]
    fn shared_hosts_keep_their_ports_apart() {
        let a = Addressing::shared("127.0.0.1", vec!["archive.example.com".into()], 8081);
        a.check(1..=3).unwrap();
        let n3 = a.node(3).unwrap();
        assert_eq!((n3.http_listen.as_str(), n3.quic_listen.as_str()), ("127.0.0.1:8083", "127.0.0.1:9083"));
        assert_eq!(n3.http_advertise, n3.http_listen, "listening on the host itself: no separate advertise");
        assert_eq!(n3.cert_hosts, ["127.0.0.1", "archive.example.com"]);
        let v6 = Addressing::shared("::1", vec![], 8081).node(1).unwrap();
        assert_eq!(v6.quic_advertise, "[::1]:9081");
    }

    #[test]
    fn a_host_per_node_shares_ports_listens_everywhere_and_advertises_its_name() {
        let a = pattern("artstore-{ordinal}.artstore.archive.svc.cluster.local");
        a.check(1..=3).unwrap();
        let n1 = a.node(1).unwrap();
        assert_eq!(n1.http_listen, "0.0.0.0:8080");
        assert_eq!(n1.quic_listen, "0.0.0.0:9080");
        assert_eq!(n1.quic_advertise, "artstore-0.artstore.archive.svc.cluster.local:9080");
        assert_eq!(n1.cert_hosts, ["artstore-0.artstore.archive.svc.cluster.local", "artstore", "artstore-0.artstore"]);
        assert_eq!(a.node(3).unwrap().http_advertise, "artstore-2.artstore.archive.svc.cluster.local:8080");
        let compose = pattern("artstore-{i}");
        assert_eq!(compose.node(2).unwrap().http_advertise, "artstore-2:8080");
        let ips = Addressing { node_hosts: NodeHosts::Pattern("127.0.0.{i}".into()), ..pattern("") };
        assert_eq!(ips.node(2).unwrap().http_listen, "127.0.0.2:8080", "an IP host is listened on itself");
    }

    #[test]
    fn a_list_names_each_node_and_must_cover_them_all() {
        let a = Addressing {
            node_hosts: NodeHosts::List(vec!["10.0.0.5".into(), "10.0.0.9".into(), "archive-3.example.com".into()]),
            listen_host: Some("0.0.0.0".into()),
            ..pattern("")
        };
        a.check(1..=3).unwrap();
        assert_eq!(a.node(2).unwrap().http_listen, "0.0.0.0:8080");
        assert_eq!(a.node(2).unwrap().http_advertise, "10.0.0.9:8080");
        assert!(a.check(1..=4).is_err(), "four nodes, three hosts");
    }

    #[test]
    fn mistakes_are_refused_before_anything_is_written() {
        let err = |a: Addressing| a.check(1..=3).unwrap_err().to_string();
        assert!(err(pattern("artstore")).contains("would both be reached at artstore:9080"));
        assert!(err(pattern("artstore-{n}")).contains("placeholders"));
        assert!(err(pattern("bad_name-{i}")).contains("not a DNS label"));
        assert!(err(Addressing { listen_host: Some("everywhere".into()), ..pattern("a-{i}") }).contains("IP address"));
        assert!(err(Addressing::shared("h-{i}", vec![], 8080)).contains("--node-host"));
        assert!(err(Addressing::shared("127.0.0.1", vec![], 65000)).contains("no room"));
        pattern("artstore").check([4]).unwrap();
    }

    #[test]
    fn peer_addresses_may_name_hosts_by_dns() {
        for ok in
            ["10.0.0.1:9081", "[::1]:9081", "artstore-0.artstore.archive.svc.cluster.local:9080", "artstore-1:9080"]
        {
            assert_eq!(check_peer_address(ok), Ok(()), "{ok}");
        }
        for bad in ["artstore-1", "artstore-1:0", "artstore-1:99999", "bad_host:9080", "::1:9081", ":9080", "a..b:1"] {
            assert!(check_peer_address(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    //! Peer addresses come from join requests and configuration files (fuzz/README.md).
    use proptest::prelude::*;

    use super::*;

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
    }

    proptest! {
        /// Whatever a join request carries: refused with a reason or accepted, never a panic; and
        /// what is accepted is an IP socket address or a well-formed DNS name with a real port.
        #[test]
        fn accepted_addresses_are_well_formed(value in "\\PC{0,80}|[a-z0-9.:\\[\\]-]{0,40}") {
            if check_peer_address(&value).is_ok() && value.parse::<std::net::SocketAddr>().is_err() {
                let (host, port) = value.rsplit_once(':').unwrap();
                prop_assert!(port.parse::<u16>().is_ok_and(|p| p > 0));
                prop_assert!(!host.is_empty() && host.len() <= 253 && !host.contains(':'));
                let name = host.strip_suffix('.').unwrap_or(host);
                prop_assert!(name.split('.').all(|l| !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
            }
        }

        /// Every DNS name of valid labels with a port from 1 to 65535 is accepted.
        #[test]
        fn dns_names_with_ports_are_accepted(labels in proptest::collection::vec(label(), 1..5), port in 1u16..) {
            let value = format!("{}:{port}", labels.join("."));
            prop_assert_eq!(check_peer_address(&value), Ok(()), "{}", value);
        }

        /// A valid address with its port removed, zeroed or out of range is refused.
        #[test]
        fn bad_ports_are_refused(labels in proptest::collection::vec(label(), 1..4), port in 65536u32..10_000_000) {
            let host = labels.join(".");
            for bad in [host.clone(), format!("{host}:0"), format!("{host}:{port}"), format!("{host}:")] {
                prop_assert!(check_peer_address(&bad).is_err(), "{}", bad);
            }
        }
    }
}
