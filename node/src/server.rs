//! Node start-up and shutdown.
//!
//! Order matters: the configuration is validated, the HTTP and QUIC sockets are bound and the TLS
//! files are loaded *before* anything is written to the data folder, so a bad config or a port in
//! use stops start-up with a message naming the key and leaves no state behind. SIGTERM (or
//! Ctrl-C) drains HTTP requests, stops Raft and flushes the stores.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use artstore_cluster_config::{LogFormat, NodeConfig};
use artstore_raft::transport::{TlsMaterial, Transport};
use artstore_raft::{ClusterNode, RaftNode, RaftNodeOptions};

use crate::{http, telemetry};

/// `artstore dev`: prepare (on first start) and run a one-node cluster in `data_dir`.
pub async fn run_dev(
    data_dir: PathBuf,
    http_addr: String,
    quic_addr: Option<String>,
    log_format: Option<LogFormat>,
    tls: bool,
) -> anyhow::Result<()> {
    let http_sock: SocketAddr =
        http_addr.parse().with_context(|| format!("--http: {http_addr:?} is not an IP:port address"))?;
    let quic_addr = match quic_addr {
        Some(q) => q,
        None => {
            let port =
                http_sock.port().checked_add(1000).context("--http: port too high to derive --quic; pass --quic")?;
            SocketAddr::new(http_sock.ip(), port).to_string()
        }
    };
    let quic_sock: SocketAddr =
        quic_addr.parse().with_context(|| format!("--quic: {quic_addr:?} is not an IP:port address"))?;
    // Check both ports before creating anything on disk.
    let listener = bind_http(http_sock, "--http").await?;
    std::net::UdpSocket::bind(quic_sock).with_context(|| format!("--quic: cannot listen on {quic_sock}"))?;
    crate::permissions::secure_data_dir(&data_dir)
        .with_context(|| format!("--data-dir: cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize().with_context(|| format!("--data-dir: {}", data_dir.display()))?;
    let (config, fresh) = artstore_cluster_config::dev_node(&data_dir, &http_addr, &quic_addr, tls)
        .with_context(|| format!("--data-dir: cannot prepare {}", data_dir.display()))?;
    if let Some(c) = fresh {
        let path = data_dir.join("admin-credentials.json");
        // The secret goes to a person at a terminal, never into a log file that captures stdout.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            println!("Bootstrap admin credentials (shown once; also in {}):", path.display());
            println!("  client_id:     {}", c.client_id);
            println!("  client_secret: {}", c.client_secret);
        } else {
            println!("Bootstrap admin credentials written to {} (mode 0600)", path.display());
        }
    }
    let scheme = config.http.scheme();
    println!("ArtStore dev node: {scheme}://{http_addr}  (data in {})", data_dir.display());
    println!("Web console: {scheme}://{http_addr}/console  (sign in with the admin credentials)");
    if tls {
        println!("  clients trust the CA in {}", data_dir.join("tls").join("ca.pem").display());
    }
    run(config, Vec::new(), log_format, Some(listener)).await
}

/// `artstore start --config FILE`.
pub async fn run_start(path: PathBuf, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let (config, notices) = NodeConfig::load_with_notices(&path)?;
    run(config, notices, log_format, None).await
}

async fn bind_http(addr: SocketAddr, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("{key}: cannot listen on {addr}"))
}

