//! `artstore health`: asks the node described by a `config.toml` whether it is ready (or live),
//! as a load balancer would, for container health checks and for waiting on a node during a
//! rolling upgrade.
//!
//! The URL and the trust come from the config itself: the API's listen address (the loopback
//! address when it listens on all interfaces), `https` when `[http.tls]` is set, and the cluster
//! CA of `[tls] ca_cert`, which issued the API certificates of `cluster init` (the system's roots
//! are trusted too, for an API certificate from another CA). No token is needed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use artstore_cluster_config::NodeConfig;

#[derive(clap::Args)]
pub struct HealthArgs {
    /// The node's config.toml (the URL and the CA to trust are read from it).
    #[arg(long, env = "ARTSTORE_CONFIG")]
    config: PathBuf,
    /// Check `/health/live` (the process serves HTTP) instead of `/health/ready`.
    #[arg(long)]
    live: bool,
    /// Keep asking, once a second, for up to this many seconds until the node answers 200
    /// (0: ask once).
    #[arg(long, default_value_t = 0)]
    wait: u64,
}

/// The base URL of the node's API as seen from its own machine.
fn local_url(config: &NodeConfig) -> anyhow::Result<String> {
    let listen: SocketAddr = config.http.listen.parse().context("http.listen")?;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!("{}://{}", config.http.scheme(), SocketAddr::new(ip, listen.port())))
}

pub async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let url = format!("{}/health/{}", local_url(&config)?, if args.live { "live" } else { "ready" });
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(5));
    if config.http.tls.is_some() {
        let ca = &config.tls.ca_cert;
        let pem = std::fs::read(ca).with_context(|| format!("tls.ca_cert: cannot read {}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("{}", ca.display()))? {
            http = http.add_root_certificate(cert);
        }
    }
    let http = http.build().context("HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let why = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                println!("{url}: {}", r.text().await.unwrap_or_default().trim());
                return Ok(());
            }
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default().trim()),
            Err(e) => error_chain(&e),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("{url}: {why}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
