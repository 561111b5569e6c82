//! Export and import: a build of a datalab as one tar file another Insitu
//! takes back.
//!
//! The export holds `insitu-datalab.json` (what it is: the format, the
//! datalab's name, its build version, definition and source),
//! `datalab.toml` (the definition as the catalogue writes it), the
//! `Containerfile` and its files under `source/`, and `image.oci.tar`,
//! the image as an OCI archive (`podman save`).
//!
//! An import trusts none of it: the manifest must say it is this format
//! and version, the definition and the source must pass this platform's
//! checks, and the image archive must be an OCI layout with exactly one
//! image manifest. The image is loaded under the name this platform gives
//! it (the archive's own name is replaced before podman reads it), so an
//! import can never overwrite a base image or another datalab's image.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use insitu_domain::devlab::build_version;
use insitu_domain::{BuildState, DevlabDefinition, DevlabSource, Name, Template};
use insitu_store::{BuildAdmission, BuildRecord, DevlabRecord};
use serde::{Deserialize, Serialize};

use super::{Devlabs, check_definition};
use crate::accounts::Principal;
use crate::catalogue::Datalabs;
use crate::clock::now;
use crate::error::Error;

/// The manifest's format name and version.
pub const FORMAT: &str = "insitu-datalab";
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "insitu-datalab.json";
const IMAGE: &str = "image.oci.tar";
/// The largest manifest an import reads.
const MAX_MANIFEST: u64 = 1 << 20;
/// The annotation that names an image in an OCI index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    format_version: u32,
    name: String,
    template: Template,
    build_version: String,
    definition: DevlabDefinition,
    source: DevlabSource,
}

/// An export written to a file the caller sends and then removes.
#[derive(Debug)]
pub struct Export {
    pub path: PathBuf,
    /// The file name to offer: `<name>-<build version>.tar`.
    pub file_name: String,
}