async fn run(
    config: NodeConfig,
    config_notices: Vec<artstore_cluster_config::secret_settings::Notice>,
    log_format: Option<LogFormat>,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<()> {
    let _tracing = telemetry::init_logging(
        log_format.unwrap_or(config.log.format),
        &config.log.level,
        &config.telemetry,
        config.node_id,
    );
    // Where secret settings came from (names and paths only, never values).
    for notice in config_notices {
        if notice.warning {
            tracing::warn!("{}", notice.message);
        } else {
            tracing::info!("{}", notice.message);
        }
    }
    // Before anything records a metric (the certificates' expiry is published as they load).
    let metrics = telemetry::init_metrics()?;
    let http_sock: SocketAddr = config.http.listen.parse().context("http.listen")?;
    let quic_sock: SocketAddr = config.quic.listen.parse().context("quic.listen")?;
    let listener = match listener {
        Some(l) => l,
        None => bind_http(http_sock, "http.listen").await?,
    };
    let metrics_listener = match &config.metrics.listen {
        Some(addr) => {
            let sock: SocketAddr = addr.parse().context("metrics.listen")?;
            Some(bind_http(sock, "metrics.listen").await?)
        }
        None => None,
    };
    let api_tls = config.http.tls.as_ref().map(http::tls::ApiTls::load).transpose()?;
    if api_tls.is_none() && !http_sock.ip().is_loopback() {
        tracing::warn!(
            listen = %http_sock,
            "the HTTP API listens beyond loopback without TLS: client secrets and tokens cross the network in clear \
             text; configure [http.tls] (or put a TLS proxy in front)"
        );
    }
    let tls = TlsMaterial::load(&config.tls)?.with_bbr(config.quic.congestion_control == "bbr");
    crate::certificates::publish_expiry("cluster", &config.tls.cert);
    crate::certificates::publish_expiry("ca", &config.tls.ca_cert);
    let transport = Transport::bind(quic_sock, &tls)?;
    for (node, addr) in &config.quic.dial {
        if let Ok(id) = node.parse() {
            tracing::info!(node = id, %addr, "dialling this peer through a configured address");
            transport.set_dial_override(id, addr.clone());
        }
    }

    let data_dir = config.data_dir().to_path_buf();
    // Folders 0700, files 0600; anything found shared is logged and tightened.
    crate::permissions::secure_data_dir(&data_dir)
        .with_context(|| format!("data_dir: cannot secure {}", data_dir.display()))?;
    tracing::info!(
        node_id = config.node_id,
        cluster = %config.cluster_id,
        http = %http_sock,
        quic = %quic_sock,
        data_dir = %data_dir.display(),
        "starting ArtStore node"
    );
    let bootstrap: BTreeMap<u64, ClusterNode> = config
        .peers
        .iter()
        .map(|p| (p.node_id, ClusterNode { http_addr: p.http_addr.clone(), quic_addr: p.quic_addr.clone() }))
        .collect();
    if !bootstrap.is_empty() && !bootstrap.contains_key(&config.node_id) {
        bail!("peers: this node ({}) must be one of the bootstrap peers", config.node_id);
    }
    let node = RaftNode::start(
        RaftNodeOptions {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            db_path: data_dir.join("raft"),
            http_addr: config.http_advertise().to_string(),
            quic_addr: config.quic_advertise().to_string(),
            bootstrap,
            raft: config.raft.clone(),
        },
        transport,
    )
    .await
    .context("cannot start raft")?;

    let actors = crate::supervisor::start(&node, &config, &data_dir)?;
    let state = http::AppState {
        admin: actors.admin.clone(),
        ingest: actors.ingest.clone(),
        storage: actors.storage.clone(),
        query: actors.query.clone(),
        repair: actors.repair.clone(),
        workers: actors.workers.clone(),
        metrics,
        max_attributes_bytes: config.storage.max_attributes_bytes,
        limits: std::sync::Arc::new(config.limits.clone()),
    };
    let limits = state.limits.clone();
    let console = http::console::ConsoleSettings::new(&config.http, &config.storage.rw_thresholds);
    actors.workers.start(console.sampler(state.clone()));
    let app = http::router(state.clone(), &config.http, config.metrics.listen.is_none(), console);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(tls) = &api_tls {
        tls.clone().watch(stop_rx.clone());
    }
    let metrics_server = metrics_listener.map(|l| {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(url = %format!("http://{addr}/metrics"), "metrics and health listening");
        let app = http::metrics_router(state);
        tokio::spawn(http::listener::serve(l, app, limits.clone(), None, stopped(stop_rx.clone())))
    });
    tracing::info!(url = %format!("{}://{http_sock}", config.http.scheme()), "HTTP API listening");
    // Under systemd (Type=notify): serving now; the status line follows Raft readiness.
    crate::sd_notify::notify("READY=1\nSTATUS=serving; waiting for a leader");
    if let Some(status) = crate::sd_notify::ReadinessStatus::under_systemd(actors.admin.clone()) {
        actors.workers.start(status);
    }
    let ingest = actors.ingest.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        ingest.close();
        let _ = stop_tx.send(true);
    });
    let served = http::listener::serve(listener, app, limits, api_tls, stopped(stop_rx)).await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    actors.stop(&node).await;
    tracing::info!("node stopped");
    served.context("HTTP server failed")
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: draining requests");
    crate::sd_notify::notify("STOPPING=1\nSTATUS=stopping: draining requests");
}
