//! The index through its public face: facet counts, visibility, query
//! errors, cone search against brute force, and rebuilding a damaged index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use insitu_search::*;

fn public() -> Vec<String> {
    vec!["public".to_owned()]
}

fn viewer(name: &str) -> Vec<String> {
    vec![
        "public".to_owned(),
        format!("user:{name}"),
        "role:user".to_owned(),
    ]
}

fn dataset(volume: &str, name: &str, mission: &str, instrument: &str, ra: f64, dec: f64) -> Asset {
    let mut a = Asset::new(
        AssetKind::Dataset,
        name,
        &format!("{mission} {instrument} {name}"),
        public(),
    );
    a.volume = Some(volume.to_owned());
    a.mission = vec![mission.to_owned()];
    a.instrument = vec![instrument.to_owned()];
    a.date_obs = Some("2021-06-01T00:00:00".to_owned());
    a.shape = Some(Shape::point(SkyPos::new(ra, dec).unwrap()));
    a
}

fn catalogue() -> SearchIndex {
    let ix = SearchIndex::in_memory(IndexOptions::default());
    let mut lab = Asset::new(AssetKind::Datalab, "topcat", "TOPCAT", public());
    lab.description = "Tool for operations on catalogues and tables".to_owned();
    lab.mission = vec!["Gaia".to_owned()];
    lab.properties = vec!["analysis_tool".to_owned(), "visualisation_tool".to_owned()];
    ix.upsert(&lab).unwrap();
    let mut vol = Asset::new(AssetKind::Volume, "gaia-dr3", "Gaia DR3", public());
    vol.properties = vec!["data_volume".to_owned()];
    vol.mission = vec!["Gaia".to_owned()];
    ix.upsert(&vol).unwrap();
    for (i, (m, ins)) in [
        ("Gaia", "RVS"),
        ("Gaia", "BP/RP"),
        ("Herschel", "PACS"),
        ("Herschel", "SPIRE"),
        ("Herschel", "PACS"),
    ]
    .iter()
    .enumerate()
    {
        ix.upsert(&dataset(
            "open",
            &format!("f{i}.fits"),
            m,
            ins,
            10.0 + i as f64,
            20.0,
        ))
        .unwrap();
    }
    let mut secret = dataset("secret", "s.fits", "Planck", "LFI", 10.0, 20.0);
    secret.audience = vec!["user:alice".to_owned()];
    ix.upsert(&secret).unwrap();
    ix.commit().unwrap();
    ix
}

