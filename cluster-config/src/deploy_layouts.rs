//! The layouts `cluster init` writes for deployments where every node has a host of its own:
//! compose services, Kubernetes StatefulSet pods behind a headless Service, and machines. Each
//! test lays out a cluster the way `deploy/README.md` tells operators to, then checks that the
//! configs load and validate, that nodes listen everywhere but advertise their own name, and that
//! their certificates name exactly the hosts clients and peers will use.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::{
    add_node, init_cluster, node_server_name, AddNodeOptions, Addressing, ClusterLayout, InitOptions, NodeConfig,
    NodeHosts,
};

fn init(out: &Path, nodes: u64, addressing: Addressing) -> ClusterLayout {
    let opts = InitOptions {
        nodes,
        out: out.to_path_buf(),
        addressing,
        // Containers use an absolute path on a volume; a path under the test's folder stands in
        // for it so that validation (which wants its parent folder to exist) can pass.
        data_dir: Some(out.join("volume").join("data")),
        plain_http: false,
        cluster_id: "archive".into(),
    };
    std::fs::create_dir_all(out.join("volume")).unwrap();
    init_cluster(&opts).unwrap()
}

/// Whether the PEM certificate in `file` is valid for the host `name`.
fn names(file: &Path, name: &str) -> bool {
    let der = CertificateDer::from_pem_file(file).unwrap();
    let cert = webpki::EndEntityCert::try_from(&der).unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    cert.verify_is_valid_for_subject_name(&server_name).is_ok()
}

fn folder(layout: &ClusterLayout, id: u64) -> PathBuf {
    layout.out.join(format!("node{id}"))
}

#[cfg(unix)]
fn assert_private(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let path = entry.path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "volume") {
                continue; // made by the test, not by `cluster init`
            }
            assert_eq!(mode, 0o700, "{}", path.display());
            assert_private(&path);
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }
}

#[test]
fn compose_services_listen_everywhere_and_advertise_their_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let addressing = Addressing {
        node_hosts: NodeHosts::Pattern("artstore-{i}".into()),
        extra_hosts: vec!["localhost".into()],
        listen_host: Some("0.0.0.0".into()),
        base_port: 8080,
    };
    let layout = init(&dir.path().join("cluster"), 3, addressing);
    for n in &layout.nodes {
        let c = NodeConfig::load(&n.config).unwrap();
        let own = format!("artstore-{}", n.node_id);
        assert_eq!(c.http.listen, "0.0.0.0:8080");
        assert_eq!(c.quic.listen, "0.0.0.0:9080");
        assert_eq!(c.http_advertise(), format!("{own}:8080"));
        assert_eq!(c.quic_advertise(), format!("{own}:9080"));
        assert_eq!(n.http_addr, format!("{own}:8080"));
        assert_eq!(c.data_dir(), layout.out.join("volume/data"));
        let peers: Vec<&str> = c.peers.iter().map(|p| p.quic_addr.as_str()).collect();
        assert_eq!(peers, ["artstore-1:9080", "artstore-2:9080", "artstore-3:9080"]);
        let api = c.http.tls.as_ref().unwrap().cert.clone();
        for name in [own.as_str(), "localhost", "127.0.0.1"] {
            assert!(names(&api, name), "node {}'s API certificate names {name}", n.node_id);
        }
        let other = format!("artstore-{}", n.node_id % 3 + 1);
        assert!(!names(&api, &other), "node {}'s API certificate must not name {other}", n.node_id);
        assert!(names(&c.tls.cert, &node_server_name(n.node_id)), "peers dial the node by its cluster name");
        assert!(names(&c.tls.cert, &own));
        assert!(!names(&c.tls.cert, &node_server_name(n.node_id + 1)));
    }
    #[cfg(unix)]
    assert_private(&layout.out);
}

