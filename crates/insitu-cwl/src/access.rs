//! Where a run may read: documents, job orders and input Files and
//! Directories, under the roots a confined run allows (links resolved) and
//! the run's own directory; anywhere for a user's own run.

use crate::error::{CwlError, Result};
use crate::files::{self, Entry};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The directories a run may read from, canonical; `None` for anywhere.
#[derive(Clone, Debug, Default)]
pub struct Access {
    roots: Option<Vec<PathBuf>>,
}

impl Access {
    /// Anywhere the engine can read.
    pub fn anywhere() -> Access {
        Access::default()
    }

    /// Only under `roots`, which must exist.
    pub fn within(roots: &[PathBuf]) -> Result<Access> {
        let roots = roots
            .iter()
            .map(|r| {
                std::fs::canonicalize(r)
                    .map_err(|e| CwlError::Input(format!("--allow-root {}: {e}", r.display())))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Access { roots: Some(roots) })
    }

    /// The same, and `dir` (a run's own directory) too.
    pub fn and(&self, dir: &Path) -> Result<Access> {
        let mut a = self.clone();
        if let Some(roots) = &mut a.roots {
            roots.push(std::fs::canonicalize(dir)?);
        }
        Ok(a)
    }

    /// Whether reading is limited at all.
    pub fn is_limited(&self) -> bool {
        self.roots.is_some()
    }

    /// Whether `target` (canonical) lies under a root.
    fn allows(&self, target: &Path) -> bool {
        self.roots
            .as_ref()
            .is_none_or(|roots| roots.iter().any(|r| target.starts_with(r)))
    }

    /// `p` (`what`: a document, an input, …), links resolved, may be read.
    pub fn check(&self, what: &str, p: &Path) -> Result<()> {
        if !self.is_limited() {
            return Ok(());
        }
        let target = std::fs::canonicalize(p)
            .map_err(|e| CwlError::Input(format!("{what} {}: {e}", p.display())))?;
        if self.allows(&target) {
            return Ok(());
        }
        Err(CwlError::Input(format!(
            "{what} {} leads to {}, outside the directories this run may read (--allow-root)",
            p.display(),
            target.display()
        )))
    }

    /// Every File and Directory in `v` (listings and secondary files too)
    /// may be read: its `location` when local, else its `path`.
    pub fn check_value(&self, what: &str, v: &Value) -> Result<()> {
        if !self.is_limited() {
            return Ok(());
        }
        let mut paths = vec![];
        files::visit(v, &mut |e: Entry<'_>| {
            paths.extend(e.local_path().or_else(|| e.path().map(PathBuf::from)));
        });
        paths.iter().try_for_each(|p| self.check(what, p))
    }

    /// The rule for the links a copy may follow ([`files::copy_tree`]).
    pub fn follow(&self) -> impl Fn(&Path, &Path) -> bool + Sync + '_ {
        move |_, target| self.allows(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_lies_under_the_roots_links_resolved() {
        let t = tempfile::tempdir().unwrap();
        let (root, out) = (t.path().join("root"), t.path().join("out"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(root.join("in.txt"), "").unwrap();
        std::fs::write(out.join("secret"), "").unwrap();
        std::os::unix::fs::symlink(out.join("secret"), root.join("link")).unwrap();
        let a = Access::within(std::slice::from_ref(&root)).unwrap();
        a.check("input", &root.join("in.txt")).unwrap();
        for bad in [
            out.join("secret"),
            root.join("link"),
            root.join("../out/secret"),
        ] {
            let e = a.check("input", &bad).unwrap_err().to_string();
            assert!(
                e.contains("outside the directories this run may read"),
                "{e}"
            );
        }
        let v = json!({"x": [{"class": "File", "location": files::path_to_loc(&root.join("in.txt")),
            "secondaryFiles": [{"class": "File", "path": out.join("secret")}]}]});
        assert!(a.check_value("input", &v).is_err());
        assert!(a.and(&out).unwrap().check_value("input", &v).is_ok());
        assert!(Access::anywhere().check_value("input", &v).is_ok());
        assert!(Access::within(&[t.path().join("missing")]).is_err());
    }
}
