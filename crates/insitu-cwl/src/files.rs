//! File and Directory objects: a typed view over their JSON ([`Entry`],
//! [`File`], [`Directory`]), normalisation of their fields, listings,
//! checksums, secondary-file patterns, and the one tree copy the engine
//! makes ([`copy_tree`]), which never loops on links.

use crate::error::{CwlError, Result};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A File object of the JSON, read through its fields.
#[derive(Clone, Copy, Debug)]
pub struct File<'a>(&'a Map<String, Value>);

/// A Directory object of the JSON, read through its fields.
#[derive(Clone, Copy, Debug)]
pub struct Directory<'a>(&'a Map<String, Value>);

/// A File or a Directory.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    File(File<'a>),
    Directory(Directory<'a>),
}

impl<'a> Entry<'a> {
    /// The view of `v` when it is a File or Directory object.
    pub fn of(v: &'a Value) -> Option<Entry<'a>> {
        v.as_object().and_then(Entry::of_map)
    }

    /// The view of an object when its `class` is File or Directory.
    pub fn of_map(m: &'a Map<String, Value>) -> Option<Entry<'a>> {
        match m.get("class").and_then(Value::as_str) {
            Some("File") => Some(Entry::File(File(m))),
            Some("Directory") => Some(Entry::Directory(Directory(m))),
            _ => None,
        }
    }

    fn fields(&self) -> &'a Map<String, Value> {
        match self {
            Entry::File(File(m)) | Entry::Directory(Directory(m)) => m,
        }
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.fields().get(key).and_then(Value::as_str)
    }

    /// Whether this is a Directory.
    pub fn is_directory(&self) -> bool {
        matches!(self, Entry::Directory(_))
    }

    /// `location`, as written.
    pub fn location(&self) -> Option<&'a str> {
        self.str("location")
    }

    /// The host path of a local `location` (`file://` or absolute), decoded.
    pub fn local_path(&self) -> Option<PathBuf> {
        self.location()
            .filter(|l| l.starts_with("file://") || l.starts_with('/'))
            .map(loc_to_path)
    }

    /// `path`, as written (where the tool sees it once staged).
    pub fn path(&self) -> Option<&'a str> {
        self.str("path")
    }

    /// `basename`, else the last segment of `location`.
    pub fn basename(&self) -> Option<String> {
        self.str("basename")
            .map(str::to_string)
            .or_else(|| self.location().map(|l| basename(&loc_to_path(l))))
    }

    /// A literal File's `contents`.
    pub fn contents(&self) -> Option<&'a str> {
        self.str("contents")
    }

    /// The entries of a Directory's `listing`, or a File's `secondaryFiles`.
    pub fn children(self) -> impl Iterator<Item = Entry<'a>> + 'a {
        let key = match self {
            Entry::File(_) => "secondaryFiles",
            Entry::Directory(_) => "listing",
        };
        self.fields()
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Entry::of)
    }
}

impl<'a> File<'a> {
    /// The view as an [`Entry`].
    pub fn entry(self) -> Entry<'a> {
        Entry::File(self)
    }

    /// The secondary files attached to this file.
    pub fn secondary_files(self) -> impl Iterator<Item = Entry<'a>> + 'a {
        self.entry().children()
    }
}

impl<'a> Directory<'a> {
    /// The view as an [`Entry`].
    pub fn entry(self) -> Entry<'a> {
        Entry::Directory(self)
    }

    /// The entries of its `listing`, when it has one.
    pub fn listing(self) -> impl Iterator<Item = Entry<'a>> + 'a {
        self.entry().children()
    }
}

/// Every File and Directory in `v`, at any depth (those inside listings
/// and secondary files too), in document order.
pub fn visit<'a>(v: &'a Value, f: &mut impl FnMut(Entry<'a>)) {
    match v {
        Value::Object(m) => {
            if let Some(e) = Entry::of_map(m) {
                f(e);
            }
            m.values().for_each(|x| visit(x, f));
        }
        Value::Array(a) => a.iter().for_each(|x| visit(x, f)),
        _ => {}
    }
}