impl Devlabs {
    fn scratch(&self) -> Result<PathBuf, Error> {
        let dir = self
            .cfg
            .data_dir
            .join("devlabs")
            .join(".transfers")
            .join(format!("{:032x}", rand::random::<u128>()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Writes build `number` of the caller's datalab (its developer only)
    /// as an export.
    pub async fn export(
        &self,
        caller: &Principal,
        name: &str,
        number: i64,
    ) -> Result<Export, Error> {
        let record = self.owned(caller, name).await?;
        let build = self.build_of(&record.name, number).await?;
        if build.state != BuildState::Succeeded {
            return Err(Error::BuildNotReady {
                datalab: record.name,
                number,
                state: build.state,
                action: "exported",
            });
        }
        if !build.image_kept {
            return Err(Error::ImageRemoved {
                datalab: record.name,
                number,
            });
        }
        let dir = self.scratch()?;
        let image = dir.join(IMAGE);
        self.podman.save(&build.image, &image).await?;
        let bv = build_version(&build.version, build.number);
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            name: record.name.to_string(),
            template: record.template,
            build_version: bv.clone(),
            definition: build.definition.clone(),
            source: build.source.clone(),
        };
        let spec = build
            .definition
            .spec(&record.name, None)
            .map_err(Error::InvalidDefinition)?;
        let path = dir.join("export.tar");
        let out = path.clone();
        tokio::task::spawn_blocking(move || write_export(&out, &manifest, &spec.to_toml(), &image))
            .await??;
        Ok(Export {
            path,
            file_name: format!("{}-{bv}.tar", record.name),
        })
    }

    /// A scratch file an upload is written to before [`Devlabs::import`].
    pub fn upload_path(&self) -> Result<PathBuf, Error> {
        Ok(self.scratch()?.join("upload.tar"))
    }

    /// Imports an export as a new datalab of the caller's (a developer),
    /// named as in the export or `rename`: a draft with one successful,
    /// imported build. The upload is removed whatever happens.
    pub async fn import(
        self: &Arc<Self>,
        datalabs: &Datalabs,
        caller: &Principal,
        upload: &Path,
        rename: Option<String>,
    ) -> Result<DevlabRecord, Error> {
        let scratch = upload.parent().map(Path::to_path_buf);
        let result = self.import_file(datalabs, caller, upload, rename).await;
        if let Some(dir) = scratch.filter(|d| d.starts_with(self.cfg.data_dir.join("devlabs"))) {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }

    async fn import_file(
        &self,
        datalabs: &Datalabs,
        caller: &Principal,
        upload: &Path,
        rename: Option<String>,
    ) -> Result<DevlabRecord, Error> {
        let dir = upload
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::InvalidImport("no place to unpack it".into()))?;
        let (file, image) = (upload.to_path_buf(), dir.join(IMAGE));
        let image_out = image.clone();
        let manifest =
            tokio::task::spawn_blocking(move || read_export(&file, &image_out)).await??;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(Error::InvalidImport(format!(
                "its manifest says format {:?} version {}, not {FORMAT:?} version {FORMAT_VERSION}",
                manifest.format, manifest.format_version
            )));
        }
        let raw_name = rename.unwrap_or_else(|| manifest.name.clone());
        let name: Name = raw_name
            .parse()
            .map_err(|reason| Error::InvalidDevlabName {
                name: raw_name.clone(),
                reason,
            })?;
        if datalabs.is_shipped(name.as_str()) || self.store.devlab(name.as_str()).await?.is_some() {
            return Err(Error::DevlabExists(name.to_string()));
        }
        check_definition(&name, &manifest.definition)?;
        let problems = manifest.source.check(&self.cfg.rules);
        if !problems.is_empty() {
            return Err(Error::InvalidSource(problems));
        }
        let version = manifest.definition.version.clone();
        let at = now();
        let record = DevlabRecord {
            name: name.clone(),
            owner_id: caller.user_id.clone(),
            owner: caller.username.clone(),
            template: manifest.template,
            definition: manifest.definition.clone(),
            source: manifest.source.clone(),
            public: false,
            shared_with: Vec::new(),
            created_at: at,
            updated_at: at,
        };
        if !self.store.create_devlab(&record).await? {
            return Err(Error::DevlabExists(name.to_string()));
        }
        let loaded = self.load_image(&record, &manifest, &image, &version).await;
        if let Err(e) = loaded {
            // Nothing of a failed import stays.
            let _ = self.store.delete_devlab(&name).await;
            return Err(e);
        }
        tracing::info!(datalab = %name, from = %manifest.build_version, owner = %caller.username, "datalab imported");
        self.refresh(datalabs).await?;
        Ok(record)
    }

    /// Records the imported build and loads its image under that build's
    /// name.
    async fn load_image(
        &self,
        record: &DevlabRecord,
        manifest: &Manifest,
        image: &Path,
        version: &str,
    ) -> Result<(), Error> {
        let pending = BuildRecord {
            devlab: record.name.clone(),
            number: 0,
            version: version.to_owned(),
            state: BuildState::Running,
            definition: manifest.definition.clone(),
            source: manifest.source.clone(),
            image: format!(
                "{}/{}:{version}-{{number}}",
                self.cfg.repository, record.name
            ),
            image_id: None,
            error: None,
            image_kept: true,
            imported: true,
            created_at: now(),
            started_at: Some(now()),
            finished_at: None,
        };
        let BuildAdmission::Created(number) = self.store.create_build(&pending).await? else {
            return Err(Error::InvalidImport("the datalab is being built".into()));
        };
        let mut build = self
            .store
            .build(record.name.as_str(), number)
            .await?
            .ok_or_else(|| Error::InvalidImport("its build was not recorded".into()))?;
        let renamed = image.with_extension("named.tar");
        let (from, to, tag) = (image.to_path_buf(), renamed.clone(), build.image.clone());
        tokio::task::spawn_blocking(move || rename_archive(&from, &to, &tag)).await??;
        self.podman
            .load(&renamed)
            .await
            .map_err(|e| Error::InvalidImport(format!("podman cannot load its image: {e}")))?;
        build.image_id = Some(self.podman.image_id(&build.image).await?);
        build.state = BuildState::Succeeded;
        build.finished_at = Some(now());
        self.store.update_build(&build).await?;
        let log = self.log_path(&record.name, number);
        if let Some(d) = log.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(
            &log,
            format!(
                "Imported from an export of {} {}: image {}\n",
                manifest.name, manifest.build_version, build.image
            ),
        )?;
        Ok(())
    }
}

fn write_export(path: &Path, manifest: &Manifest, toml: &str, image: &Path) -> Result<(), Error> {
    let file = std::fs::File::create(path)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let text = |tar: &mut tar::Builder<_>, name: &str, body: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(u64::try_from(now()).unwrap_or(0));
        h.set_cksum();
        tar.append_data(&mut h, name, body)
    };
    let json =
        serde_json::to_vec_pretty(manifest).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    text(&mut tar, MANIFEST, &json)?;
    text(&mut tar, "datalab.toml", toml.as_bytes())?;
    text(
        &mut tar,
        "source/Containerfile",
        manifest.source.containerfile.as_bytes(),
    )?;
    for (name, body) in &manifest.source.files {
        text(&mut tar, &format!("source/{name}"), body.as_bytes())?;
    }
    tar.append_path_with_name(image, IMAGE)?;
    tar.into_inner()?.flush()?;
    Ok(())
}

