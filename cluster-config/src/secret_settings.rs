//! Where each secret-bearing setting may come from: written in `config.toml`, read from a file
//! named by `<key>_file` (a Docker or Kubernetes secret mount), or taken from an environment
//! variable `ARTSTORE_<SECTION>_<KEY>`. Applied to the parsed TOML document before it becomes a
//! [`crate::NodeConfig`], so validation sees one value wherever it came from.
//!
//! Invariants: the precedence is environment, then `_file`, then the inline value; a file that
//! sets both the inline key and its `_file` is refused, naming both; a problem names the key and
//! the path, never the secret. A PEM setting (the TLS certificates, keys and CAs, which are paths)
//! may also hold the PEM text itself; it is then kept in a 0600 file under `data_dir/tls/` and the
//! setting points there, so every loader keeps reading paths.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::Problem;

/// Looks up an environment variable; injectable so that tests need not touch the process's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with an empty variable counting as unset (compose's `${X:-}`).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A setting that holds a secret: its key path, and whether it is a PEM path.
struct SecretSetting {
    path: &'static [&'static str],
    pem: bool,
}

/// Every secret-bearing setting of a node's `config.toml`.
const SETTINGS: &[SecretSetting] = &[
    SecretSetting { path: &["auth", "bootstrap_admin_hash"], pem: false },
    SecretSetting { path: &["tls", "ca_cert"], pem: true },
    SecretSetting { path: &["tls", "cert"], pem: true },
    SecretSetting { path: &["tls", "key"], pem: true },
    SecretSetting { path: &["http", "tls", "cert"], pem: true },
    SecretSetting { path: &["http", "tls", "key"], pem: true },
    SecretSetting { path: &["http", "tls", "client_ca"], pem: true },
];

/// The environment variable of a setting: `tls.key` → `ARTSTORE_TLS_KEY`.
pub fn env_name(key: &str) -> String {
    format!("ARTSTORE_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Something worth a line in the log once logging is set up: names and paths, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// A risk the operator should fix (a world-readable secret file), rather than information.
    pub warning: bool,
    pub message: String,
}

/// What applying the sources did: problems (the load fails), notices for the log, and whether
/// anything in the document changed.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub problems: Vec<Problem>,
    pub notices: Vec<Notice>,
    pub changed: bool,
    /// Files and folders written for inline PEMs, in the order they were created.
    pub written: Vec<PathBuf>,
}

impl Applied {
    /// Removes what was written for inline PEMs, so that a start refused for any reason leaves
    /// the data folder as it was (folders only if this load created them and they are empty).
    pub fn undo(&self) {
        for p in self.written.iter().rev() {
            let _ = if p.is_dir() { std::fs::remove_dir(p) } else { std::fs::remove_file(p) };
        }
    }
}

/// Resolves every secret setting of `doc` in place. `base` is the folder of `config.toml`
/// (relative `_file` paths and `data_dir` are read against it).
pub(crate) fn apply(doc: &mut Table, base: &Path, env: Env) -> Applied {
    let mut out = Applied::default();
    for s in SETTINGS {
        let key = s.path.join(".");
        let (parents, leaf) = s.path.split_at(s.path.len() - 1);
        let leaf = leaf[0];
        let file_key = format!("{leaf}_file");
        let from_env = env(&env_name(&key));
        let Some(table) = table_at(doc, parents, from_env.is_some()) else { continue };
        let file = if s.pem { None } else { table.remove(&file_key) };
        out.changed |= file.is_some();
        if file.is_some() && table.contains_key(leaf) {
            out.problems.push(Problem::new(&key, format!("set either {key} or {key}_file, not both")));
            continue;
        }
        if let Some(value) = from_env {
            out.notices.push(Notice {
                warning: false,
                message: format!("{key} is taken from the environment ({})", env_name(&key)),
            });
            table.insert(leaf.into(), Value::String(value));
            out.changed = true;
        } else if let Some(file) = file {
            let Value::String(name) = file else {
                out.problems.push(Problem::new(format!("{key}_file"), "must be a path (a string)"));
                continue;
            };
            let path = absolute(base, Path::new(&name));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if world_readable(&path) {
                        out.notices.push(Notice {
                            warning: true,
                            message: format!(
                                "{key}_file: {} is readable by every user of this machine; make it 0600 or 0440",
                                path.display()
                            ),
                        });
                    }
                    table.insert(leaf.into(), Value::String(text.trim_end_matches(['\n', '\r']).to_string()));
                }
                Err(e) => out
                    .problems
                    .push(Problem::new(format!("{key}_file"), format!("cannot read {}: {e}", path.display()))),
            }
        }
        let inline_pem = match table.get(leaf) {
            Some(Value::String(v)) if s.pem && v.trim_start().starts_with("-----BEGIN") => Some(v.clone()),
            _ => None,
        };
        if let Some(pem) = inline_pem {
            match keep_inline_pem(doc, base, &key, &pem, &mut out.written) {
                Ok(path) => {
                    if let Some(t) = table_at(doc, parents, false) {
                        t.insert(leaf.into(), Value::String(path.to_string_lossy().into_owned()));
                    }
                    out.changed = true;
                }
                Err(p) => out.problems.push(p),
            }
        }
    }
    out
}

