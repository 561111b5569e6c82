//! The datalab catalogue: definitions loaded from a directory, one TOML file
//! per datalab, and the datalabs users developed (see [`crate::devlabs`]).
//! A file that does not load is reported (file, field, reason) in the log
//! and to administrators, and the rest of the catalogue still serves.
//!
//! Who sees what: the shipped datalabs and the published versions of public
//! developed ones are in [`Catalogue::datalabs`], for everyone; a developed
//! datalab that is shared with named users only is in
//! [`Catalogue::restricted`], with its audience, and is seen (listed,
//! searched, shown) only by its owner and those users
//! ([`Catalogue::visible_to`]). [`Catalogue::audience_keys`] gives the same
//! audience as the discovery index's keys (`public`, `user:<name>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use insitu_api::CatalogueProblem;
use insitu_domain::{DatalabSpec, Username};

use crate::error::Error;
use crate::query::Searchable;

pub const DATALAB_FACETS: [&str; 4] = ["kind", "domain", "mission", "property"];

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// What everyone sees: the valid shipped definitions and the published
    /// developed datalabs, sorted by name.
    pub datalabs: Vec<DatalabSpec>,
    /// Developed datalabs shared with named users only, sorted by name.
    pub restricted: Vec<Restricted>,
    /// What the catalogue shows of each developed datalab, by name.
    pub developed: BTreeMap<String, DevelopedInfo>,
    pub problems: Vec<CatalogueProblem>,
}

/// A developed datalab only its owner and the named users see.
#[derive(Debug, Clone, PartialEq)]
pub struct Restricted {
    pub spec: DatalabSpec,
    pub owner: Username,
    pub users: Vec<Username>,
}

impl Restricted {
    pub fn admits(&self, viewer: &Username) -> bool {
        self.owner == *viewer || self.users.contains(viewer)
    }
}

/// The catalogue's facts about a developed datalab.
#[derive(Debug, Clone, PartialEq)]
pub struct DevelopedInfo {
    pub owner: Username,
    pub author: String,
    /// `published` (public, reviewed) or `shared` (named users only).
    pub state: &'static str,
    /// When the shown version was made (Unix seconds).
    pub modified_at: i64,
    pub stars: i64,
    pub launches: i64,
    /// Published versions, newest first; each stays launchable.
    pub versions: Vec<String>,
}

/// The developed datalabs as the catalogue takes them.
#[derive(Debug, Clone, Default)]
pub struct Developed {
    /// Published versions of public datalabs (the newest of each).
    pub public: Vec<DatalabSpec>,
    pub restricted: Vec<Restricted>,
    pub info: BTreeMap<String, DevelopedInfo>,
}

