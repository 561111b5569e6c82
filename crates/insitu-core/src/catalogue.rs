//! The datalab catalogue: definitions loaded from a directory, one TOML file
//! per datalab. A file that does not load is reported (file, field, reason)
//! in the log and to administrators, and the rest of the catalogue still
//! serves.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use insitu_api::CatalogueProblem;
use insitu_domain::DatalabSpec;

use crate::error::Error;
use crate::query::Searchable;

pub const DATALAB_FACETS: [&str; 4] = ["kind", "domain", "mission", "property"];

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// Valid definitions, sorted by name.
    pub datalabs: Vec<DatalabSpec>,
    pub problems: Vec<CatalogueProblem>,
}

impl Catalogue {
    pub fn get(&self, name: &str) -> Option<&DatalabSpec> {
        self.datalabs
            .binary_search_by(|d| d.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.datalabs[i])
    }

    /// The datalab of this name, or why there is none.
    pub fn datalab(&self, name: &str) -> Result<&DatalabSpec, Error> {
        self.get(name)
            .ok_or_else(|| Error::DatalabNotFound(name.to_owned()))
    }
}

/// The catalogue as it was last loaded from its directory; administrators
/// reload it.
pub struct Datalabs {
    dir: PathBuf,
    current: RwLock<Arc<Catalogue>>,
}

impl Datalabs {
    /// Loads the catalogue from `dir`, logging what it found.
    pub fn load(dir: &Path) -> Datalabs {
        let catalogue = load_catalogue(dir);
        tracing::info!(
            datalabs = catalogue.datalabs.len(),
            problems = catalogue.problems.len(),
            dir = %dir.display(),
            "datalab catalogue loaded"
        );
        Datalabs {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(catalogue)),
        }
    }

    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.current
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    pub fn reload(&self) -> Arc<Catalogue> {
        let fresh = Arc::new(load_catalogue(&self.dir));
        if let Ok(mut c) = self.current.write() {
            *c = Arc::clone(&fresh);
        }
        fresh
    }
}

/// Loads every `*.toml` file of `dir`.
pub fn load_catalogue(dir: &Path) -> Catalogue {
    let mut cat = Catalogue::default();
    let mut problem = |file: &Path, field: &str, reason: String| {
        tracing::warn!(file = %file.display(), field, reason = %reason, "invalid datalab definition");
        cat.problems.push(CatalogueProblem {
            file: file.display().to_string(),
            field: field.to_owned(),
            reason,
        });
    };
    let mut datalabs = Vec::new();
    match std::fs::read_dir(dir) {
        Err(e) => problem(
            dir,
            "directory",
            format!("cannot read the catalogue directory: {e}"),
        ),
        Ok(entries) => {
            let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                    continue;
                }
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        problem(&path, "file", format!("cannot read: {e}"));
                        continue;
                    }
                };
                match DatalabSpec::from_toml(&stem, &text) {
                    Ok(spec) => datalabs.push(spec),
                    Err(errors) => {
                        for e in errors {
                            problem(&path, &e.field, e.reason);
                        }
                    }
                }
            }
        }
    }
    datalabs.sort_by(|a, b| a.name.cmp(&b.name));
    cat.datalabs = datalabs;
    cat
}

impl Searchable for DatalabSpec {
    fn text(&self) -> String {
        let mut s = format!("{} {} {} ", self.name, self.title, self.description);
        for (_, v) in self.tag_pairs() {
            s.push_str(v);
            s.push(' ');
        }
        s.to_lowercase()
    }

    fn facet_values(&self, facet: &str) -> Vec<String> {
        match facet {
            "kind" => vec![self.kind.as_str().to_owned()],
            "domain" => self.tags.domain.clone(),
            "mission" => self.tags.mission.clone(),
            "property" => self
                .tags
                .properties
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            _ => Vec::new(),
        }
    }
}