/// The table at `path` in `doc`, created on the way when `create` is set.
fn table_at<'a>(doc: &'a mut Table, path: &[&str], create: bool) -> Option<&'a mut Table> {
    let mut t = doc;
    for part in path {
        if !t.contains_key(*part) {
            if !create {
                return None;
            }
            t.insert((*part).into(), Value::Table(Table::new()));
        }
        t = t.get_mut(*part)?.as_table_mut()?;
    }
    Some(t)
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn world_readable(_: &Path) -> bool {
    false
}

/// Writes an inline PEM to `data_dir/tls/inline-<key>.pem` (folder 0700, file 0600, replaced
/// atomically) and returns that path. The file is rewritten at every start, so an inline PEM is
/// never reloaded while the node runs: changing it means a restart.
fn keep_inline_pem(
    doc: &Table,
    base: &Path,
    key: &str,
    pem: &str,
    written: &mut Vec<PathBuf>,
) -> Result<PathBuf, Problem> {
    let Some(Value::String(data_dir)) = doc.get("data_dir") else {
        return Err(Problem::new(key, "a PEM given inline needs data_dir, where it is kept in a private file"));
    };
    let dir = absolute(base, Path::new(data_dir)).join("tls");
    let path = dir.join(format!("inline-{}.pem", key.replace('.', "-")));
    let fail = |e: std::io::Error| Problem::new(key, format!("cannot keep the inline PEM in {}: {e}", path.display()));
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    let data_dir = dir.parent().unwrap_or(&dir).to_path_buf();
    let new_dirs: Vec<PathBuf> = [data_dir, dir.clone()].into_iter().filter(|d| !d.exists()).collect();
    b.create(&dir).map_err(fail)?;
    written.extend(new_dirs);
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(fail)?;
    f.write_all(pem.as_bytes()).and_then(|_| f.write_all(b"\n")).and_then(|_| f.sync_all()).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    if !written.contains(&path) {
        written.push(path.clone());
    }
    Ok(path)
}

