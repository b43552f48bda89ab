//! Sidecars: the `<file>.attr.json` every replica holder keeps next to its chunks, so the archive
//! on disk describes itself. Schema version "2.0"; version 1 sidecars of the original system are
//! read and migrated (`metadata` becomes `custom_attributes`).

use artstore_raft::rfc3339;
use std::collections::BTreeMap;

use artstore_raft::FileRecord;
use serde::{Deserialize, Serialize};

/// Schema 2.0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sidecar {
    pub schema_version: String,
    pub id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub chunks: Vec<SidecarChunk>,
    pub created_at: String,
    pub created_by: String,
    pub description: String,
    pub tags: Vec<String>,
    pub retention_until: Option<String>,
    pub version: u64,
    pub custom_attributes: BTreeMap<String, serde_json::Value>,
    /// `permanent` or `temporary` (absent in early 2.0 sidecars: permanent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    /// Temporary files: when they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The size chunks were cut to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SidecarChunk {
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub compressed: bool,
}

impl Sidecar {
    pub fn from_record(f: &FileRecord) -> Self {
        Sidecar {
            schema_version: "2.0".into(),
            id: f.id.clone(),
            name: f.name.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            content_type: f.content_type.clone(),
            chunks: f
                .chunks
                .iter()
                .map(|c| SidecarChunk { sha256: c.sha256.clone(), size: c.size, compressed: c.compressed })
                .collect(),
            created_at: rfc3339(f.created_at),
            created_by: f.created_by.clone(),
            description: f.description.clone(),
            tags: f.tags.clone(),
            retention_until: f.retention_until.map(rfc3339),
            version: f.version,
            custom_attributes: f.attributes(),
            retention_policy: Some(f.policy.as_str().into()),
            expires_at: f.expires_at.map(rfc3339),
            chunk_size: Some(f.chunk_size),
        }
    }

    /// Reads either schema: 2.0 as is, version 1 (no `schema_version`) migrated.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if v.get("schema_version").is_some() {
            return serde_json::from_value(v).map_err(|e| e.to_string());
        }
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        let custom_attributes = match v.get("metadata") {
            Some(serde_json::Value::Object(m)) => m.clone().into_iter().collect(),
            _ => BTreeMap::new(),
        };
        Ok(Sidecar {
            schema_version: "2.0".into(),
            id: s("file_id"),
            name: s("original_filename"),
            size: v.get("file_size").and_then(|x| x.as_u64()).unwrap_or(0),
            sha256: s("checksum"),
            content_type: s("content_type"),
            chunks: Vec::new(),
            created_at: s("created_at"),
            created_by: s("created_by_username"),
            description: s("description"),
            tags: Vec::new(),
            retention_until: None,
            version: v.get("version").and_then(|x| x.as_u64()).unwrap_or(1),
            custom_attributes,
            retention_policy: None,
            expires_at: None,
            chunk_size: None,
        })
    }

    /// `YYYY/MM/DD/HH/{stem}_{account}_{YYYYMMDDTHHMMSS}_{id}.attr.json`, readable by an operator
    /// and safe by construction whatever the file is called: only letters, digits, `-`, `_` and
    /// single dots survive (never `..`, never a separator, never a leading dot), and the file name
    /// is at most [`MAX_SIDECAR_NAME_BYTES`] bytes, cut on a UTF-8 boundary.
    pub fn relative_path(f: &FileRecord) -> String {
        let ts = rfc3339(f.created_at); // 2026-11-29T00:32:42.199Z
        let digits: String = ts.chars().filter(|c| c.is_ascii_digit()).collect();
        let (y, mo, d, h) = (&digits[0..4], &digits[4..6], &digits[6..8], &digits[8..10]);
        let stamp = format!("{}T{}", &digits[0..8], &digits[8..14]);
        let stem = f.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.name);
        let tail = format!("_{}_{stamp}_{}.attr.json", safe_component(&f.created_by), safe_component(&f.id));
        let budget = MAX_SIDECAR_NAME_BYTES.saturating_sub(tail.len());
        let stem = safe_component(stem);
        let mut cut = budget.min(stem.len());
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{y}/{mo}/{d}/{h}/{}{tail}", &stem[..cut])
    }
}