/// A basename to make a file under: one plain path component (not empty,
/// no `/`, neither `.` nor `..`), "unnamed" when there is none. A File's
/// `basename` comes from documents, job orders and tools' output objects:
/// it must never lead the engine to write elsewhere.
pub fn checked_basename(name: Option<&str>) -> Result<String> {
    match name {
        None => Ok("unnamed".into()),
        Some(n) if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.contains('\0') => {
            Err(CwlError::Input(format!(
                "basename {n:?} is not a plain file name"
            )))
        }
        Some(n) => Ok(n.to_string()),
    }
}

/// The last component of a path, lossily as text ("" for `/` or `..`).
pub fn basename(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Path of a `file://` location (or a plain path).
pub fn loc_to_path(loc: &str) -> PathBuf {
    let p = loc.strip_prefix("file://").unwrap_or(loc);
    PathBuf::from(percent_decode(p))
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `file://` URI of a path.
pub fn path_to_loc(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Split a basename into `(nameroot, nameext)`.
pub fn split_name(base: &str) -> (String, String) {
    match base.rfind('.') {
        Some(i) if i > 0 => (base[..i].to_string(), base[i..].to_string()),
        _ => (base.to_string(), String::new()),
    }
}

/// SHA-1 of a file, as `sha1$hex`.
pub fn checksum(p: &Path) -> Result<String> {
    Ok(format!("sha1${}", sha1_hex(p)?))
}

/// SHA-1 of a file's bytes, in hex.
pub fn sha1_hex(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Read up to 64 KiB of a file for `loadContents`.
pub fn load_contents(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)
        .map_err(|e| CwlError::Input(format!("{}: cannot read: {e}", p.display())))?;
    let mut buf = vec![0u8; 64 * 1024 + 1];
    let mut n = 0;
    loop {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if n == buf.len() {
            break;
        }
    }
    if n > 64 * 1024 {
        return Err(CwlError::Input(format!(
            "{}: loadContents: file is larger than 64 KiB",
            p.display()
        )));
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Fill in `path`, `basename`, `nameroot`, `nameext`, `size` of File and
/// Directory objects (recursively), optionally listing directories.
/// `listing` is "no_listing", "shallow_listing" or "deep_listing".
pub fn fill_fs(v: &mut Value, listing: &str) -> Result<()> {
    match v {
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_string);
            match class.as_deref() {
                Some("File") => fill_file(m)?,
                Some("Directory") => fill_dir(m, listing)?,
                _ => {
                    for (_, x) in m.iter_mut() {
                        fill_fs(x, listing)?;
                    }
                }
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                fill_fs(x, listing)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn fill_file(m: &mut Map<String, Value>) -> Result<()> {
    if m.get("location").is_none()
        && let Some(Value::String(p)) = m.get("path").cloned()
    {
        m.insert("location".into(), Value::String(path_to_loc(Path::new(&p))));
    }
    let loc = m
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(loc) = &loc {
        if loc.starts_with("file://") || loc.starts_with('/') {
            let p = loc_to_path(loc);
            m.insert("path".into(), Value::String(p.display().to_string()));
            if let Some(d) = p.parent() {
                m.insert("dirname".into(), Value::String(d.display().to_string()));
            }
            if !m.contains_key("basename") {
                m.insert("basename".into(), Value::String(basename(&p)));
            }
            if let Ok(md) = std::fs::metadata(&p) {
                m.insert("size".into(), Value::from(md.len()));
            } else {
                return Err(CwlError::Input(format!("File not found: {}", p.display())));
            }
        }
    } else if m.get("contents").is_none() {
        return Err(CwlError::Input(
            "File object without location, path or contents".into(),
        ));
    } else if !m.contains_key("basename") {
        m.insert("basename".into(), Value::String("literal.txt".into()));
    }
    if let Some(b) = m.get("basename").and_then(Value::as_str) {
        let (r, e) = split_name(b);
        m.insert("nameroot".into(), Value::String(r));
        m.insert("nameext".into(), Value::String(e));
    }
    if let Some(Value::Array(sf)) = m.get_mut("secondaryFiles") {
        for x in sf.iter_mut() {
            fill_fs(x, "no_listing")?;
        }
    }
    Ok(())
}

fn fill_dir(m: &mut Map<String, Value>, listing: &str) -> Result<()> {
    if m.get("location").is_none()
        && let Some(Value::String(p)) = m.get("path").cloned()
    {
        m.insert("location".into(), Value::String(path_to_loc(Path::new(&p))));
    }
    let loc = m
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut listed = false;
    if let Some(loc) = loc {
        let p = loc_to_path(&loc);
        if !p.is_dir() {
            return Err(CwlError::Input(format!(
                "Directory not found: {}",
                p.display()
            )));
        }
        m.insert("path".into(), Value::String(p.display().to_string()));
        if !m.contains_key("basename") {
            m.insert("basename".into(), Value::String(basename(&p)));
        }
        if listing != "no_listing" {
            m.insert(
                "listing".into(),
                Value::Array(list_dir(&p, listing == "deep_listing")?),
            );
            // A deep listing is complete: its entries need their fields only.
            listed = true;
        }
    } else if !m.contains_key("basename") {
        m.insert("basename".into(), Value::String("dir".into()));
    }
    if let Some(Value::Array(l)) = m.get_mut("listing") {
        let sub = if listing == "deep_listing" && !listed {
            "deep_listing"
        } else {
            "no_listing"
        };
        for x in l.iter_mut() {
            fill_fs(x, sub)?;
        }
    }
    Ok(())
}

/// List a directory as CWL objects (sorted by name); `deep` lists its
/// subdirectories too, following links, and fails on a link that leads
/// back to a directory being listed.
pub fn list_dir(p: &Path, deep: bool) -> Result<Vec<Value>> {
    let mut ancestors = vec![dir_id(p)?];
    list_dir_in(p, deep, &mut ancestors)
}

fn list_dir_in(p: &Path, deep: bool, ancestors: &mut Vec<DirId>) -> Result<Vec<Value>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(p)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut out = vec![];
    for n in names {
        let base = basename(&n);
        if n.is_dir() {
            let mut d =
                json!({"class": "Directory", "location": path_to_loc(&n), "basename": base});
            if deep {
                let id = dir_id(&n)?;
                if ancestors.contains(&id) {
                    return Err(link_loop(&n));
                }
                if ancestors.len() > MAX_TREE_DEPTH {
                    return Err(too_deep(&n));
                }
                ancestors.push(id);
                let listing = list_dir_in(&n, true, ancestors);
                ancestors.pop();
                d["listing"] = Value::Array(listing?);
            }
            out.push(d);
        } else {
            out.push(json!({"class": "File", "location": path_to_loc(&n), "basename": base}));
        }
    }
    Ok(out)
}

/// Deepest directory tree listed or copied (a real one is far shallower;
/// the limit keeps the recursion off the end of the stack).
const MAX_TREE_DEPTH: usize = 256;

/// A directory's identity: its device and inode (links followed).
type DirId = (u64, u64);

fn dir_id(p: &Path) -> Result<DirId> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p)?;
    Ok((md.dev(), md.ino()))
}

fn link_loop(p: &Path) -> CwlError {
    CwlError::Io(std::io::Error::other(format!(
        "{}: link loop: it leads back to a directory that contains it",
        p.display()
    )))
}

fn too_deep(p: &Path) -> CwlError {
    CwlError::Io(std::io::Error::other(format!(
        "{}: directory tree deeper than {MAX_TREE_DEPTH} levels",
        p.display()
    )))
}

/// Which links a copy may follow: given a link and where it leads
/// (canonical), whether it may.
pub type Follow<'a> = &'a (dyn Fn(&Path, &Path) -> bool + Sync);

/// Follow every link.
pub const ANY_LINK: Follow<'static> = &|_, _| true;

/// Follow the links that lead inside one of `roots` (canonical paths).
pub fn inside(roots: &[PathBuf]) -> impl Fn(&Path, &Path) -> bool + Sync + '_ {
    move |_, target| roots.iter().any(|r| target.starts_with(r))
}

/// Copy a file, or a directory tree following its links, from `src` to
/// `dst`. Inside a tree, dangling links and anything neither a file nor a
/// directory (sockets, pipes, devices) are left out; at the top such a
/// `src` is an error, as is a link that leads back to a directory being
/// copied (a loop). Every link on the way (and `src`, when a link is on its
/// path) must be one `follow` accepts, or the copy fails.
pub fn copy_tree(src: &Path, dst: &Path, follow: Follow<'_>) -> Result<()> {
    let md = std::fs::metadata(src).map_err(|e| {
        CwlError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", src.display()),
        ))
    })?;
    let target = std::fs::canonicalize(src)?;
    if target != src {
        check_link(src, &target, follow)?;
    }
    if md.is_dir() {
        let mut ancestors = vec![dir_id(src)?];
        copy_dir(src, dst, follow, &mut ancestors)
    } else if md.is_file() {
        std::fs::copy(src, dst)?;
        Ok(())
    } else {
        Err(CwlError::Io(std::io::Error::other(format!(
            "{}: neither a file nor a directory",
            src.display()
        ))))
    }
}

fn copy_dir(src: &Path, dst: &Path, follow: Follow<'_>, ancestors: &mut Vec<DirId>) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let child = e.path();
        let Ok(md) = std::fs::metadata(&child) else {
            continue;
        };
        if e.file_type()?.is_symlink() {
            check_link(&child, &std::fs::canonicalize(&child)?, follow)?;
        }
        let to = dst.join(e.file_name());
        if md.is_dir() {
            let id = dir_id(&child)?;
            if ancestors.contains(&id) {
                return Err(link_loop(&child));
            }
            if ancestors.len() > MAX_TREE_DEPTH {
                return Err(too_deep(&child));
            }
            ancestors.push(id);
            let copied = copy_dir(&child, &to, follow, ancestors);
            ancestors.pop();
            copied?;
        } else if md.is_file() {
            std::fs::copy(&child, &to)?;
        }
    }
    Ok(())
}