/// The object-store credentials a `_FILE` variable may name, Docker style: `AWS_SECRET_ACCESS_KEY_FILE`
/// holds the path of a file whose content is the secret. (`AWS_WEB_IDENTITY_TOKEN_FILE` is not
/// one of them: it is a path by its own definition and `object_store` reads it.)
const OBJECT_STORE_FILE_VARS: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// The options an object-store element is opened with: every `AWS_*` variable, lower-cased, with
/// the credentials of [`OBJECT_STORE_FILE_VARS`] also read from `<NAME>_FILE` when `<NAME>` itself
/// is unset (the variable wins). An error names the variable and the path, never the content.
pub fn object_store_options(vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<(String, String)>, String> {
    let vars: Vec<(String, String)> = vars.into_iter().filter(|(k, _)| k.starts_with("AWS_")).collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in &vars {
        let is_secret_file = OBJECT_STORE_FILE_VARS.iter().any(|s| k.strip_suffix("_FILE") == Some(s));
        if !is_secret_file {
            out.push((k.to_ascii_lowercase(), v.clone()));
        }
    }
    for name in OBJECT_STORE_FILE_VARS {
        let file_var = format!("{name}_FILE");
        let set = vars.iter().any(|(k, v)| k == name && !v.is_empty());
        let Some((_, path)) = vars.iter().find(|(k, _)| *k == file_var) else { continue };
        if set {
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{file_var}: cannot read {path}: {e}"))?;
        out.retain(|(k, _)| *k != name.to_ascii_lowercase());
        out.push((name.to_ascii_lowercase(), text.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::{ConfigError, NodeConfig};

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aW5saW5l";
    const FILE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$ZmlsZQ";
    const ENV_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$ZW52";
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";

    /// A node folder with the TLS files and a `config.toml` whose `[auth]` table is `auth`.
    fn node(auth: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "node.pem", "node.key"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let text = format!(
            "node_id = 1\ndata_dir = \"data\"\n[tls]\nca_cert = \"ca.pem\"\ncert = \"node.pem\"\nkey = \"node.key\"\n[auth]\n{auth}\n"
        );
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        dir
    }

    fn load(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        NodeConfig::load_with_env(&dir.path().join("config.toml"), &|k| env.get(k).cloned()).map(|(c, _)| c)
    }

    fn problems(result: Result<NodeConfig, ConfigError>) -> Vec<Problem> {
        match result {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid configuration, got {other:?}"),
        }
    }

    #[test]
    fn an_inline_secret_is_used_as_written() {
        let dir = node(&format!("bootstrap_admin_hash = '{HASH}'"));
        assert_eq!(load(&dir, &[]).unwrap().auth.bootstrap_admin_hash.as_deref(), Some(HASH));
    }

    #[test]
    fn a_file_secret_is_read_without_its_trailing_newline() {
        let dir = node("bootstrap_admin_hash_file = 'admin.hash'");
        std::fs::write(dir.path().join("admin.hash"), format!("{FILE_HASH}\n")).unwrap();
        assert_eq!(load(&dir, &[]).unwrap().auth.bootstrap_admin_hash.as_deref(), Some(FILE_HASH));
    }

    #[test]
    fn the_environment_wins_over_the_file_and_inline_values() {
        let dir = node(&format!("bootstrap_admin_hash = '{HASH}'"));
        let env = [("ARTSTORE_AUTH_BOOTSTRAP_ADMIN_HASH", ENV_HASH)];
        assert_eq!(load(&dir, &env).unwrap().auth.bootstrap_admin_hash.as_deref(), Some(ENV_HASH));
        let dir = node("bootstrap_admin_hash_file = 'admin.hash'");
        std::fs::write(dir.path().join("admin.hash"), FILE_HASH).unwrap();
        let (config, notices) = NodeConfig::load_with_env(&dir.path().join("config.toml"), &|k| {
            (k == "ARTSTORE_AUTH_BOOTSTRAP_ADMIN_HASH").then(|| ENV_HASH.to_string())
        })
        .unwrap();
        assert_eq!(config.auth.bootstrap_admin_hash.as_deref(), Some(ENV_HASH));
        assert!(notices.iter().any(|n| n.message.contains("ARTSTORE_AUTH_BOOTSTRAP_ADMIN_HASH")));
        assert!(notices.iter().all(|n| !n.message.contains(ENV_HASH)));
    }

    #[test]
    fn the_environment_can_supply_a_required_setting() {
        let dir = node("");
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap().replace("key = \"node.key\"\n", "");
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let key = dir.path().join("node.key");
        let c = load(&dir, &[("ARTSTORE_TLS_KEY", key.to_str().unwrap())]).unwrap();
        assert_eq!(c.tls.key, key);
    }

    #[test]
    fn inline_and_file_together_are_refused_naming_both_keys() {
        let dir = node(&format!("bootstrap_admin_hash = '{HASH}'\nbootstrap_admin_hash_file = 'admin.hash'"));
        let p = problems(load(&dir, &[]));
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("auth.bootstrap_admin_hash_file"), "{}", p[0]);
        assert_eq!(p[0].key, "auth.bootstrap_admin_hash");
    }

    #[test]
    fn an_unreadable_secret_file_names_its_key_and_path() {
        let dir = node("bootstrap_admin_hash_file = 'missing.hash'");
        let p = problems(load(&dir, &[]));
        assert_eq!(p[0].key, "auth.bootstrap_admin_hash_file");
        assert!(p[0].message.contains("missing.hash"), "{}", p[0]);
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_secret_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = node("bootstrap_admin_hash_file = 'admin.hash'");
        let file = dir.path().join("admin.hash");
        std::fs::write(&file, FILE_HASH).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, notices) = NodeConfig::load_with_env(&dir.path().join("config.toml"), &|_| None).unwrap();
        assert!(notices.iter().any(|n| n.warning && n.message.contains("admin.hash")));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_, notices) = NodeConfig::load_with_env(&dir.path().join("config.toml"), &|_| None).unwrap();
        assert!(notices.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn an_inline_pem_is_kept_in_a_private_file_under_the_data_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = node("");
        let text = std::fs::read_to_string(dir.path().join("config.toml"))
            .unwrap()
            .replace("key = \"node.key\"", &format!("key = '''\n{PEM}'''"));
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let c = load(&dir, &[]).unwrap();
        assert_eq!(c.tls.key, dir.path().join("data/tls/inline-tls-key.pem"));
        assert_eq!(std::fs::read_to_string(&c.tls.key).unwrap().trim(), PEM);
        assert_eq!(std::fs::metadata(&c.tls.key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("data/tls")).unwrap().permissions().mode() & 0o777, 0o700);
        // The same PEM from the environment, e.g. a Kubernetes Secret as a variable; a second
        // start replaces the file.
        let c = load(&dir, &[("ARTSTORE_TLS_KEY", PEM)]).unwrap();
        assert_eq!(std::fs::read_to_string(&c.tls.key).unwrap().trim(), PEM);
    }

    #[test]
    fn a_refused_configuration_leaves_no_inline_pem_behind() {
        let dir = node("");
        let text = std::fs::read_to_string(dir.path().join("config.toml"))
            .unwrap()
            .replace("node_id = 1", "node_id = 0")
            .replace("key = \"node.key\"", &format!("key = '''\n{PEM}'''"));
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        let p = problems(load(&dir, &[]));
        assert_eq!(p[0].key, "node_id");
        assert!(!dir.path().join("data").exists(), "a refused start must not create the data folder");
    }

    #[test]
    fn debug_output_never_shows_the_bootstrap_hash() {
        let dir = node(&format!("bootstrap_admin_hash = '{HASH}'"));
        let c = load(&dir, &[]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(HASH) && shown.contains("<redacted>"));
    }

    #[test]
    fn object_store_credentials_may_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let vars = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let f = file.to_str().unwrap();
        let got = object_store_options(vars(&[("AWS_REGION", "eu"), ("AWS_SECRET_ACCESS_KEY_FILE", f), ("HOME", "/")]))
            .unwrap();
        assert_eq!(got, vec![("aws_region".into(), "eu".into()), ("aws_secret_access_key".into(), "s3cr3t".into())]);
        let got = object_store_options(vars(&[("AWS_SECRET_ACCESS_KEY", "direct"), ("AWS_SECRET_ACCESS_KEY_FILE", f)]))
            .unwrap();
        assert_eq!(got, vec![("aws_secret_access_key".into(), "direct".into())]);
        let got = object_store_options(vars(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")])).unwrap();
        assert_eq!(got, vec![("aws_web_identity_token_file".into(), "/var/run/token".into())]);
        let e = object_store_options(vars(&[("AWS_SESSION_TOKEN_FILE", "/nonexistent/t")])).unwrap_err();
        assert!(e.starts_with("AWS_SESSION_TOKEN_FILE: cannot read /nonexistent/t"), "{e}");
    }
}
