//! `artstore`: the ArtStore node and its command line.
//!
//! The binary is thin: argument parsing and dispatch live here, start-up in [`server`], the HTTP
//! API in [`http`], and the commands that talk to a running cluster in [`cli`].

// The one exception is `allocator` (a measured need, explained there).
#![deny(unsafe_code)]

mod allocator;
mod certificates;
mod cli;
mod http;
mod permissions;
mod sd_notify;
mod server;
mod supervisor;
mod telemetry;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "artstore", version, about = "ArtStore: a distributed archive for documents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Start an embedded single-node cluster with its data in a local folder.
    Dev {
        /// Folder for all data; created on first start.
        #[arg(long, default_value = "artstore-data")]
        data_dir: PathBuf,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// QUIC (cluster transport) listen address; defaults to the HTTP port + 1000.
        #[arg(long)]
        quic: Option<String>,
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
        /// Serve HTTPS with a certificate from the dev CA (clients trust DATA_DIR/tls/ca.pem).
        #[arg(long)]
        tls: bool,
    },
    /// Start a node from its configuration file.
    Start {
        #[arg(long, env = "ARTSTORE_CONFIG")]
        config: PathBuf,
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Ask the node of a config file whether it is ready (exit 0) or not (exit 1), trusting its
    /// cluster CA: for container health checks and rolling upgrades.
    Health(cli::health::HealthArgs),
    /// Create and manage clusters.
    #[command(subcommand)]
    Cluster(cli::ClusterCommand),
    /// Upload files (writer role), with a progress bar on a terminal.
    Upload(cli::files::UploadArgs),
    /// Download a file by id (resumable); its SHA-256 is checked before the file appears.
    Download(cli::files::DownloadArgs),
    /// Search files by text, tags, attributes and content type.
    Search(cli::search::SearchArgs),
    /// Read, change, delete and list files' metadata.
    #[command(subcommand)]
    Files(cli::files::FilesCommand),
    /// Manage service accounts (admin role).
    #[command(subcommand)]
    Accounts(cli::admin::AccountsCommand),
    /// List storage elements and change their modes (operator role).
    #[command(subcommand)]
    Elements(cli::admin::ElementsCommand),
    /// Rotate JWT signing keys (operator role).
    #[command(subcommand)]
    Keys(cli::admin::KeysCommand),
    /// Read and verify the audit log (operator role).
    #[command(subcommand)]
    Audit(cli::admin::AuditCommand),
    /// Rebuild file records from sidecars and chunks on disk after every catalog was lost (admin role).
    Recover(cli::durability::RecoverArgs),
    /// Write a consistent backup of the catalog to a folder (admin role).
    Backup(cli::backup::BackupArgs),
    /// Seed a new node's catalog from a backup, before its first start.
    Restore(cli::backup::RestoreArgs),
    /// Scrub and repair progress (operator role).
    #[command(subcommand)]
    Repair(cli::durability::RepairCommand),
}

fn main() -> std::process::ExitCode {
    allocator::configure();
    let cli = Cli::parse();
    // A node and `cluster init` write keys, secrets and documents: private to this user from the
    // first file on.
    if matches!(
        cli.command,
        Command::Dev { .. } | Command::Start { .. } | Command::Cluster(_) | Command::Backup(_) | Command::Restore(_)
    ) {
        permissions::private_umask();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev { data_dir, http, quic, log_format, tls } => {
                server::run_dev(data_dir, http, quic, log_format.map(Into::into), tls).await
            }
            Command::Start { config, log_format } => server::run_start(config, log_format.map(Into::into)).await,
            Command::Health(a) => cli::health::run(a).await,
            Command::Cluster(c) => cli::run_cluster(c).await,
            Command::Accounts(c) => cli::admin::run_accounts(c).await,
            Command::Upload(a) => cli::files::upload(a).await,
            Command::Download(a) => cli::files::download(a).await,
            Command::Search(a) => cli::search::run(a).await,
            Command::Files(c) => cli::files::run_files(c).await,
            Command::Keys(c) => cli::admin::run_keys(c).await,
            Command::Elements(c) => cli::admin::run_elements(c).await,
            Command::Audit(c) => cli::admin::run_audit(c).await,
            Command::Repair(c) => cli::durability::run_repair(c).await,
            Command::Recover(a) => cli::durability::recover(a).await,
            Command::Backup(a) => cli::backup::backup(a).await,
            Command::Restore(a) => cli::backup::restore(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(exit_code(&e))
        }
    }
}

/// Exit codes scripts can tell apart: 1 other failures, 2 usage (clap), 3 authentication or
/// permission, 4 not found, 5 cluster unavailable, 6 conflict (mode, retention, state).
fn exit_code(e: &anyhow::Error) -> u8 {
    use artstore_client::ClientError as C;
    if e.chain().any(|c| c.is::<cli::UsageError>()) {
        return 2;
    }
    match e.chain().find_map(|c| c.downcast_ref::<C>()) {
        Some(C::Unauthorized(_) | C::Forbidden(_)) => 3,
        Some(C::NotFound(_)) => 4,
        Some(C::Unavailable(_)) => 5,
        Some(C::Conflict { .. }) => 6,
        Some(C::Invalid(_) | C::BadRequest { .. }) => 2,
        _ => 1,
    }
}

impl From<LogFormatArg> for artstore_cluster_config::LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}
