//! `artstore backup` and `artstore restore`: a consistent copy of the catalog at one log index,
//! and new nodes seeded from it.
//!
//! A backup is a folder of two files, private to the user: `catalog.snapshot` (the image) and
//! `manifest.json` (its log index, term, cluster id, file count and SHA-256). The folder may be
//! on this machine or in an object store (`s3://bucket/prefix`, with the same `AWS_*` settings
//! as storage elements); the image is written first, so a manifest means a complete backup. It holds the
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
use object_store::ObjectStoreExt;
use sha2::Digest;

use super::connection::Connection;
use super::{emit, Output};

const IMAGE: &str = "catalog.snapshot";
const MANIFEST: &str = "manifest.json";

#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    conn: Connection,
    /// Where to write `catalog.snapshot` and `manifest.json`: a folder (created) or an object
    /// store URL such as `s3://bucket/backups/2026-12-02`; it must not hold a backup yet.
    #[arg(long)]
    out: String,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A folder or object store URL `artstore backup` wrote.
    #[arg(long = "from")]
    from: String,
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

/// Where a backup lives: a local folder, or a prefix in an object store.
enum Place {
    Folder(PathBuf),
    Store { store: Box<dyn object_store::ObjectStore>, prefix: object_store::path::Path, url: String },
}

impl Place {
    /// A URL with a scheme (`s3://`, `file://`, …) is an object store; anything else a folder.
    fn parse(flag: &str, at: &str) -> anyhow::Result<Self> {
        match url::Url::parse(at) {
            Ok(url) if url.scheme().len() > 1 => {
                let options = artstore_cluster_config::secret_settings::object_store_options(std::env::vars())
                    .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
                let (store, prefix) = object_store::parse_url_opts(&url, options)
                    .with_context(|| format!("{flag}: {at} is not an object store this build reaches"))?;
                Ok(Place::Store { store, prefix, url: at.to_string() })
            }
            _ => Ok(Place::Folder(PathBuf::from(at))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Folder(d) => d.display().to_string(),
            Place::Store { url, .. } => url.clone(),
        }
    }

    async fn exists(&self, name: &str) -> anyhow::Result<bool> {
        match self {
            Place::Folder(d) => Ok(d.join(name).exists()),
            Place::Store { store, prefix, url } => match store.head(&prefix.clone().join(name)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(anyhow::anyhow!("{url}: {e}")),
            },
        }
    }

    async fn write(&self, name: &str, bytes: bytes::Bytes) -> anyhow::Result<()> {
        match self {
            Place::Folder(d) => write_private(&d.join(name), &bytes),
            Place::Store { store, prefix, url } => {
                let path = prefix.clone().join(name);
                let payload = object_store::PutPayload::from(bytes);
                // Create-only, so two backups racing for one prefix cannot mix their files.
                let create = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
                match store.put_opts(&path, payload.clone(), create).await {
                    Ok(_) => Ok(()),
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        bail!("--out: {url} already holds a backup; give a new prefix")
                    }
                    // A store without conditional writes: the check before the backup stands.
                    Err(object_store::Error::NotImplemented { .. }) => {
                        store.put(&path, payload).await.map(|_| ()).with_context(|| format!("{url}/{name}"))
                    }
                    Err(e) => Err(anyhow::anyhow!("{url}/{name}: {e}")),
                }
            }
        }
    }

    async fn read(&self, flag: &str, name: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Place::Folder(d) => {
                std::fs::read(d.join(name)).with_context(|| format!("{flag}: no {name} in {}", d.display()))
            }
            Place::Store { store, prefix, url } => {
                let got = store
                    .get(&prefix.clone().join(name))
                    .await
                    .with_context(|| format!("{flag}: no {name} in {url}"))?;
                Ok(got.bytes().await.with_context(|| format!("{flag}: reading {name} from {url}"))?.to_vec())
            }
        }
    }
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let place = Place::parse("--out", &args.out)?;
    // Checked before the cluster is asked for anything.
    if let Place::Folder(dir) = &place {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("--out: cannot create {}", dir.display()))?;
    }
    if place.exists(MANIFEST).await? || place.exists(IMAGE).await? {
        bail!("--out: {} already holds a backup; give a new folder", place.describe());
    }
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
    // The image first: a folder with a manifest is a complete backup.
    place.write(IMAGE, image).await?;
    place.write(MANIFEST, serde_json::to_vec_pretty(&manifest)?.into()).await?;
    emit(args.output, &manifest, |m| {
        println!(
            "backed up the catalog of cluster {} at log index {} (term {}): {} files, {} bytes, sha256 {}",
            m.cluster_id, m.log_index, m.term, m.files, m.bytes, m.sha256
        );
        println!("written to {}", place.describe());
    })
}

/// Reads and checks a backup: the manifest, and the image against its size and digest.
async fn read_backup(from: &str) -> anyhow::Result<(BackupManifest, Vec<u8>)> {
    let place = Place::parse("--from", from)?;
    let manifest: BackupManifest = serde_json::from_slice(&place.read("--from", MANIFEST).await?)
        .with_context(|| format!("--from: {MANIFEST} is not a backup manifest"))?;
    if manifest.format != 1 {
        bail!("--from: backup format {} is not one this release reads", manifest.format);
    }
    let image = place.read("--from", IMAGE).await?;
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
    let (manifest, image) = read_backup(&args.from).await?;
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