impl Catalogue {
    /// The datalabs `viewer` sees, sorted by name.
    pub fn visible_to(&self, viewer: &Username) -> Vec<&DatalabSpec> {
        let mut all: Vec<&DatalabSpec> = self
            .datalabs
            .iter()
            .chain(
                self.restricted
                    .iter()
                    .filter(|r| r.admits(viewer))
                    .map(|r| &r.spec),
            )
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The datalab of this name if `viewer` sees it.
    pub fn get_for(&self, viewer: &Username, name: &str) -> Option<&DatalabSpec> {
        self.get(name).or_else(|| {
            self.restricted
                .iter()
                .find(|r| r.spec.name.as_str() == name && r.admits(viewer))
                .map(|r| &r.spec)
        })
    }

    /// Who sees a datalab, as the discovery index's keys: `public` for
    /// everyone, else `user:<name>` for its owner and each named user;
    /// empty when there is no such datalab.
    pub fn audience_keys(&self, name: &str) -> Vec<String> {
        if self.get(name).is_some() {
            return vec!["public".to_owned()];
        }
        self.restricted
            .iter()
            .find(|r| r.spec.name.as_str() == name)
            .map(|r| {
                std::iter::once(&r.owner)
                    .chain(&r.users)
                    .map(|u| format!("user:{u}"))
                    .collect()
            })
            .unwrap_or_default()
    }

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

/// What follows every change of the catalogue (the discovery index).
pub type Follower = Box<dyn Fn(&Catalogue) + Send + Sync>;

/// The catalogue as it was last loaded from its directory (administrators
/// reload it), with the developed datalabs as the platform last set them.
pub struct Datalabs {
    dir: PathBuf,
    shipped: RwLock<Arc<Catalogue>>,
    developed: RwLock<Arc<Developed>>,
    current: RwLock<Arc<Catalogue>>,
    /// Held while a change is composed and told to the followers, so they
    /// see the changes in the order they were made, the last one last.
    followers: Mutex<Vec<Follower>>,
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
        let catalogue = Arc::new(catalogue);
        Datalabs {
            dir: dir.to_path_buf(),
            shipped: RwLock::new(Arc::clone(&catalogue)),
            developed: RwLock::new(Arc::new(Developed::default())),
            current: RwLock::new(catalogue),
            followers: Mutex::new(Vec::new()),
        }
    }

    /// Calls `follower` with the catalogue after every change from now on
    /// (a reload, a developed datalab built, shared or published), before
    /// the change returns.
    pub fn follow(&self, follower: Follower) {
        if let Ok(mut f) = self.followers.lock() {
            f.push(follower);
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
        if let Ok(mut c) = self.shipped.write() {
            *c = fresh;
        }
        self.compose()
    }

    /// Replaces the developed datalabs the catalogue holds.
    pub fn set_developed(&self, developed: Developed) -> Arc<Catalogue> {
        if let Ok(mut d) = self.developed.write() {
            *d = Arc::new(developed);
        }
        self.compose()
    }

    /// The shipped definitions with the developed datalabs added; a
    /// developed one whose name a shipped one took is left out, and said
    /// so among the problems.
    fn compose(&self) -> Arc<Catalogue> {
        let followers = self
            .followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shipped = self
            .shipped
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default();
        let developed = self
            .developed
            .read()
            .map(|d| Arc::clone(&d))
            .unwrap_or_default();
        let mut cat = (*shipped).clone();
        let mut hidden = Vec::new();
        for spec in &developed.public {
            if shipped.get(spec.name.as_str()).is_some() {
                hidden.push(spec.name.to_string());
            } else {
                cat.datalabs.push(spec.clone());
            }
        }
        for r in &developed.restricted {
            if shipped.get(r.spec.name.as_str()).is_some() {
                hidden.push(r.spec.name.to_string());
            } else {
                cat.restricted.push(r.clone());
            }
        }
        for name in hidden {
            cat.problems.push(CatalogueProblem {
                file: format!("developed datalab {name}"),
                field: "name".to_owned(),
                reason: "a shipped definition has this name; the developed datalab is hidden"
                    .to_owned(),
            });
        }
        cat.datalabs.sort_by(|a, b| a.name.cmp(&b.name));
        cat.restricted.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        cat.developed = developed.info.clone();
        let cat = Arc::new(cat);
        if let Ok(mut c) = self.current.write() {
            *c = Arc::clone(&cat);
        }
        for follow in followers.iter() {
            follow(&cat);
        }
        cat
    }

    /// Whether a shipped definition holds this name.
    pub fn is_shipped(&self, name: &str) -> bool {
        self.shipped.read().is_ok_and(|c| c.get(name).is_some())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use insitu_domain::devlab::Template;

    fn spec(name: &str) -> DatalabSpec {
        Template::WebTool
            .definition("A tool", "Ada")
            .spec(&name.parse().unwrap(), Some("localhost/insitu-devlab/x:1"))
            .unwrap()
    }

    fn user(name: &str) -> Username {
        name.parse().unwrap()
    }

    #[test]
    fn a_shared_datalab_is_seen_by_its_audience_only_and_a_shipped_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shipped.toml"),
            "title = \"Shipped\"\ndescription = \"\"\nversion = \"1\"\nkind = \"web\"\nlicense = \"MIT\"\n[launch]\ncommand = [\"x\"]\n",
        )
        .unwrap();
        let datalabs = Datalabs::load(dir.path());
        let cat = datalabs.set_developed(Developed {
            public: vec![spec("published"), spec("shipped")],
            restricted: vec![Restricted {
                spec: spec("private"),
                owner: user("ada"),
                users: vec![user("bob")],
            }],
            info: BTreeMap::new(),
        });
        let names = |viewer: &str| -> Vec<String> {
            cat.visible_to(&user(viewer))
                .iter()
                .map(|d| d.name.to_string())
                .collect()
        };
        assert_eq!(names("ada"), ["private", "published", "shipped"]);
        assert_eq!(names("bob"), ["private", "published", "shipped"]);
        assert_eq!(names("eve"), ["published", "shipped"]);
        assert!(cat.get_for(&user("eve"), "private").is_none());
        assert!(cat.get_for(&user("bob"), "private").is_some());
        assert!(cat.get("private").is_none(), "never in everyone's list");
        assert_eq!(cat.audience_keys("private"), ["user:ada", "user:bob"]);
        assert_eq!(cat.audience_keys("published"), ["public"]);
        assert!(cat.audience_keys("nothing").is_empty());
        // The shipped definition keeps its name; the developed one is a
        // problem an administrator sees.
        assert_eq!(cat.get("shipped").unwrap().title, "Shipped");
        assert!(cat.problems.iter().any(|p| p.file.contains("shipped")));
        // A reload of the shipped catalogue keeps the developed datalabs.
        let cat = datalabs.reload();
        assert!(cat.get("published").is_some());
    }
}
