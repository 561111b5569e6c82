//! Harvesting real FITS files (the demo volumes) and sidecars, again and
//! again as files are added, changed and removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use insitu_search::*;

fn source(name: &str, root: &Path) -> VolumeSource {
    VolumeSource {
        name: name.to_owned(),
        root: root.to_path_buf(),
        mount_path: Path::new("/media/data").join(name),
        audience: vec!["public".to_owned()],
        domain: vec!["astronomy".to_owned()],
        mission: vec![],
        instrument: vec![],
    }
}

fn all(ix: &SearchIndex, q: &str) -> SearchResults {
    ix.search(
        &SearchRequest::parse(Some(q)).unwrap(),
        &["public".to_owned()],
    )
    .unwrap()
}

#[test]
fn demo_volumes_are_described_from_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let demo = insitu_fits::generate_demo_volumes(dir.path()).unwrap();
    let sources: Vec<VolumeSource> = demo.iter().map(|v| source(&v.name, &v.path)).collect();
    let ix = SearchIndex::in_memory(IndexOptions::default());
    let h = Harvester::new();
    let p = h.run(&ix, &sources).unwrap();
    let fits: usize = demo
        .iter()
        .map(|v| v.files.iter().filter(|f| f.ends_with(".fits")).count())
        .sum();
    assert_eq!(p.files_seen as usize, fits);
    assert_eq!(p.files_indexed as usize, fits, "{:?}", p.problems);
    assert!(!p.running && p.finished_at.is_some());
    let r = all(&ix, "facet=type:dataset&limit=50");
    assert_eq!(r.total, fits);
    let m31 = r
        .hits
        .iter()
        .find(|h| h.asset.name == "skysim_m31_g.fits")
        .expect("the M31 field");
    let a = &m31.asset;
    assert_eq!(a.instrument, [insitu_fits::INSTRUME]);
    assert_eq!(a.telescope.as_deref(), Some(insitu_fits::TELESCOP));
    assert_eq!(a.filter, ["G"]);
    assert_eq!(
        a.file.as_deref(),
        Some("/media/data/deep-fields/skysim_m31_g.fits")
    );
    assert!(a.image.len() == 2 && a.exptime.is_some() && a.date_obs.is_some());
    let shape = a.shape.as_ref().unwrap();
    assert!(
        matches!(shape.footprint, Some(Footprint::Polygon { .. })),
        "{shape:?}"
    );
    assert!(
        shape
            .centre
            .distance(SkyPos::new(10.6847, 41.2690).unwrap())
            < 0.05,
        "{shape:?}"
    );
    // M31 is found by a cone around it; the all-sky map by any cone.
    let (hits, _) = ix
        .cone(
            &Cone::new(10.68, 41.27, 0.01).unwrap(),
            &["public".to_owned()],
            50,
        )
        .unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h.asset.name.as_str()).collect();
    assert!(names.contains(&"skysim_m31_g.fits"), "{names:?}");
    assert!(names.iter().any(|n| n.contains("allsky")), "{names:?}");
    let catalogue = all(&ix, "facet=volume:source-catalogue");
    assert!(catalogue.hits.iter().all(|h| !h.asset.columns.is_empty()));
}

#[test]
fn only_changed_files_are_read_again_and_removed_ones_leave() {
    let dir = tempfile::tempdir().unwrap();
    let demo = insitu_fits::generate_demo_volumes(&dir.path().join("demo")).unwrap();
    let deep = demo.iter().find(|v| v.name == "deep-fields").unwrap();
    let root = dir.path().join("vol");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let files: Vec<String> = deep
        .files
        .iter()
        .filter(|f| f.ends_with(".fits"))
        .cloned()
        .collect();
    for f in &files {
        std::fs::copy(deep.path.join(f), root.join(f)).unwrap();
    }
    let ix = SearchIndex::in_memory(IndexOptions::default());
    let h = Harvester::new();
    let src = [source("vol", &root)];
    let p = h.run(&ix, &src).unwrap();
    assert_eq!(
        (p.files_read, p.files_indexed),
        (files.len() as u64, files.len() as u64)
    );

    // Nothing changed: nothing is read.
    let p = h.run(&ix, &src).unwrap();
    assert_eq!(
        (p.files_seen, p.files_read, p.files_unchanged),
        (files.len() as u64, 0, files.len() as u64)
    );

    // One added (in a subdirectory), one changed, one removed.
    std::fs::copy(deep.path.join(&files[0]), root.join("sub/copy.fits")).unwrap();
    let changed = root.join(&files[1]);
    let bytes = std::fs::read(&changed).unwrap();
    std::fs::write(&changed, &bytes).unwrap(); // same bytes, new mtime and size kept
    let mtime = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&changed)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::remove_file(root.join(&files[2])).unwrap();
    let p = h.run(&ix, &src).unwrap();
    assert_eq!(p.files_read, 2, "the new and the changed file");
    assert_eq!(p.files_removed, 1);
    assert_eq!(p.files_unchanged, files.len() as u64 - 2);
    let r = all(&ix, "facet=type:dataset&limit=50");
    let mut names: Vec<String> = r.hits.iter().map(|h| h.asset.name.clone()).collect();
    names.sort();
    assert!(names.contains(&"sub/copy.fits".to_owned()));
    assert!(!names.contains(&files[2]));
    assert_eq!(names.len(), files.len());

    // A volume that is no longer listed leaves the index whole.
    h.run(&ix, &[]).unwrap();
    assert_eq!(all(&ix, "facet=type:dataset").total, 0);
}