fn check_link(link: &Path, target: &Path, follow: Follow<'_>) -> Result<()> {
    if follow(link, target) {
        return Ok(());
    }
    Err(CwlError::Execution(format!(
        "{} leads to {}, outside the directories this run may read",
        link.display(),
        target.display()
    )))
}

/// Add `checksum` and `size` to every File in an output value.
pub fn add_checksums(v: &mut Value) -> Result<()> {
    match v {
        Value::Object(m) => {
            if m.get("class").and_then(Value::as_str) == Some("File")
                && let Some(loc) = m.get("location").and_then(Value::as_str)
            {
                let p = loc_to_path(loc);
                if p.is_file() {
                    m.insert("checksum".into(), Value::String(checksum(&p)?));
                    m.insert("size".into(), Value::from(std::fs::metadata(&p)?.len()));
                }
            }
            for (_, x) in m.iter_mut() {
                add_checksums(x)?;
            }
        }
        Value::Array(a) => {
            for x in a {
                add_checksums(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compute a secondary-file name from a pattern (`^` strips an extension).
pub fn secondary_name(primary_base: &str, pattern: &str) -> String {
    let mut base = primary_base.to_string();
    let mut pat = pattern;
    while let Some(rest) = pat.strip_prefix('^') {
        if let Some(i) = base.rfind('.') {
            base.truncate(i);
        }
        pat = rest;
    }
    base + pat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_patterns() {
        assert_eq!(secondary_name("a.bam", ".bai"), "a.bam.bai");
        assert_eq!(secondary_name("a.bam", "^.bai"), "a.bai");
        assert_eq!(secondary_name("a.b.c", "^^.d"), "a.d");
    }

    #[test]
    fn the_view_reads_files_and_directories() {
        let v = json!({"out": [
            {"class": "File", "location": "file:///data/a%20b.txt",
             "secondaryFiles": [{"class": "File", "location": "file:///data/a.idx"}]},
            {"class": "Directory", "basename": "named", "location": "file:///d",
             "listing": [{"class": "File", "contents": "x", "basename": "lit"}]},
            {"class": "Other", "location": "file:///never"}
        ]});
        let mut seen = vec![];
        visit(&v, &mut |e| {
            seen.push((e.is_directory(), e.basename(), e.local_path()));
        });
        assert_eq!(
            seen,
            [
                (false, Some("a b.txt".into()), Some("/data/a b.txt".into())),
                (false, Some("a.idx".into()), Some("/data/a.idx".into())),
                (true, Some("named".into()), Some("/d".into())),
                (false, Some("lit".into()), None),
            ]
        );
        let Some(Entry::File(f)) = Entry::of(&v["out"][0]) else {
            panic!("a File")
        };
        assert_eq!(f.secondary_files().count(), 1);
        let Some(Entry::Directory(d)) = Entry::of(&v["out"][1]) else {
            panic!("a Directory")
        };
        assert_eq!(d.listing().filter_map(|e| e.contents()).count(), 1);
        assert!(Entry::of(&v["out"][2]).is_none());
        assert_eq!(basename(Path::new("/")), "");
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("src/sub")).unwrap();
        std::fs::write(t.path().join("src/sub/f.txt"), "f").unwrap();
        std::os::unix::fs::symlink("sub/f.txt", t.path().join("src/link.txt")).unwrap();
        std::os::unix::fs::symlink("gone", t.path().join("src/dangling")).unwrap();
        t
    }

    #[test]
    fn copies_follow_links_and_leave_dangling_ones_out() {
        let t = tree();
        copy_tree(&t.path().join("src"), &t.path().join("dst"), ANY_LINK).unwrap();
        let dst = t.path().join("dst");
        assert_eq!(std::fs::read_to_string(dst.join("sub/f.txt")).unwrap(), "f");
        assert!(!dst.join("link.txt").is_symlink());
        assert_eq!(std::fs::read_to_string(dst.join("link.txt")).unwrap(), "f");
        assert!(dst.join("dangling").symlink_metadata().is_err());
    }

    #[test]
    fn link_loops_end_with_an_error() {
        let t = tree();
        std::os::unix::fs::symlink("..", t.path().join("src/sub/up")).unwrap();
        let e = copy_tree(&t.path().join("src"), &t.path().join("dst"), ANY_LINK).unwrap_err();
        assert!(e.to_string().contains("link loop"), "{e}");
        let e = list_dir(&t.path().join("src"), true).unwrap_err();
        assert!(e.to_string().contains("link loop"), "{e}");
        // A shallow listing does not follow links: no loop to meet.
        assert_eq!(list_dir(&t.path().join("src"), false).unwrap().len(), 3);
    }

    #[test]
    fn copies_refuse_links_they_may_not_follow() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("src/sub/away")).unwrap();
        let roots = [t.path().canonicalize().unwrap()];
        let e = copy_tree(
            &t.path().join("src"),
            &t.path().join("dst"),
            &inside(&roots),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("outside the directories this run may read"),
            "{e}"
        );
        assert!(!t.path().join("dst/sub/away/secret").exists());
        std::fs::remove_file(t.path().join("src/sub/away")).unwrap();
        copy_tree(
            &t.path().join("src"),
            &t.path().join("dst"),
            &inside(&roots),
        )
        .unwrap();
        // `src` itself, reached through a link.
        std::os::unix::fs::symlink(outside.path(), t.path().join("top")).unwrap();
        let e = copy_tree(&t.path().join("top"), &t.path().join("d2"), &inside(&roots));
        assert!(e.unwrap_err().to_string().contains("outside"));
        assert!(!t.path().join("d2").exists());
    }
}
