//! The catalog: the replicated state of the cluster as seen by one node, stored in the state
//! machine's key space.
//!
//! Only the state machine writes it (through [`Catalog::apply`], in log order); everyone else reads.
//! Keys are namespaced by a prefix (`setting/`, and later `file/`, `account/`, …) so that a
//! snapshot is simply every key of the tree.

use std::collections::BTreeMap;

use crate::store::engine::{Tree, WriteBatch};
use crate::types::{Command, CommandResult};

const SETTING_PREFIX: &str = "setting/";

/// Read access to the catalog; cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    tree: Tree,
}

impl Catalog {
    pub(crate) fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// One cluster setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, crate::Error> {
        self.tree.get_string(&format!("{SETTING_PREFIX}{key}"))
    }

    /// Every cluster setting, ordered by key.
    pub fn settings(&self) -> Result<BTreeMap<String, String>, crate::Error> {
        let mut out = BTreeMap::new();
        for (k, v) in self.tree.scan_prefix(SETTING_PREFIX.as_bytes())? {
            let key = String::from_utf8_lossy(&k[SETTING_PREFIX.len()..]).into_owned();
            out.insert(key, String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }

    /// Applies one command: records its writes in `batch` and returns its result. Deterministic:
    /// the same command on the same catalog gives the same writes on every node.
    pub(crate) fn apply(&self, command: &Command, batch: &mut WriteBatch) -> Result<CommandResult, crate::Error> {
        match command {
            Command::SetSetting { key, value } => {
                let previous = self.setting(key)?;
                batch.put(format!("{SETTING_PREFIX}{key}").into_bytes(), value.clone().into_bytes());
                Ok(CommandResult { log_index: 0, previous })
            }
            Command::DeleteSetting { key } => {
                let previous = self.setting(key)?;
                batch.delete(format!("{SETTING_PREFIX}{key}").into_bytes());
                Ok(CommandResult { log_index: 0, previous })
            }
        }
    }
}