#[test]
fn statefulset_pods_are_named_by_ordinal_and_a_new_pod_gets_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let pods = "artstore-{ordinal}.artstore.archive.svc.cluster.local";
    let addressing = Addressing {
        node_hosts: NodeHosts::Pattern(pods.into()),
        extra_hosts: vec![
            "artstore.archive.svc.cluster.local".into(),
            "artstore.archive.svc".into(),
            "artstore-{ordinal}.artstore".into(),
        ],
        listen_host: None, // a DNS name: the node listens on 0.0.0.0 by itself
        base_port: 8080,
    };
    let layout = init(&dir.path().join("cluster"), 3, addressing.clone());
    let pod = |ordinal: u64| format!("artstore-{ordinal}.artstore.archive.svc.cluster.local");
    for n in &layout.nodes {
        let c = NodeConfig::load(&n.config).unwrap();
        let ordinal = n.node_id - 1;
        assert_eq!(c.http.listen, "0.0.0.0:8080");
        assert_eq!(c.quic_advertise(), format!("{}:9080", pod(ordinal)));
        assert_eq!(c.peers[2].http_addr, format!("{}:8080", pod(2)));
        let api = &c.http.tls.as_ref().unwrap().cert;
        for name in [pod(ordinal), format!("artstore-{ordinal}.artstore"), "artstore.archive.svc".into()] {
            assert!(names(api, &name), "node {}'s API certificate names {name}", n.node_id);
        }
        assert!(!names(api, &pod(ordinal + 1)));
    }
    assert_eq!(
        std::fs::read_to_string(folder(&layout, 1).join("ca.pem")).unwrap().lines().next(),
        Some("-----BEGIN CERTIFICATE-----")
    );

    // Scaling up: pod artstore-3 is node 4, with the same ports and no bootstrap peers.
    let add = AddNodeOptions {
        node_id: 4,
        addressing,
        data_dir: Some(layout.out.join("volume").join("data")),
        plain_http: false,
    };
    let four = add_node(&layout.out, &add).unwrap();
    let c = NodeConfig::load(&four.config).unwrap();
    assert!(c.peers.is_empty(), "a node that joins later starts without bootstrap peers");
    assert_eq!(c.quic_advertise(), format!("{}:9080", pod(3)));
    assert_eq!(c.http.listen, "0.0.0.0:8080");
    assert!(names(&c.http.tls.as_ref().unwrap().cert, &pod(3)));
    #[cfg(unix)]
    assert_private(&layout.out);
}

#[test]
fn machines_get_one_host_each_and_may_be_simulated_on_loopback_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let machines = Addressing {
        node_hosts: NodeHosts::List(vec![
            "archive-1.example.com".into(),
            "archive-2.example.com".into(),
            "10.0.0.7".into(),
        ]),
        extra_hosts: vec!["archive.example.com".into()],
        listen_host: None,
        base_port: 8443,
    };
    let layout = init(&dir.path().join("machines"), 3, machines);
    let c1 = NodeConfig::load(&layout.nodes[0].config).unwrap();
    assert_eq!(c1.http.listen, "0.0.0.0:8443");
    assert_eq!(c1.http_advertise(), "archive-1.example.com:8443");
    let c3 = NodeConfig::load(&layout.nodes[2].config).unwrap();
    assert_eq!(c3.http.listen, "10.0.0.7:8443", "a machine given by its address listens on it");
    assert_eq!(c3.http.advertise, None);
    assert!(names(&c3.http.tls.as_ref().unwrap().cert, "10.0.0.7"));
    assert!(names(&c3.http.tls.as_ref().unwrap().cert, "archive.example.com"));

    // Three "machines" on one: each node on its own loopback address, all with the same ports.
    let local = Addressing {
        node_hosts: NodeHosts::Pattern("127.0.0.{i}".into()),
        extra_hosts: Vec::new(),
        listen_host: None,
        base_port: 8443,
    };
    let layout = init(&dir.path().join("loopback"), 3, local);
    let listens: Vec<String> = layout.nodes.iter().map(|n| NodeConfig::load(&n.config).unwrap().http.listen).collect();
    assert_eq!(listens, ["127.0.0.1:8443", "127.0.0.2:8443", "127.0.0.3:8443"]);
}

#[test]
fn a_pattern_without_a_placeholder_is_refused_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let opts = InitOptions {
        nodes: 3,
        out: out.clone(),
        addressing: Addressing {
            node_hosts: NodeHosts::Pattern("artstore".into()),
            extra_hosts: Vec::new(),
            listen_host: None,
            base_port: 8080,
        },
        data_dir: None,
        plain_http: false,
        cluster_id: "archive".into(),
    };
    let err = init_cluster(&opts).unwrap_err().to_string();
    assert!(err.contains("would both be reached"), "{err}");
    assert!(!out.exists(), "nothing is written before the addresses are known to be distinct");
}
