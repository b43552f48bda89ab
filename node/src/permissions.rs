//! File permissions of a node's data: folders 0700, files 0600, so that no other local account can
//! read the signing keys in the catalog, the audit key, secret hashes or the documents.
//!
//! At start-up the process umask becomes 077 (everything created afterwards, by sled, tantivy or
//! the storage elements, is private by construction), the data folder is created 0700, and every
//! file and folder already in it that group or others can reach is logged as an error, naming its
//! path, and tightened (an element's chunk and sidecar folders themselves, not each file in them). The node starts afterwards: refusing would turn an operator's `chmod`
//! slip into an outage, while the fix itself closes the exposure.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Mode bits granting group or others anything.
const SHARED: u32 = 0o077;

/// Makes every file the process creates from now on private to its user.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` (and missing parents) with mode 0700 if needed, then tightens everything in it.
/// Returns how many paths had to be fixed.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<usize> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut fixed = 0;
    tighten(dir, &mut fixed, 0)?;
    if fixed > 0 {
        tracing::error!(
            fixed,
            dir = %dir.display(),
            "data folder was readable by other local users; modes fixed (folders 0700, files 0600)"
        );
    }
    Ok(fixed)
}

/// Deepest folder nesting walked (the layout is a few levels deep; a loop of bind mounts is not).
const MAX_DEPTH: usize = 32;

fn tighten(path: &Path, fixed: &mut usize, depth: usize) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & SHARED != 0 {
        let private = if meta.is_dir() { 0o700 } else { mode & 0o700 | 0o600 };
        tracing::error!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "readable by other local users; setting {private:o}");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
        *fixed += 1;
    }
    // An element's chunk and sidecar folders can hold millions of files: once the folder itself
    // is 0700 nobody else can reach them, and everything written since the umask is 0600 anyway.
    // Walking them would make every start-up as slow as the archive is large.
    let bulk = path.file_name().is_some_and(|n| n == "chunks" || n == "files");
    if meta.is_dir() && depth < MAX_DEPTH && !bulk {
        for entry in std::fs::read_dir(path)? {
            tighten(&entry?.path(), fixed, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_files_and_folders_are_tightened_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("raft")).unwrap();
        std::fs::write(data.join("raft").join("db"), b"keys").unwrap();
        std::fs::set_permissions(data.join("raft"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(data.join("raft").join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(secure_data_dir(&data).unwrap(), 3);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("raft")), 0o700);
        assert_eq!(mode(&data.join("raft").join("db")), 0o600);
        assert_eq!(secure_data_dir(&data).unwrap(), 0, "nothing left to fix");
    }

    #[test]
    fn a_missing_data_folder_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("b");
        secure_data_dir(&data).unwrap();
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
