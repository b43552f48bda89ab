//! `artstore upload`, `artstore download` (progress bars when stdout is a terminal) and
//! `artstore files get|update|delete|list`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use artstore_client::wire::{FileInfo, UpdateFile};
use artstore_client::UploadOptions;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::{emit, parse_attrs, usage, Connection, Output};

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
    /// `json`: the stored file's record (an array of records for several paths).
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    conn: Connection,
    id: String,
    /// Where to write (default: the file's stored name in the current folder). An interrupted
    /// download leaves `PATH.part`; running the command again resumes it.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// `json`: the file's record and where it was written.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Subcommand)]
pub enum FilesCommand {
    /// Show a file's metadata.
    Get {
        #[command(flatten)]
        conn: Connection,
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Change a file's metadata; given tags and attributes replace the old ones.
    Update {
        #[command(flatten)]
        conn: Connection,
        id: String,
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
        /// RFC 3339; can only be extended.
        #[arg(long)]
        retention_until: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a file (where its element's mode and its retention allow it).
    Delete {
        #[command(flatten)]
        conn: Connection,
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List files in creation order.
    List {
        #[command(flatten)]
        conn: Connection,
        /// Files per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this cursor (the `next_cursor` of the previous page).
        #[arg(long, default_value = "")]
        after: String,
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// A progress bar on stderr, only when stdout is a terminal (a person is watching, not a script).
fn bar(total: u64, label: &str) -> Option<ProgressBar> {
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
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

fn file_line(f: &FileInfo) {
    println!("{}  {}  {} bytes  sha256 {}", f.id, f.name, f.size, f.sha256);
}

fn file_details(f: &FileInfo) {
    println!("id:           {}", f.id);
    println!("name:         {}", f.name);
    println!("size:         {} bytes ({} chunks)", f.size, f.chunks);
    println!("sha256:       {}", f.sha256);
    println!("content type: {}", f.content_type);
    println!("version:      {}", f.version);
    println!("created:      {} by {}", f.created_at, f.created_by);
    println!("updated:      {}", f.updated_at);
    println!("description:  {}", f.description);
    println!("tags:         {}", f.tags.join(", "));
    println!("attributes:   {}", serde_json::Value::Object(f.custom_attributes.clone()));
    println!("retention:    {}", f.retention_policy);
    if let Some(t) = &f.retention_until {
        println!("locked until: {t}");
    }
    if let Some(t) = &f.expires_at {
        println!("expires:      {t}");
    }
    let replicas: Vec<String> = f.replicas.iter().map(u64::to_string).collect();
    println!("replicas:     nodes {} ({} missing)", replicas.join(", "), f.missing_replicas);
}

pub async fn upload(a: UploadArgs) -> anyhow::Result<()> {
    if a.name.is_some() && a.paths.len() > 1 {
        return Err(usage(format!("--name applies to a single file; got {} paths", a.paths.len())));
    }
    let attributes = parse_attrs("--attr", &a.attrs)?;
    let client = a.conn.client()?;
    let mut stored = Vec::new();
    for path in &a.paths {
        let name = match &a.name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| usage(format!("{}: no file name", path.display())))?,
        };
        let options = UploadOptions {
            description: a.description.clone(),
            tags: a.tags.clone(),
            attributes: (!attributes.is_empty()).then(|| attributes.clone()),
            retention_policy: a.temporary.then(|| "temporary".to_string()),
            ttl_days: a.ttl_days,
            retention_until: a.retention_until.clone(),
            compress: a.compress,
            // The SDK adds a fresh idempotency key, so its retries never store a second copy.
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
        if a.output == Output::Text {
            file_line(&file);
        }
        stored.push(file);
    }
    if a.output == Output::Json {
        match stored.as_slice() {
            [one] => println!("{}", serde_json::to_string_pretty(one)?),
            many => println!("{}", serde_json::to_string_pretty(many)?),
        }
    }
    Ok(())
}

pub async fn download(a: DownloadArgs) -> anyhow::Result<()> {
    let client = a.conn.client()?;
    let info = client.get_file(&a.id).await?;
    let target = a.out.unwrap_or_else(|| PathBuf::from(info.name.replace(['/', '\\'], "_")));
    let pb = bar(info.size, &info.name);
    let progress = |done: u64, _total: u64| {
        if let Some(pb) = &pb {
            pb.set_position(done);
        }
    };
    let info = client.download_to_path(&a.id, &target, progress).await?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let report = serde_json::json!({ "file": info, "path": target.display().to_string(), "verified": true });
    emit(a.output, &report, |_| eprintln!("{} → {} ({} bytes, SHA-256 verified)", info.id, target.display(), info.size))
}

pub async fn run_files(cmd: FilesCommand) -> anyhow::Result<()> {
    match cmd {
        FilesCommand::Get { conn, id, output } => emit(output, &conn.client()?.get_file(&id).await?, file_details),
        FilesCommand::Update { conn, id, name, description, tags, attrs, retention_until, output } => {
            let attributes = parse_attrs("--attr", &attrs)?;
            let update = UpdateFile {
                name,
                description,
                tags: (!tags.is_empty()).then_some(tags),
                custom_attributes: (!attributes.is_empty()).then_some(attributes),
                retention_until,
            };
            if update == UpdateFile::default() {
                return Err(usage("nothing to change: give --name, --description, --tag, --attr or --retention-until"));
            }
            emit(output, &conn.client()?.update_file(&id, &update).await?, file_details)
        }
        FilesCommand::Delete { conn, id, output } => {
            conn.client()?.delete_file(&id).await?;
            emit(output, &serde_json::json!({ "id": id, "deleted": true }), |_| eprintln!("file {id} deleted"))
        }
        FilesCommand::List { conn, limit, after, all, output } => {
            let client = conn.client()?;
            let mut page = client.list_files(&after, limit).await?;
            if all {
                while let Some(cursor) = page.next_cursor.take() {
                    let next = client.list_files(&cursor, limit).await?;
                    page.files.extend(next.files);
                    page.next_cursor = next.next_cursor;
                }
            }
            emit(output, &page, |p| {
                for f in &p.files {
                    file_line(f);
                }
                if let Some(c) = &p.next_cursor {
                    eprintln!("more: --after {c}");
                }
            })
        }
    }
}