#[test]
fn sidecars_override_headers_and_bad_files_are_reported_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let demo = insitu_fits::generate_demo_volumes(&dir.path().join("demo")).unwrap();
    let deep = demo.iter().find(|v| v.name == "deep-fields").unwrap();
    let root = dir.path().join("vol");
    std::fs::create_dir_all(root.join("herschel")).unwrap();
    std::fs::copy(
        deep.path.join("skysim_m31_g.fits"),
        root.join("herschel/m31.fits"),
    )
    .unwrap();
    std::fs::write(
        root.join("herschel/directory.meta.toml"),
        "mission = \"Herschel\"\ninstrument = [\"PACS\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("herschel/m31.fits.meta.toml"),
        "title = \"Andromeda at 160 µm\"\nfilter = \"red\"\ndate_obs = \"2010-01-02\"\n",
    )
    .unwrap();
    // A CSV table described only by its sidecar, placed by a polygon.
    std::fs::write(root.join("stars.csv"), "ra,dec\n1,2\n").unwrap();
    std::fs::write(
        root.join("stars.csv.meta.toml"),
        "title = \"Stars\"\nfootprint = [[0.5, 1.5], [1.5, 1.5], [1.5, 2.5], [0.5, 2.5]]\n",
    )
    .unwrap();
    std::fs::write(root.join("broken.fits"), b"SIMPLE  = nonsense").unwrap();
    std::fs::write(root.join("bad.fits.meta.toml"), "colour = \"red\"\n").unwrap();
    std::fs::write(root.join("bad.fits"), b"x").unwrap();
    std::fs::write(root.join("hidden.fits.meta.toml"), "index = false\n").unwrap();
    std::fs::copy(
        deep.path.join("skysim_m31_g.fits"),
        root.join("hidden.fits"),
    )
    .unwrap();
    // Links are never followed, inside the volume or out of it.
    std::fs::copy(
        deep.path.join("skysim_m31_g.fits"),
        dir.path().join("outside.fits"),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.fits"), root.join("escape.fits")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("demo"), root.join("escape-dir")).unwrap();
    std::fs::copy(deep.path.join("skysim_m31_g.fits"), root.join(".dot.fits")).unwrap();

    let ix = SearchIndex::in_memory(IndexOptions::default());
    let p = Harvester::new().run(&ix, &[source("vol", &root)]).unwrap();
    let r = all(&ix, "limit=50");
    let names: Vec<&str> = r.hits.iter().map(|h| h.asset.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?} {:?}", p.problems);
    let m31 = r
        .hits
        .iter()
        .find(|h| h.asset.name == "herschel/m31.fits")
        .unwrap();
    assert_eq!(m31.asset.title, "Andromeda at 160 µm");
    assert_eq!(m31.asset.mission, ["Herschel"]);
    assert_eq!(
        m31.asset.instrument,
        ["PACS"],
        "the sidecar wins over INSTRUME"
    );
    assert_eq!(m31.asset.filter, ["red"]);
    assert_eq!(m31.asset.year(), Some(2010));
    let stars = r.hits.iter().find(|h| h.asset.name == "stars.csv").unwrap();
    let (hits, _) = ix
        .cone(
            &Cone::new(1.0, 2.0, 0.1).unwrap(),
            &["public".to_owned()],
            10,
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].asset.name, stars.asset.name);
    let problems: Vec<(&str, &str)> = p
        .problems
        .iter()
        .map(|p| (p.file.as_str(), p.reason.as_str()))
        .collect();
    assert!(
        problems
            .iter()
            .any(|(f, r)| *f == "broken.fits" && r.contains("FITS")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|(f, r)| *f == "bad.fits.meta.toml" && r.contains("colour")),
        "{problems:?}"
    );
    assert_eq!(p.problem_count, 3, "{problems:?}");
}

#[test]
fn a_volume_whose_storage_is_away_keeps_its_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let demo = insitu_fits::generate_demo_volumes(&dir.path().join("demo")).unwrap();
    let deep = demo.iter().find(|v| v.name == "deep-fields").unwrap();
    let ix = SearchIndex::in_memory(IndexOptions::default());
    let h = Harvester::new();
    let src = [source("deep", &deep.path)];
    h.run(&ix, &src).unwrap();
    let before = all(&ix, "facet=type:dataset").total;
    assert!(before > 0);
    let away = dir.path().join("away");
    std::fs::rename(&deep.path, &away).unwrap();
    let p = h.run(&ix, &src).unwrap();
    assert_eq!(p.files_removed, 0);
    assert!(
        p.problems[0].reason.contains("cannot be read"),
        "{:?}",
        p.problems
    );
    assert_eq!(all(&ix, "facet=type:dataset").total, before);
    std::fs::rename(&away, &deep.path).unwrap();
    let p = h.run(&ix, &src).unwrap();
    assert_eq!((p.files_read, p.problem_count), (0, 0));
}
