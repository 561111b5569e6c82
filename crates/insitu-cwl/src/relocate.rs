//! Outputs into the output directory: files of the run's own directory are
//! moved, anything else (inputs returned as outputs, files inside output
//! directories) is copied, and every location is rewritten, with `sha1`
//! checksums added.

use crate::error::Result;
use crate::files::{self, Entry, Follow};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Move or copy the Files and Directories of output object `out` into
/// `outdir` (made if missing), rewrite their locations and add checksums.
/// Files under `movable` (the run's own directory) that no output
/// directory holds are moved; everything else is copied, following only
/// the links `follow` accepts.
pub fn relocate_outputs(
    out: &mut Value,
    outdir: &Path,
    movable: Option<PathBuf>,
    follow: Follow<'_>,
) -> Result<()> {
    std::fs::create_dir_all(outdir)?;
    let outdir = std::fs::canonicalize(outdir)?;
    let mut seen = Relocation {
        movable,
        ..Relocation::default()
    };
    seen.survey(out);
    relocate(out, &outdir, &mut seen, follow)?;
    files::add_checksums(out)
}

/// Where outputs went so far: by source, and the next free suffix per name
/// (so a thousand `out.txt` cost a thousand lookups, not half a million).
#[derive(Default)]
struct Relocation {
    by_source: std::collections::HashMap<PathBuf, PathBuf>,
    next_suffix: std::collections::HashMap<String, usize>,
    /// The run's own directory, whose files are moved rather than copied
    /// (`None` when they are still needed afterwards, for provenance).
    movable: Option<PathBuf>,
    /// Directories among the outputs: files inside them are copied, so
    /// that the directories stay whole.
    directories: Vec<PathBuf>,
    /// The canonical path of every output's location, taken before
    /// anything moves (a link to a moved file no longer resolves).
    canonical: std::collections::HashMap<PathBuf, PathBuf>,
}

impl Relocation {
    /// Note the canonical paths of the outputs in `v`, and its directories.
    fn survey(&mut self, v: &Value) {
        files::visit(v, &mut |e: Entry<'_>| {
            let Some(p) = e.location().map(files::loc_to_path) else {
                return;
            };
            if let Ok(c) = std::fs::canonicalize(&p) {
                if e.is_directory() {
                    self.directories.push(c.clone());
                }
                self.canonical.insert(p, c);
            }
        });
    }

    /// The canonical path of output location `p` (as surveyed).
    fn canonical(&self, p: &Path) -> Option<PathBuf> {
        self.canonical
            .get(p)
            .cloned()
            .or_else(|| std::fs::canonicalize(p).ok())
    }
}

/// Move output files into the output directory and rewrite their locations.
fn relocate(v: &mut Value, outdir: &Path, seen: &mut Relocation, follow: Follow<'_>) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                relocate(x, outdir, seen, follow)?;
            }
        }
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_string);
            if matches!(class.as_deref(), Some("File") | Some("Directory")) {
                let base = files::checked_basename(
                    Entry::of_map(m).and_then(|e| e.basename()).as_deref(),
                )?;
                let mut target = outdir.join(&base);
                let mut k = seen.next_suffix.get(&base).copied().unwrap_or(1);
                let src = m
                    .get("location")
                    .and_then(Value::as_str)
                    .map(files::loc_to_path);
                let key = src.as_ref().map(|p| seen.canonical(p).unwrap_or(p.clone()));
                let reused = key.as_ref().and_then(|p| seen.by_source.get(p)).cloned();
                if let Some(t) = &reused {
                    target = t.clone();
                }
                if reused.is_none() && k > 1 {
                    target = outdir.join(format!("{base}_{}", k - 1));
                }
                while reused.is_none() && target.symlink_metadata().is_ok() {
                    if src.as_deref() == Some(target.as_path()) {
                        break;
                    }
                    target = outdir.join(format!("{base}_{k}"));
                    k += 1;
                }
                if reused.is_none() {
                    seen.next_suffix.insert(base.clone(), k);
                }
                let tv = Value::Object(m.clone());
                let mut lit = tv.clone();
                if let Value::Object(lm) = &mut lit {
                    lm.remove("secondaryFiles");
                }
                if reused.is_none() && src.as_deref() != Some(target.as_path()) {
                    // A file of the run's own directory that no output
                    // directory holds may be moved.
                    let movable = key.as_ref().is_some_and(|c| {
                        seen.movable
                            .as_ref()
                            .is_some_and(|root| c.starts_with(root))
                            && !seen.directories.iter().any(|d| c.starts_with(d))
                    });
                    write_out(&lit, &target, movable, follow)?;
                    if let Some(sp) = &key {
                        seen.by_source.insert(sp.clone(), target.clone());
                    }
                }
                m.insert(
                    "location".into(),
                    Value::String(files::path_to_loc(&target)),
                );
                m.insert("path".into(), Value::String(target.display().to_string()));
                m.insert("basename".into(), Value::String(files::basename(&target)));
                if class.as_deref() == Some("Directory") {
                    m.insert(
                        "listing".into(),
                        Value::Array(files::list_dir(&target, true)?),
                    );
                    let mut l = m.get("listing").cloned().unwrap_or(Value::Null);
                    files::fill_fs(&mut l, "deep_listing")?;
                    m.insert("listing".into(), l);
                } else {
                    m.remove("contents");
                }
                if let Some(Value::Array(sf)) = m.get_mut("secondaryFiles") {
                    for s in sf.iter_mut() {
                        relocate(s, outdir, seen, follow)?;
                    }
                }
                let mut tmpv = Value::Object(m.clone());
                files::fill_fs(&mut tmpv, "no_listing")?;
                if let Value::Object(nm) = tmpv {
                    *m = nm;
                }
            } else {
                for (_, x) in m.iter_mut() {
                    relocate(x, outdir, seen, follow)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn write_out(v: &Value, target: &Path, movable: bool, follow: Follow<'_>) -> Result<()> {
    let class = v.get("class").and_then(Value::as_str).unwrap_or("File");
    if let Some(loc) = v.get("location").and_then(Value::as_str) {
        let src = files::loc_to_path(loc);
        // A regular file that may move is renamed (on the same file
        // system); anything else is copied.
        let moved = movable
            && src.symlink_metadata().is_ok_and(|m| m.is_file())
            && std::fs::rename(&src, target).is_ok();
        if !moved {
            files::copy_tree(&src, target, follow)?;
        }
        if class == "Directory" && !src.exists() {
            std::fs::create_dir_all(target)?;
        }
    } else if class == "File" {
        std::fs::write(
            target,
            v.get("contents").and_then(Value::as_str).unwrap_or(""),
        )?;
    } else {
        std::fs::create_dir_all(target)?;
        for e in v
            .get("listing")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let b = files::checked_basename(Entry::of(e).and_then(|e| e.basename()).as_deref())?;
            write_out(e, &target.join(b), false, follow)?;
        }
    }
    Ok(())
}