fn counts(r: &SearchResults, f: FacetName) -> Vec<(String, u64)> {
    r.facets.get(&f).cloned().unwrap_or_default()
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[test]
fn facets_count_what_matches_and_ignore_their_own_selection() {
    let ix = catalogue();
    let all = ix
        .search(&SearchRequest::default(), &viewer("bob"))
        .unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(
        counts(&all, FacetName::Type),
        owned(&[("dataset", 5), ("datalab", 1), ("volume", 1)])
    );
    assert_eq!(
        counts(&all, FacetName::Mission),
        owned(&[("Gaia", 4), ("Herschel", 3)])
    );
    // A value with a slash is one value.
    assert!(counts(&all, FacetName::Instrument).contains(&("BP/RP".to_owned(), 1)));

    let r = SearchRequest::parse(Some("facet=mission:herschel&facet=type:dataset")).unwrap();
    let narrowed = ix.search(&r, &viewer("bob")).unwrap();
    assert_eq!(narrowed.total, 3);
    assert!(
        narrowed
            .hits
            .iter()
            .all(|h| h.asset.mission == ["Herschel"])
    );
    // Mission counts ignore the mission selection but keep the type's.
    assert_eq!(
        counts(&narrowed, FacetName::Mission),
        owned(&[("Herschel", 3), ("Gaia", 2)])
    );
    assert_eq!(
        counts(&narrowed, FacetName::Instrument),
        owned(&[("PACS", 2), ("SPIRE", 1)])
    );
    assert_eq!(
        counts(&narrowed, FacetName::Type),
        owned(&[("dataset", 3)]),
        "type counts ignore the type selection, not the mission's"
    );

    let text = ix
        .search(
            &SearchRequest::parse(Some("q=catalogues+tables")).unwrap(),
            &viewer("bob"),
        )
        .unwrap();
    assert_eq!(text.total, 1);
    assert_eq!(text.hits[0].asset.name, "topcat");
    let field = ix
        .search(
            &SearchRequest::parse(Some("q=instrument:spire")).unwrap(),
            &viewer("bob"),
        )
        .unwrap();
    assert_eq!(field.total, 1);
    let years = ix
        .search(
            &SearchRequest::parse(Some("date_from=2021-06-01&date_to=2021-06-01")).unwrap(),
            &viewer("bob"),
        )
        .unwrap();
    assert_eq!(years.total, 5);
    assert_eq!(counts(&years, FacetName::Year), owned(&[("2021", 5)]));
    let none = ix
        .search(
            &SearchRequest::parse(Some("date_from=2021-06-02")).unwrap(),
            &viewer("bob"),
        )
        .unwrap();
    assert_eq!(none.total, 0);
}

#[test]
fn what_a_viewer_may_not_see_is_neither_found_nor_counted() {
    let ix = catalogue();
    let q = SearchRequest::parse(Some("q=planck")).unwrap();
    let bob = ix.search(&q, &viewer("bob")).unwrap();
    assert_eq!(bob.total, 0);
    let all = ix
        .search(&SearchRequest::default(), &viewer("bob"))
        .unwrap();
    assert!(
        !counts(&all, FacetName::Mission)
            .iter()
            .any(|(m, _)| m == "Planck")
    );
    assert!(
        !counts(&all, FacetName::Volume)
            .iter()
            .any(|(v, _)| v == "secret")
    );
    let cone = Cone::new(10.0, 20.0, 0.1).unwrap();
    let (hits, _) = ix.cone(&cone, &viewer("bob"), 100).unwrap();
    assert_eq!(hits.len(), 1, "only the open dataset at that place");
    let alice = ix.search(&q, &viewer("alice")).unwrap();
    assert_eq!(alice.total, 1);
    let (hits, _) = ix.cone(&cone, &viewer("alice"), 100).unwrap();
    assert_eq!(hits.len(), 2);
    // Naming a hidden facet value finds nothing rather than failing.
    let r = SearchRequest::parse(Some("facet=mission:Planck")).unwrap();
    assert_eq!(ix.search(&r, &viewer("bob")).unwrap().total, 0);
}

#[test]
fn query_syntax_errors_are_named() {
    let ix = catalogue();
    for (q, says) in [
        ("colour:red", "there is no field \"colour\""),
        ("title:(", "cannot be read"),
        ("\"unclosed", "cannot be read"),
    ] {
        let r = SearchRequest {
            text: q.to_owned(),
            ..SearchRequest::default()
        };
        match ix.search(&r, &public()) {
            Err(SearchError::Request(e)) => {
                assert_eq!(e.problem(), Problem::Syntax, "{q}: {e}");
                assert!(e.to_string().contains(says), "{q}: {e}");
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}

#[test]
fn updates_and_removals_show_after_commit() {
    let ix = catalogue();
    let n = |ix: &SearchIndex| {
        ix.search(&SearchRequest::default(), &public())
            .unwrap()
            .total
    };
    assert_eq!(n(&ix), 7);
    ix.remove("dataset:open/f0.fits").unwrap();
    ix.commit().unwrap();
    assert_eq!(n(&ix), 6);
    ix.remove_volume_datasets("open").unwrap();
    ix.commit().unwrap();
    assert_eq!(n(&ix), 2);
    let (hits, _) = ix
        .cone(&Cone::new(10.0, 20.0, 5.0).unwrap(), &public(), 10)
        .unwrap();
    assert!(
        hits.is_empty(),
        "removed datasets leave the spatial index too"
    );
}

#[test]
fn a_damaged_or_foreign_index_is_rebuilt_and_a_sound_one_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix");
    let (ix, opened) = SearchIndex::open(&path, IndexOptions::default());
    assert!(matches!(opened, Opened::Rebuilt(_)), "{opened:?}");
    ix.upsert(&dataset("v", "a.fits", "Gaia", "RVS", 1.0, 2.0))
        .unwrap();
    ix.commit().unwrap();
    drop(ix);
    let (ix, opened) = SearchIndex::open(&path, IndexOptions::default());
    assert_eq!(opened, Opened::Reused);
    assert_eq!(ix.len(), 1);
    let (hits, _) = ix
        .cone(&Cone::new(1.0, 2.0, 0.1).unwrap(), &public(), 10)
        .unwrap();
    assert_eq!(hits.len(), 1, "the spatial index is read back");
    drop(ix);
    // Damage every segment file.
    for e in std::fs::read_dir(&path).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".store") || name.ends_with(".idx") {
            std::fs::write(&p, b"garbage").unwrap();
        }
    }
    let (ix, opened) = SearchIndex::open(&path, IndexOptions::default());
    assert!(matches!(opened, Opened::Rebuilt(_)), "{opened:?}");
    assert_eq!(ix.len(), 0);
    drop(ix);
    std::fs::write(path.join("meta.json"), b"{not json").unwrap();
    let (ix, opened) = SearchIndex::open(&path, IndexOptions::default());
    assert!(matches!(opened, Opened::Rebuilt(_)), "{opened:?}");
    ix.upsert(&dataset("v", "b.fits", "Gaia", "RVS", 1.0, 2.0))
        .unwrap();
    ix.commit().unwrap();
    assert_eq!(ix.len(), 1, "the rebuilt index works");
    // A file where the directory should be: the index lives in memory.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"x").unwrap();
    let (ix, opened) = SearchIndex::open(&blocked.join("ix"), IndexOptions::default());
    assert!(matches!(opened, Opened::InMemory(_)), "{opened:?}");
    ix.upsert(&dataset("v", "c.fits", "Gaia", "RVS", 1.0, 2.0))
        .unwrap();
    ix.commit().unwrap();
    assert_eq!(ix.len(), 1);
}

fn total(ix: &SearchIndex, q: &str) -> usize {
    let r = SearchRequest {
        text: q.to_owned(),
        ..SearchRequest::default()
    };
    ix.search(&r, &public())
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .total
}

#[test]
fn free_text_finds_every_described_word_and_phrases_in_each_field() {
    let ix = SearchIndex::in_memory(IndexOptions::default());
    let mut a = Asset::new(
        AssetKind::Dataset,
        "deep/m31_field.fits",
        "Andromeda deep field",
        public(),
    );
    a.volume = Some("xmm-archive".to_owned());
    a.description = "Calibrated spiral galaxy mosaic".to_owned();
    a.mission = vec!["XMM-Newton".to_owned()];
    a.instrument = vec!["EPIC-pn".to_owned()];
    a.filter = vec!["Thick".to_owned()];
    a.object = Some("M31".to_owned());
    a.telescope = Some("XMM".to_owned());
    a.keywords = vec!["flagship".to_owned()];
    a.columns = vec!["flux_band8".to_owned()];
    a.properties = vec!["data_volume".to_owned()];
    ix.upsert(&a).unwrap();
    let mut other = Asset::new(AssetKind::Datalab, "ds9", "SAOImage DS9", public());
    other.description = "Image viewer for field work".to_owned();
    other.datalab_kind = Some("desktop".to_owned());
    ix.upsert(&other).unwrap();
    ix.commit().unwrap();
    // Each word, wherever the asset holds it, is found by free text.
    for (q, n) in [
        ("andromeda", 1),
        ("m31_field", 1),
        ("m31", 1),
        ("newton", 1),
        ("epic", 1),
        ("thick", 1),
        ("spiral", 1),
        ("flagship", 1),
        ("flux_band8", 1),
        ("xmm", 1),
        ("data_volume", 1),
        ("dataset", 1),
        ("datalab", 1),
        ("desktop", 1),
        ("field", 2),
        // Every word must match, each in any field.
        ("m31 galaxy newton thick", 1),
        ("m31 viewer", 0),
        ("field -spiral", 1),
        // Phrases within a field, and words that split into a phrase.
        ("\"deep field\"", 1),
        ("\"spiral galaxy\"", 1),
        ("\"galaxy spiral\"", 0),
        ("XMM-Newton", 1),
        ("mission:XMM-Newton", 1),
        ("title:\"andromeda deep\"", 1),
        ("object:m31", 1),
        ("name:m31_field.fits", 1),
        ("instrument:epic-pn", 1),
        ("filter:thick", 1),
        ("mission:spiral", 0),
    ] {
        assert_eq!(total(&ix, q), n, "{q}");
    }
    // Replacing an asset leaves one copy, holding the new words only.
    a.description = "Reprocessed".to_owned();
    ix.upsert(&a).unwrap();
    ix.commit().unwrap();
    assert_eq!(total(&ix, "reprocessed"), 1);
    assert_eq!(total(&ix, "spiral"), 0);
    assert_eq!(total(&ix, "andromeda"), 1);
    ix.remove(&a.id()).unwrap();
    ix.commit().unwrap();
    assert_eq!(total(&ix, "andromeda"), 0);
    assert_eq!(ix.len(), 1);
}

#[test]
fn without_free_text_results_come_by_kind_then_title() {
    let ix = SearchIndex::in_memory(IndexOptions::default());
    // Titles that share long beginnings and differ in case.
    for (i, title) in [
        "Gaia DR3 source catalogue part 10",
        "gaia DR3 source catalogue part 02",
        "Gaia DR3 source catalogue part 1",
        "Andromeda",
    ]
    .iter()
    .enumerate()
    {
        let mut d = dataset("v", &format!("f{i}.fits"), "Gaia", "RVS", 1.0, 2.0);
        d.title = (*title).to_owned();
        ix.upsert(&d).unwrap();
    }
    ix.upsert(&Asset::new(AssetKind::Volume, "v", "Zeta volume", public()))
        .unwrap();
    ix.upsert(&Asset::new(AssetKind::Datalab, "z", "Zoo", public()))
        .unwrap();
    ix.upsert(&Asset::new(AssetKind::Datalab, "a", "aladin", public()))
        .unwrap();
    ix.commit().unwrap();
    let titles = |r: &SearchRequest| -> Vec<String> {
        ix.search(r, &public())
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.asset.title)
            .collect()
    };
    let all = titles(&SearchRequest::default());
    assert_eq!(
        all,
        [
            "aladin",
            "Zoo",
            "Zeta volume",
            "Andromeda",
            "gaia DR3 source catalogue part 02",
            "Gaia DR3 source catalogue part 1",
            "Gaia DR3 source catalogue part 10",
        ],
        "datalabs, then volumes, then datasets; titles without regard to case"
    );
    let page = SearchRequest::parse(Some("limit=2&offset=4")).unwrap();
    assert_eq!(
        titles(&page),
        [
            "gaia DR3 source catalogue part 02",
            "Gaia DR3 source catalogue part 1",
        ]
    );
}
