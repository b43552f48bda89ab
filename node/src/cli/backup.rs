//! `artstore backup` and `artstore restore`: a consistent copy of the catalog at one log index,
//! and new nodes seeded from it.
//!
//! A backup is a folder of two files, private to the user: `catalog.snapshot` (the image) and
//! `manifest.json` (its log index, term, cluster id, file count and SHA-256). It holds the
//! catalog only (file records, accounts with their secret hashes, signing keys, the audit
//! chain); file bodies stay on the nodes' disks. Restore it into a cluster whose nodes keep
//! their ids and disks (a lost or corrupted catalog); where the catalogs are gone and no backup
//! is recent enough, `artstore recover` rebuilds file records from the disks instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use artstore_client::wire::BackupManifest;
use artstore_cluster_config::NodeConfig;
use artstore_raft::ClusterNode;
use sha2::Digest;

use super::connection::Connection;
use super::{emit, Output};

const IMAGE: &str = "catalog.snapshot";
const MANIFEST: &str = "manifest.json";

#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    conn: Connection,
    /// The folder to write `catalog.snapshot` and `manifest.json` to (created; must not hold a backup).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A folder `artstore backup` wrote.
    #[arg(long = "from")]
    from: PathBuf,
    /// The configuration of the node to seed (not started yet, with no Raft database); its
    /// `peers` become the new cluster's members. Restore every node of the cluster this way,
    /// then start them.
    #[arg(long)]
    config: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// Writes `bytes` to `path`, readable by this user only, and makes it durable.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let (manifest, image) = args.conn.client()?.backup().await?;
    let sha = hex::encode(sha2::Sha256::digest(&image));
    if sha != manifest.sha256 || image.len() as u64 != manifest.bytes {
        bail!(
            "the backup arrived damaged ({} bytes hashing to {sha}; the node sent {} bytes, {})",
            image.len(),
            manifest.bytes,
            manifest.sha256
        );
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&args.out)
            .with_context(|| format!("--out: cannot create {}", args.out.display()))?;
    }
    if args.out.join(MANIFEST).exists() || args.out.join(IMAGE).exists() {
        bail!("--out: {} already holds a backup; give a new folder", args.out.display());
    }
    // The image first: a folder with a manifest is a complete backup.
    write_private(&args.out.join(IMAGE), &image)?;
    write_private(&args.out.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    emit(args.output, &manifest, |m| {
        println!(
            "backed up the catalog of cluster {} at log index {} (term {}): {} files, {} bytes, sha256 {}",
            m.cluster_id, m.log_index, m.term, m.files, m.bytes, m.sha256
        );
        println!("written to {}", args.out.display());
    })
}

/// Reads and checks a backup folder: the manifest, and the image against its size and digest.
pub fn read_backup(dir: &Path) -> anyhow::Result<(BackupManifest, Vec<u8>)> {
    let manifest: BackupManifest = serde_json::from_slice(
        &std::fs::read(dir.join(MANIFEST)).with_context(|| format!("--from: no {MANIFEST} in {}", dir.display()))?,
    )
    .with_context(|| format!("--from: {MANIFEST} is not a backup manifest"))?;
    if manifest.format != 1 {
        bail!("--from: backup format {} is not one this release reads", manifest.format);
    }
    let image = std::fs::read(dir.join(IMAGE)).with_context(|| format!("--from: no {IMAGE} in {}", dir.display()))?;
    let sha = hex::encode(sha2::Sha256::digest(&image));
    if sha != manifest.sha256 || image.len() as u64 != manifest.bytes {
        bail!(
            "--from: {IMAGE} does not match the manifest ({} bytes hashing to {sha}): the backup is damaged",
            image.len()
        );
    }
    Ok((manifest, image))
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let (manifest, image) = read_backup(&args.from)?;
    if manifest.cluster_id != config.cluster_id {
        bail!(
            "the backup is of cluster {:?} and this node's configuration of cluster {:?}: tokens, the audit chain \
             and certificates belong to one cluster id",
            manifest.cluster_id,
            config.cluster_id
        );
    }
    let members: BTreeMap<u64, ClusterNode> = config
        .peers
        .iter()
        .map(|p| (p.node_id, ClusterNode { http_addr: p.http_addr.clone(), quic_addr: p.quic_addr.clone() }))
        .collect();
    let members = if members.is_empty() {
        // A one-node cluster (`artstore dev` style): this node alone.
        BTreeMap::from([(
            config.node_id,
            ClusterNode {
                http_addr: config.http_advertise().to_string(),
                quic_addr: config.quic_advertise().to_string(),
            },
        )])
    } else {
        members
    };
    let last_log_id = serde_json::from_value(manifest.last_log_id.clone()).context("the manifest's last_log_id")?;
    let data_dir = config.data_dir().to_path_buf();
    let db = data_dir.join("raft");
    artstore_raft::store::backup::restore(&db, &image, last_log_id, config.node_id, members.clone())?;
    // The search index describes the catalog this node had: it is rebuilt from the restored one.
    let index = data_dir.join("index");
    if index.exists() {
        std::fs::remove_dir_all(&index)
            .with_context(|| format!("cannot remove the old search index {}", index.display()))?;
    }
    crate::permissions::secure_data_dir(&data_dir)?;
    emit(args.output, &manifest, |m| {
        println!(
            "node {} seeded with the catalog of cluster {} at log index {} ({} files); members {:?}",
            config.node_id,
            m.cluster_id,
            m.log_index,
            m.files,
            members.keys().collect::<Vec<_>>()
        );
        println!("restore the other members the same way, then start them");
    })
}
