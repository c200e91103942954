//! Target models' media across runs (`dpusim --target-media DIR`): each
//! namespace of each target model is the file `DIR/<target>.ns<nsid>.media`
//! (format: `net::nvmf_target::store::Namespace::save`), loaded at start
//! when it exists and written back when the run ends, as `--flash` keeps
//! the card's flash. A second run on the same directory is a restart of
//! the card (and of the targets) with the data the first one left.

use crate::machine::Machine;
use std::path::{Path, PathBuf};

/// The file of namespace `nsid` of target `target`.
pub fn media_file(dir: &Path, target: &str, nsid: usize) -> PathBuf {
    dir.join(format!("{target}.ns{nsid}.media"))
}

impl Machine {
    /// Loads every target namespace whose file exists in `dir`; returns
    /// how many were loaded. A file that does not fit its namespace is an
    /// error naming it.
    pub fn load_target_media(&mut self, dir: &Path) -> Result<usize, String> {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        let mut n = 0;
        for t in &mut self.bus.net.targets {
            let name = t.params.name.clone();
            for (i, ns) in t.subsystem.namespaces.iter_mut().enumerate() {
                let f = media_file(dir, &name, i + 1);
                let bytes = match std::fs::read(&f) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("{}: {e}", f.display())),
                };
                ns.load(&bytes).map_err(|e| format!("{}: {e}", f.display()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes every target namespace to its file in `dir` (created if
    /// missing); returns how many.
    pub fn save_target_media(&self, dir: &Path) -> Result<usize, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut n = 0;
        for t in &self.bus.net.targets {
            for (i, ns) in t.subsystem.namespaces.iter().enumerate() {
                let f = media_file(dir, &t.params.name, i + 1);
                // Through a temporary file: a run stopped half way leaves
                // the old medium or the new one, never half of each.
                let tmp = f.with_extension("media.tmp");
                std::fs::write(&tmp, ns.save()).and_then(|_| std::fs::rename(&tmp, &f)).map_err(|e| format!("{}: {e}", f.display()))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