/// Reads an export: its manifest, and its image archive written to `image`.
/// Only regular files are read; nothing is unpacked anywhere else.
fn read_export(path: &Path, image: &Path) -> Result<Manifest, Error> {
    let not_ours = |why: &str| Error::InvalidImport(why.to_owned());
    let file = std::fs::File::open(path)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut manifest = None;
    let mut has_image = false;
    let entries = archive
        .entries()
        .map_err(|_| not_ours("it is not a tar archive"))?;
    for entry in entries {
        let mut entry = entry.map_err(|_| not_ours("it is not a tar archive"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.trim_start_matches("./") {
            MANIFEST => {
                let mut text = String::new();
                entry
                    .by_ref()
                    .take(MAX_MANIFEST)
                    .read_to_string(&mut text)
                    .map_err(|_| not_ours("its manifest is not text"))?;
                manifest = Some(serde_json::from_str::<Manifest>(&text).map_err(|e| {
                    Error::InvalidImport(format!("its manifest cannot be read: {e}"))
                })?);
            }
            IMAGE => {
                let mut out = std::fs::File::create(image)?;
                std::io::copy(&mut entry, &mut out)
                    .map_err(|_| not_ours("its image archive is cut short"))?;
                has_image = true;
            }
            _ => {}
        }
    }
    let manifest = manifest.ok_or_else(|| not_ours(&format!("it holds no {MANIFEST}")))?;
    if !has_image {
        return Err(not_ours(&format!("it holds no {IMAGE}")));
    }
    Ok(manifest)
}

/// Copies an OCI image archive, naming its one image `tag` in place of
/// whatever it was called: podman then loads it under that name only.
fn rename_archive(from: &Path, to: &Path, tag: &str) -> Result<(), Error> {
    let bad = |why: String| Error::InvalidImport(format!("its image is not an OCI archive: {why}"));
    let mut input = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(from)?));
    let mut output = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(to)?));
    let mut index = None;
    let mut layout = false;
    for entry in input.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let kind = entry.header().entry_type();
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| bad(e.to_string()))?;
        let plain = name.trim_start_matches("./").to_owned();
        if plain.split('/').any(|c| c == "..") || plain.starts_with('/') {
            return Err(bad(format!("entry {name:?} leaves the archive")));
        }
        if !(kind.is_file() || kind.is_dir()) {
            return Err(bad(format!(
                "entry {name:?} is neither a file nor a directory"
            )));
        }
        match plain.as_str() {
            "index.json" => {
                let mut text = String::new();
                entry
                    .by_ref()
                    .take(MAX_MANIFEST)
                    .read_to_string(&mut text)
                    .map_err(|e| bad(e.to_string()))?;
                index = Some(text);
            }
            _ => {
                layout |= plain == "oci-layout";
                let mut header = entry.header().clone();
                output.append_data(&mut header, &plain, &mut entry)?;
            }
        }
    }
    let index = index.ok_or_else(|| bad("it has no index.json".into()))?;
    if !layout {
        return Err(bad("it has no oci-layout".into()));
    }
    let mut index: serde_json::Value =
        serde_json::from_str(&index).map_err(|e| bad(format!("index.json: {e}")))?;
    let manifests = index
        .get_mut("manifests")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or_else(|| bad("index.json lists no manifests".into()))?;
    if manifests.len() != 1 {
        return Err(bad(format!(
            "it holds {} images; an export holds one",
            manifests.len()
        )));
    }
    let only = &mut manifests[0];
    if only.get("mediaType").and_then(serde_json::Value::as_str)
        != Some("application/vnd.oci.image.manifest.v1+json")
    {
        return Err(bad("its one entry is not an image manifest".into()));
    }
    only["annotations"] = serde_json::json!({ REF_NAME: tag });
    let body = serde_json::to_vec(&index).map_err(|e| bad(e.to_string()))?;
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    output.append_data(&mut h, "index.json", body.as_slice())?;
    output.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let path = dir.join("img.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            // Written as raw bytes: the builder itself refuses `..`.
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            tar.append(&h, body.as_bytes()).unwrap();
        }
        tar.finish().unwrap();
        path
    }

    #[test]
    fn an_imported_image_is_named_by_the_platform_not_by_its_archive() {
        let d = tempfile::tempdir().unwrap();
        let index = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","size":1,"annotations":{"org.opencontainers.image.ref.name":"localhost/insitu/python:3"}}]}"#;
        let from = archive(
            d.path(),
            &[
                ("oci-layout", "{}"),
                ("blobs/sha256/ab", "x"),
                ("index.json", index),
            ],
        );
        let to = d.path().join("named.tar");
        rename_archive(&from, &to, "localhost/insitu-devlab/x:1-0").unwrap();
        let mut names = Vec::new();
        let mut renamed = String::new();
        for e in tar::Archive::new(std::fs::File::open(&to).unwrap())
            .entries()
            .unwrap()
        {
            let mut e = e.unwrap();
            let n = e.path().unwrap().to_string_lossy().into_owned();
            if n == "index.json" {
                e.read_to_string(&mut renamed).unwrap();
            }
            names.push(n);
        }
        assert_eq!(names, ["oci-layout", "blobs/sha256/ab", "index.json"]);
        assert!(
            renamed.contains("localhost/insitu-devlab/x:1-0"),
            "{renamed}"
        );
        assert!(!renamed.contains("insitu/python"), "{renamed}");

        for (entries, why) in [
            (vec![("oci-layout", "{}")], "no index.json"),
            (vec![("index.json", index)], "no oci-layout"),
            (
                vec![
                    ("oci-layout", "{}"),
                    ("../evil", "x"),
                    ("index.json", index),
                ],
                "leaves",
            ),
            (
                vec![
                    ("oci-layout", "{}"),
                    ("index.json", r#"{"manifests":[{},{}]}"#),
                ],
                "2 images",
            ),
        ] {
            let from = archive(d.path(), &entries);
            let e = rename_archive(&from, &to, "t").unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn an_upload_without_our_manifest_and_image_is_not_ours() {
        let d = tempfile::tempdir().unwrap();
        let image = d.path().join("image");
        std::fs::write(d.path().join("plain.txt"), "hello").unwrap();
        let e = read_export(&d.path().join("plain.txt"), &image).unwrap_err();
        assert!(matches!(e, Error::InvalidImport(_)), "{e}");
        let other = archive(d.path(), &[("README", "hi")]);
        let e = read_export(&other, &image).unwrap_err().to_string();
        assert!(e.contains("insitu-datalab.json"), "{e}");
        let bad = archive(d.path(), &[(MANIFEST, "{\"format\": 1}")]);
        let e = read_export(&bad, &image).unwrap_err().to_string();
        assert!(e.contains("manifest cannot be read"), "{e}");
    }
}