/// Whether a sidecar path stays inside its element: relative, no empty, `.` or `..` component, no
/// component longer than a file system allows.
pub fn is_safe_relative(relative: &str) -> bool {
    !relative.is_empty()
        && !relative.contains('\\')
        && relative.split('/').all(|c| !c.is_empty() && c != "." && c != ".." && c.len() <= 255)
}

/// Longest sidecar file name in bytes: well inside the 255 bytes file systems allow a component.
pub const MAX_SIDECAR_NAME_BYTES: usize = 200;

/// `s` as a piece of a file name: letters and digits kept, a dot kept only after a kept
/// character that is not a dot, everything else `_`.
fn safe_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let keep = c.is_alphanumeric() || c == '-' || (c == '.' && !out.is_empty() && !out.ends_with('.'));
        out.push(if keep { c } else { '_' });
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check_path(name: &str, created_by: &str) -> Result<(), String> {
        let f = FileRecord {
            id: "0193a1b2".into(),
            name: name.into(),
            created_by: created_by.into(),
            ..FileRecord::default()
        };
        let path = Sidecar::relative_path(&f);
        if !is_safe_relative(&path) || path.contains("..") || path.split('/').any(|c| c.len() > MAX_SIDECAR_NAME_BYTES)
        {
            return Err(format!("{name:?} gave {path:?}"));
        }
        Ok(())
    }

    #[test]
    fn the_seed_corpus_parses_or_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sidecar");
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let _ = Sidecar::parse(&bytes);
            check_path(&String::from_utf8_lossy(&bytes), "app").unwrap();
        }
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Sidecar::parse(&bytes);
        }

        #[test]
        fn any_name_gives_a_safe_sidecar_path(name in "(\\.|/|\\\\|[a-zя]|.){0,400}", by in "[a-z.]{0,70}") {
            prop_assert_eq!(check_path(&name, &by), Ok(()));
        }
    }

    fn record(name: &str, created_by: &str) -> FileRecord {
        FileRecord {
            id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            name: name.into(),
            created_by: created_by.into(),
            created_at: 1_764_000_000_000,
            ..FileRecord::default()
        }
    }

    #[test]
    fn hostile_names_give_safe_short_sidecar_paths() {
        let long_cyrillic = "д".repeat(150);
        let huge = "x".repeat(5000);
        for name in [
            "report..final.pdf",
            "../../etc/passwd",
            ".hidden",
            "a/b\\c",
            "..",
            "...",
            &long_cyrillic,
            &huge,
            "\u{202e}fdp.exe",
        ] {
            let path = Sidecar::relative_path(&record(name, "app..x"));
            let parts: Vec<&str> = path.split('/').collect();
            assert_eq!(parts.len(), 5, "{name:?} gave {path:?}");
            for p in &parts {
                assert!(!p.is_empty() && *p != "." && *p != ".." && !p.starts_with('.'), "{name:?} gave {path:?}");
                assert!(p.len() <= MAX_SIDECAR_NAME_BYTES, "{name:?}: {} bytes", p.len());
            }
            assert!(!path.contains(".."), "{name:?} gave {path:?}");
            assert!(path.ends_with("_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.attr.json"), "{path}");
        }
        let p = Sidecar::relative_path(&record("годовой.отчёт.pdf", "app"));
        assert!(p.contains("/годовой.отчёт_app_"), "{p}");
    }

    #[test]
    fn version_1_sidecars_migrate_metadata_into_custom_attributes() {
        let v1 = br#"{"file_id":"f1","original_filename":"report.pdf","storage_filename":"x","file_size":42,
            "content_type":"application/pdf","created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-02T00:00:00Z",
            "created_by_id":"7","created_by_username":"legacy","description":"old","version":3,
            "storage_path":"/a/b","checksum":"abc","metadata":{"dept":"finance","year":2020}}"#;
        let s = Sidecar::parse(v1).unwrap();
        assert_eq!(s.schema_version, "2.0");
        assert_eq!((s.id.as_str(), s.name.as_str(), s.size, s.version), ("f1", "report.pdf", 42, 3));
        assert_eq!(s.custom_attributes["dept"], "finance");
        assert_eq!(s.custom_attributes["year"], 2020);
        assert_eq!(s.sha256, "abc");
    }
}
