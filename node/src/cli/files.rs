//! `artstore upload` and `artstore download`, with a progress bar when stderr is a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use artstore_client::UploadOptions;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Connection, Output};

#[derive(clap::Args)]
pub struct UploadArgs {
    #[command(flatten)]
    conn: Connection,
    /// Files to upload.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Name to store (default: the file's own name; only with a single path).
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A custom attribute `key=value` (repeatable).
    #[arg(long = "attr")]
    attrs: Vec<String>,
    /// RFC 3339: no deletion or content change before this.
    #[arg(long)]
    retention_until: Option<String>,
    /// Store as a temporary file (edit elements, expires after --ttl-days).
    #[arg(long)]
    temporary: bool,
    #[arg(long)]
    ttl_days: Option<u32>,
    /// Store chunks zstd-compressed.
    #[arg(long)]
    compress: bool,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    conn: Connection,
    id: String,
    /// Where to write (default: the file's stored name in the current folder).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn bar(total: u64, label: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(label.to_string());
    Some(pb)
}

pub async fn upload(a: UploadArgs) -> anyhow::Result<()> {
    if a.name.is_some() && a.paths.len() > 1 {
        bail!("--name applies to a single file; got {} paths", a.paths.len());
    }
    let mut attributes = serde_json::Map::new();
    for kv in &a.attrs {
        let (k, v) = kv.split_once('=').with_context(|| format!("--attr {kv:?}: use key=value"))?;
        attributes.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let client = a.conn.client()?;
    for path in &a.paths {
        let name = match &a.name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("{}: no file name", path.display()))?,
        };
        let options = UploadOptions {
            description: a.description.clone(),
            tags: a.tags.clone(),
            attributes: (!attributes.is_empty()).then(|| attributes.clone()),
            retention_policy: a.temporary.then(|| "temporary".to_string()),
            ttl_days: a.ttl_days,
            retention_until: a.retention_until.clone(),
            compress: a.compress,
            // A retry through another node must not create a second copy.
            idempotency_key: Some(format!("cli-{}", hex::encode(rand::random::<[u8; 12]>()))),
            ..Default::default()
        };
        let size = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.len();
        let pb = bar(size, &name);
        let progress = {
            let pb = pb.clone();
            move |done: u64, _total: u64| {
                if let Some(pb) = &pb {
                    pb.set_position(done);
                }
            }
        };
        let file =
            client.upload_path(path, &name, &options, progress).await.with_context(|| format!("{}", path.display()))?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if a.output == Output::Json {
            println!("{}", serde_json::to_string(&file)?);
        } else {
            println!("{}  {}  {} bytes  sha256 {}", file.id, file.name, file.size, file.sha256);
        }
    }
    Ok(())
}

pub async fn download(a: DownloadArgs) -> anyhow::Result<()> {
    let client = a.conn.client()?;
    let info = client.get_file(&a.id).await?;
    let target = a.output.unwrap_or_else(|| PathBuf::from(info.name.replace(['/', '\\'], "_")));
    let pb = bar(info.size, &info.name);
    let progress = |done: u64, _total: u64| {
        if let Some(pb) = &pb {
            pb.set_position(done);
        }
    };
    client.download_to_path(&a.id, &target, progress).await?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    eprintln!("{} → {} ({} bytes, SHA-256 verified)", info.id, target.display(), info.size);
    Ok(())
}
