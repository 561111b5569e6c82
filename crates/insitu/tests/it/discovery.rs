//! The discovery portal end to end: one search over datalabs, volumes and
//! harvested datasets, facet counts, the catalogue followed at once,
//! incremental harvests, cone search as JSON and as an IVOA Simple Cone
//! Search read back by astropy, bad input, and visibility of a restricted
//! volume everywhere (API, pages, SCS, facet counts, my volumes, launch,
//! runs), to named users, roles and the accepted members of a team.

use std::path::Path;
use std::time::{Duration, Instant};

use insitu_domain::volume::{VolumeConfig, VolumeMetadata};
use serde_json::{Value, json};

use crate::harness::*;

/// Waits for the harvest under way (or started by `POST`) to finish.
pub(crate) async fn harvested(app: &TestApp, admin: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, h) = get_json(&plain(), &app.u("/api/v1/admin/search/harvest"), admin).await;
        assert_eq!(status, 200, "{h}");
        if h["running"] == false && !h["finished_at"].is_null() {
            return h;
        }
        assert!(Instant::now() < deadline, "the harvest did not finish: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn harvest_now(app: &TestApp, admin: &str) -> Value {
    let r = plain()
        .post(app.u("/api/v1/admin/search/harvest"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    harvested(app, admin).await
}

async fn search(app: &TestApp, token: &str, q: &str) -> Value {
    let (status, v) = get_json(&plain(), &app.u(&format!("/api/v1/search?{q}")), token).await;
    assert_eq!(status, 200, "{q}: {v}");
    v
}

fn count(v: &Value, facet: &str, value: &str) -> u64 {
    v["facets"][facet]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == value)
        .map_or(0, |c| c["count"].as_u64().unwrap())
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn one_search_finds_datalabs_volumes_and_datasets_and_follows_the_catalogue() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let h = harvested(&app, &admin).await;
    assert!(h["files_indexed"].as_u64().unwrap() >= 5, "{h}");
    let t = app.user_with_role("sam", "user").await;

    let all = search(&app, &t, "limit=200").await;
    assert!(count(&all, "type", "datalab") >= 6, "{all}");
    assert_eq!(count(&all, "type", "volume"), 3);
    assert_eq!(
        count(&all, "type", "dataset"),
        h["files_indexed"].as_u64().unwrap()
    );
    assert_eq!(
        all["total"].as_u64().unwrap(),
        all["items"].as_array().unwrap().len() as u64
    );
    assert_eq!(count(&all, "property", "data_volume"), 3);

    // Two facets narrow; each facet's counts ignore its own selection.
    let two = search(&app, &t, "facet=type:dataset&facet=volume:deep-fields").await;
    let deep = count(&all, "volume", "deep-fields");
    assert_eq!(two["total"].as_u64().unwrap(), deep);
    assert!(
        ids(&two)
            .iter()
            .all(|i| i.starts_with("dataset:deep-fields/")),
        "{two}"
    );
    assert_eq!(count(&two, "type", "dataset"), deep);
    assert!(
        count(&two, "volume", "allsky-survey") > 0,
        "other volumes still counted"
    );

    // Free text with a field and the filter facet.
    let m31 = search(&app, &t, "q=object:m31&facet=filter:G").await;
    assert_eq!(
        ids(&m31),
        ["dataset:deep-fields/skysim_m31_g.fits"],
        "{m31}"
    );
    let hit = &m31["items"][0];
    assert_eq!(hit["file"], "/media/data/deep-fields/skysim_m31_g.fits");
    assert_eq!(hit["instrument"], json!([insitu_fits::INSTRUME]));

    // A cone around M31 finds its field and the all-sky map, not the others.
    let cone = search(
        &app,
        &t,
        "ra=10.68&dec=41.27&radius=0.05&facet=type:dataset",
    )
    .await;
    let found = ids(&cone);
    assert!(
        found.contains(&"dataset:deep-fields/skysim_m31_g.fits".to_owned()),
        "{found:?}"
    );
    assert!(found.iter().any(|i| i.contains("allsky")), "{found:?}");
    assert!(!found.iter().any(|i| i.contains("m42")), "{found:?}");

    // The index follows a catalogue reload at once.
    let dir = app.dir.path().join("catalogue");
    std::fs::write(
        dir.join("specview.toml"),
        "title = \"SpecView\"\ndescription = \"Looks at spectra of quasars\"\nversion = \"1\"\nkind = \"web\"\n\
         license = \"MIT\"\n[launch]\ncommand = [\"true\"]\n[tags]\nmission = [\"Euclid\"]\n",
    )
    .unwrap();
    let reload = |app: &TestApp, admin: String| {
        let url = app.u("/api/v1/admin/catalogue/reload");
        async move {
            let r = plain().post(url).bearer_auth(admin).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    reload(&app, admin.clone()).await;
    let q = search(&app, &t, "q=quasars").await;
    assert_eq!(ids(&q), ["datalab:specview"]);
    assert_eq!(count(&search(&app, &t, "").await, "mission", "Euclid"), 1);
    std::fs::remove_file(dir.join("specview.toml")).unwrap();
    reload(&app, admin.clone()).await;
    assert_eq!(search(&app, &t, "q=quasars").await["total"], 0);
}

#[tokio::test]
async fn harvests_read_only_what_changed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let first = harvested(&app, &admin).await;
    let again = harvest_now(&app, &admin).await;
    assert_eq!(again["files_read"], 0, "{again}");
    assert_eq!(again["files_unchanged"], first["files_seen"]);

    let deep = app.dir.path().join("volumes/deep-fields");
    std::fs::copy(deep.join("skysim_m31_g.fits"), deep.join("extra_copy.fits")).unwrap();
    std::fs::write(
        deep.join("notes.txt.meta.toml"),
        "title = \"Observing notes\"\n",
    )
    .unwrap();
    std::fs::write(deep.join("notes.txt"), "clear skies").unwrap();
    std::fs::write(deep.join("junk.fits"), "not fits").unwrap();
    let h = harvest_now(&app, &admin).await;
    assert_eq!(h["files_read"], 3, "{h}");
    assert_eq!(h["files_indexed"], 2, "{h}");
    assert_eq!(h["problem_count"], 1, "{h}");
    assert_eq!(h["problems"][0]["file"], "junk.fits");
    let t = app.user_with_role("ria", "user").await;
    assert_eq!(search(&app, &t, "q=observing+notes").await["total"], 1);
    assert_eq!(search(&app, &t, "q=name:extra_copy.fits").await["total"], 1);

    std::fs::remove_file(deep.join("extra_copy.fits")).unwrap();
    let h = harvest_now(&app, &admin).await;
    assert_eq!(
        (h["files_read"].as_u64(), h["files_removed"].as_u64()),
        (Some(1), Some(1)),
        "{h}"
    );
    assert_eq!(search(&app, &t, "q=name:extra_copy.fits").await["total"], 0);

    // The admin page shows the same progress; users may not start one.
    let page = plain()
        .get(app.u("/admin/search"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("junk.fits") && page.contains("Files seen"),
        "{page}"
    );
    let r = plain()
        .post(app.u("/api/v1/admin/search/harvest"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn bad_searches_get_stable_codes() {
    let app = spawn_app().await;
    let t = app.user_with_role("bea", "user").await;
    let long = "a".repeat(501);
    for (q, code) in [
        ("colour=red", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("date_from=yesterday", "invalid_query"),
        ("facet=colour:red", "unknown_facet"),
        ("facet=mission", "invalid_query"),
        (&format!("q={long}") as &str, "query_too_long"),
        ("q=title:(", "invalid_search_syntax"),
        ("q=colour:red", "invalid_search_syntax"),
        ("q=%22unclosed", "invalid_search_syntax"),
        ("ra=abc&dec=1&radius=1", "invalid_cone"),
        ("ra=10&dec=95&radius=1", "invalid_cone"),
        ("ra=10&dec=5&radius=-1", "invalid_cone"),
        ("ra=10&dec=5", "invalid_cone"),
        ("ra=400&dec=5&radius=1", "invalid_cone"),
    ] {
        let (status, v) = get_json(&plain(), &app.u(&format!("/api/v1/search?{q}")), &t).await;
        assert_eq!(status, 400, "{q}: {v}");
        assert_eq!(v["code"], code, "{q}: {v}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    // The page shows the problem instead of failing.
    let page = plain()
        .get(app.u("/discover?ra=abc&dec=1&radius=1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("ra must be a number of degrees")
    );
}

/// Runs astropy on a VOTable and returns what it printed.
fn astropy(votable: &[u8], script: &str) -> String {
    let py = repo_root().join(".venv/bin/python");
    assert!(py.exists(), "the virtualenv with astropy is missing");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answer.xml");
    std::fs::write(&file, votable).unwrap();
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "astropy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const READ_TABLE: &str = r#"
import sys, warnings
from astropy.io.votable import parse
from astropy.io.votable.exceptions import VOWarning
with warnings.catch_warnings():
    warnings.simplefilter("error", VOWarning)
    vot = parse(sys.argv[1])
res = vot.resources[0]
print("STATUS", [i.value for i in res.infos if i.name == "QUERY_STATUS"][0])
t = vot.get_first_table()
print("UCDS", ",".join(f.ucd or "" for f in t.fields))
tab = t.to_table()
for row in tab:
    print("ROW", row["id"], "%.4f" % row["ra"], "%.4f" % row["dec"], row["instrument"])
"#;

const READ_ERROR: &str = r#"
import sys
from astropy.io.votable import parse
vot = parse(sys.argv[1])
res = vot.resources[0]
for i in res.infos:
    print("INFO", i.name, i.value, (i.content or "").strip())
"#;

#[tokio::test]
async fn simple_cone_search_answers_votables_that_astropy_reads() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    harvested(&app, &admin).await;
    let t = app.user_with_role("vo", "user").await;
    let r = plain()
        .get(app.u("/api/v1/scs?RA=10.68&DEC=41.27&SR=0.05&VERB=2"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-votable+xml");
    let out = astropy(&r.bytes().await.unwrap(), READ_TABLE);
    assert!(out.contains("STATUS OK"), "{out}");
    let ucds = out.lines().find(|l| l.starts_with("UCDS")).unwrap();
    for ucd in [
        "ID_MAIN",
        "POS_EQ_RA_MAIN",
        "POS_EQ_DEC_MAIN",
        "instr.filter",
        "time.start;obs",
    ] {
        assert!(ucds.split([' ', ',']).any(|u| u == ucd), "{ucd} in {ucds}");
    }
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("ROW")).collect();
    assert!(
        rows.iter()
            .any(|r| r.contains("dataset:deep-fields/skysim_m31_g.fits") && r.contains("SKYSIM")),
        "{out}"
    );
    assert!(rows.iter().any(|r| r.contains("allsky")), "{out}");
    // Nearest first: M31's field before the all-sky map centred elsewhere.
    assert!(rows[0].contains("m31"), "{out}");

    // MAXREC cuts the answer and says so.
    let r = plain()
        .get(app.u("/api/v1/scs?ra=10.68&dec=41.27&sr=0.05&MAXREC=1"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let out = astropy(&r.bytes().await.unwrap(), READ_TABLE);
    assert!(out.contains("STATUS OVERFLOW"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ROW")).count(), 1);

    // Bad parameters and missing credentials are VOTable errors too.
    for (q, status, code) in [
        ("RA=abc&DEC=1&SR=1", 400, "invalid_cone"),
        ("RA=10&DEC=-95&SR=1", 400, "invalid_cone"),
        ("RA=10&DEC=5", 400, "invalid_cone"),
        ("RA=10&DEC=5&SR=1&MAXREC=x", 400, "invalid_query"),
    ] {
        let r = plain()
            .get(app.u(&format!("/api/v1/scs?{q}")))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{q}");
        let out = astropy(&r.bytes().await.unwrap(), READ_ERROR);
        assert!(out.contains("INFO QUERY_STATUS ERROR"), "{q}: {out}");
        assert!(
            out.contains(&format!("INFO ERROR_CODE {code}")),
            "{q}: {out}"
        );
    }
    let r = plain()
        .get(app.u("/api/v1/scs?RA=10&DEC=5&SR=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let out = astropy(&r.bytes().await.unwrap(), READ_ERROR);
    assert!(out.contains("INFO ERROR_CODE unauthenticated"), "{out}");
}

fn restricted(source: &Path) -> VolumeConfig {
    VolumeConfig {
        name: "secret-survey".to_owned(),
        title: "Secret survey".to_owned(),
        description: "Proprietary frames".to_owned(),
        source: source.to_path_buf(),
        mount_path: None,
        zone: None,
        metadata: VolumeMetadata {
            domain: vec!["astronomy".to_owned()],
            mission: vec!["Hidden Mission".to_owned()],
            instrument: vec![],
        },
        visible_to: Some(vec!["user:alice".to_owned(), "role:developer".to_owned()]),
    }
}

#[tokio::test]
async fn a_restricted_volume_exists_only_for_its_audience() {
    let data = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let demo = insitu_fits::generate_demo_volumes(data.path()).unwrap();
    let deep = demo.iter().find(|v| v.name == "deep-fields").unwrap();
    let secret = data.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    // A frame at a place no public dataset is (the M42 field, moved).
    std::fs::copy(
        deep.path.join("skysim_m31_g.fits"),
        secret.join("frame_secret.fits"),
    )
    .unwrap();
    std::fs::write(
        secret.join("frame_secret.fits.meta.toml"),
        "title = \"Proprietary frame\"\nra = 200.0\ndec = -60.0\ninstrument = \"CLASSIFIED\"\n",
    )
    .unwrap();
    for db in backends() {
        let app = spawn_with(Options {
            db,
            extra_volumes: vec![restricted(&secret)],
            ..Options::default()
        })
        .await;
        let admin = app.admin_token().await;
        harvested(&app, &admin).await;
        let alice = app.user_with_role("alice", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let dora = app.user_with_role("dora", "developer").await;
        let client = plain();

        // Search, facet counts, suggestions of values, cone.
        // role:developer admits developers and the roles above them.
        for (who, sees) in [(&alice, true), (&dora, true), (&admin, true), (&bob, false)] {
            let all = search(&app, who, "limit=200").await;
            let listed = ids(&all).iter().any(|i| i.contains("secret-survey"));
            assert_eq!(listed, sees, "{db:?} {all}");
            assert_eq!(count(&all, "mission", "Hidden Mission") > 0, sees, "{db:?}");
            assert_eq!(count(&all, "instrument", "CLASSIFIED") > 0, sees, "{db:?}");
            assert_eq!(count(&all, "volume", "secret-survey") > 0, sees, "{db:?}");
            let q = search(&app, who, "q=proprietary").await;
            assert_eq!(q["total"].as_u64().unwrap() > 0, sees, "{db:?} {q}");
            let cone = search(&app, who, "ra=200&dec=-60&radius=0.5&facet=type:dataset").await;
            let placed = ids(&cone).contains(&"dataset:secret-survey/frame_secret.fits".to_owned());
            assert_eq!(placed, sees, "{db:?} {cone}");
            let scs = client
                .get(app.u("/api/v1/scs?RA=200&DEC=-60&SR=0.5"))
                .bearer_auth(who)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(scs.contains("frame_secret"), sees, "{db:?} {scs}");
            // The volume catalogue and the volume itself.
            let (_, vols) = get_json(&client, &app.u("/api/v1/volumes"), who).await;
            let names: Vec<&str> = vols["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            assert_eq!(names.contains(&"secret-survey"), sees, "{db:?} {names:?}");
            assert_eq!(
                count(&vols, "mission", "Hidden Mission") > 0,
                sees,
                "{db:?}"
            );
            let (status, one) =
                get_json(&client, &app.u("/api/v1/volumes/secret-survey"), who).await;
            if sees {
                assert_eq!(status, 200);
            } else {
                assert_eq!(
                    (status, one["code"].as_str()),
                    (404, Some("volume_not_found")),
                    "{db:?}"
                );
            }
            // Pages.
            let page = |path: &str| {
                let req = client.get(app.u(path)).bearer_auth(who);
                async move {
                    let r = req.send().await.unwrap();
                    (r.status().as_u16(), r.text().await.unwrap())
                }
            };
            let (_, discover) = page("/discover?q=proprietary").await;
            assert_eq!(discover.contains("frame_secret"), sees, "{db:?}");
            let (_, discover_all) = page("/discover").await;
            assert_eq!(discover_all.contains("Hidden Mission"), sees, "{db:?}");
            let (_, volumes_page) = page("/volumes").await;
            assert_eq!(volumes_page.contains("secret-survey"), sees, "{db:?}");
            let (status, _) = page("/volumes/secret-survey").await;
            assert_eq!(status == 200, sees, "{db:?} {status}");
        }

        // My volumes and launch: refused to bob as if it did not exist.
        let put = |who: &str| {
            client
                .put(app.u("/api/v1/me/volumes/secret-survey"))
                .bearer_auth(who)
                .send()
        };
        assert_eq!(put(&alice).await.unwrap().status(), 200);
        let r = put(&bob).await.unwrap();
        assert_eq!(r.status(), 404);
        // Removing it answers as for a volume that does not exist, so the
        // name cannot be probed that way either.
        let delete = |who: &str| {
            client
                .delete(app.u("/api/v1/me/volumes/secret-survey"))
                .bearer_auth(who)
                .send()
        };
        let r = delete(&bob).await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "volume_not_found");
        let launch = |who: &str, body: Value| {
            client
                .post(app.u("/api/v1/labs"))
                .bearer_auth(who)
                .json(&body)
                .send()
        };
        let r = launch(
            &bob,
            json!({"datalab": "testapp", "volumes": ["secret-survey"]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "volume_not_found");
        // A file in the hidden volume is not even named in the refusal.
        let r = launch(
            &bob,
            json!({"datalab": "ds9", "volumes": ["deep-fields"],
                   "file": "/media/data/secret-survey/frame_secret.fits"}),
        )
        .await
        .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "invalid_launch_file", "{v}");
        assert!(
            !v["message"].as_str().unwrap().contains("secret-survey is"),
            "{v}"
        );
        assert!(!v["message"].as_str().unwrap().contains("not among"), "{v}");
        // Alice may launch with it (the lab's own outcome does not matter here).
        let r = launch(
            &alice,
            json!({"datalab": "testapp", "volumes": ["secret-survey"]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 202);
        let lab: Value = r.json().await.unwrap();
        let id = lab["id"].as_str().unwrap();
        crate::labs::settle(&app, &alice, id).await;
        let r = client
            .post(app.u(&format!("/api/v1/labs/{id}/stop")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_scientist_searches_narrows_by_two_facets_and_launches_a_datalab() {
    let Some(d) = crate::browser::Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // A launchable query tool, so a result can be launched for real.
    let webapp = repo_root().join("crates/insitu/tests/it/fixtures/webapp.py");
    std::fs::write(
        app.dir.path().join("catalogue/skyquery.toml"),
        format!(
            "title = \"Sky query\"\ndescription = \"Asks the archive for sources near a position\"\nversion = \"1\"\n\
             kind = \"web\"\nlicense = \"MIT\"\n[launch]\ncommand = [\"python3\", \"{}\", \"{{port}}\", \"{{base_url}}\"]\n\
             readiness_path = \"/\"\n[tags]\ndomain = [\"astronomy\"]\nproperties = [\"query_tool\"]\n",
            webapp.display()
        ),
    )
    .unwrap();
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    harvested(&app, &admin).await;
    app.user_with_role("nora", "user").await;

    d.go(&app.u("/discover")).await;
    d.wait_for("location.pathname === '/login'").await;
    d.type_into("#username", "nora").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/discover'").await;
    let kinds = d
        .script("return [...document.querySelectorAll('.card')].map(c => c.dataset.kind);")
        .await;
    let kinds: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"datalab") && kinds.contains(&"dataset") && kinds.contains(&"volume"),
        "{kinds:?}"
    );

    // A search, then two facets, each ticked box searching again at once.
    d.type_into("#search", "archive OR catalogues OR sky").await;
    d.click("#search-submit").await;
    d.wait_for("location.search.includes('q=')").await;
    d.click("input[name=facet][value='type:datalab']").await;
    d.wait_for("location.search.includes('type%3Adatalab')")
        .await;
    d.click("input[name=facet][value='property:query_tool']")
        .await;
    d.wait_for("location.search.includes('property%3Aquery_tool')")
        .await;
    let ids = d
        .script("return [...document.querySelectorAll('.card')].map(c => c.dataset.id);")
        .await;
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(ids.contains(&"datalab:skyquery"), "{ids:?}");
    assert!(ids.iter().all(|i| i.starts_with("datalab:")), "{ids:?}");
    assert!(
        !ids.contains(&"datalab:jupyterlab"),
        "not a query tool: {ids:?}"
    );
    // A facet's counts ignore its own selection: other properties stay.
    let counts = d
        .script("return document.querySelector('fieldset[data-facet=property]').innerText;")
        .await;
    assert!(
        counts.as_str().unwrap().contains("visualisation tool"),
        "other properties stay counted: {counts}"
    );
    let shot = d.screenshot("discover-narrowed.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    d.click("button.launch[data-datalab=skyquery]").await;
    d.wait_for("location.pathname.startsWith('/my-labs/')")
        .await;
    for _ in 0..600 {
        let state = d
            .script("const s = document.querySelector('#lab-state'); return s ? s.innerText : '';")
            .await;
        if state == "running" {
            break;
        }
        assert_ne!(state, "failed", "the lab failed to start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_for("document.querySelector('#open')").await;
    d.screenshot("discover-launched.png").await;
    let token = app.token("nora", PASSWORD).await;
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &token).await;
    assert_eq!(labs["items"][0]["datalab"], "skyquery");
    let id = labs["items"][0]["id"].as_str().unwrap();
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
}

/// What `who` finds of the `team-survey` volume, surface by surface: the
/// volume catalogue, the volume by name, search, facet counts, cone search
/// as JSON and SCS, the pages, my volumes, a launch with it and (with the
/// engine built) a run naming a file on it. Where it is hidden, each
/// answer is the one for a volume that does not exist.
async fn team_survey_seen(app: &TestApp, user: &str, who: &str) -> Vec<(&'static str, bool)> {
    let client = plain();
    let mut seen = Vec::new();
    let (_, vols) = get_json(&client, &app.u("/api/v1/volumes"), who).await;
    let listed = vols["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "team-survey");
    seen.push(("volume list", listed));
    let (status, one) = get_json(&client, &app.u("/api/v1/volumes/team-survey"), who).await;
    assert!(
        status == 200 || (status, one["code"].as_str()) == (404, Some("volume_not_found")),
        "{status} {one}"
    );
    seen.push(("volume by name", status == 200));
    let all = search(app, who, "limit=200").await;
    seen.push((
        "search",
        ids(&all).iter().any(|i| i.contains("team-survey")),
    ));
    seen.push(("facet count", count(&all, "volume", "team-survey") > 0));
    let q = search(app, who, "q=proprietary").await;
    seen.push(("free text", q["total"].as_u64().unwrap() > 0));
    let cone = search(app, who, "ra=200&dec=-60&radius=0.5&facet=type:dataset").await;
    seen.push((
        "cone",
        ids(&cone).contains(&"dataset:team-survey/frame_team.fits".to_owned()),
    ));
    let scs = client
        .get(app.u("/api/v1/scs?RA=200&DEC=-60&SR=0.5"))
        .bearer_auth(who)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    seen.push(("scs", scs.contains("frame_team")));
    let page = |path: &str| {
        let req = client.get(app.u(path)).bearer_auth(who);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    seen.push((
        "volumes page",
        page("/volumes").await.1.contains("team-survey"),
    ));
    seen.push(("volume page", page("/volumes/team-survey").await.0 == 200));
    seen.push((
        "discover page",
        page("/discover?q=proprietary")
            .await
            .1
            .contains("frame_team"),
    ));
    let r = client
        .put(app.u("/api/v1/me/volumes/team-survey"))
        .bearer_auth(who)
        .send()
        .await
        .unwrap();
    let added = r.status().as_u16();
    assert!(added == 200 || added == 404, "{added}");
    let (_, mine) = get_json(&client, &app.u("/api/v1/me/volumes"), who).await;
    let in_mine = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "team-survey");
    seen.push(("my volumes", added == 200 && in_mine));
    seen.push(("my volumes list", in_mine));
    let r = client
        .post(app.u("/api/v1/labs"))
        .bearer_auth(who)
        .json(&json!({"datalab": "testapp", "volumes": ["team-survey"]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let lab: Value = r.json().await.unwrap();
    if status == 202 {
        let id = lab["id"].as_str().unwrap();
        crate::labs::settle(app, who, id).await;
        let r = client
            .post(app.u(&format!("/api/v1/labs/{id}/stop")))
            .bearer_auth(who)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    } else {
        assert_eq!((status, &lab["code"]), (404, &json!("volume_not_found")));
    }
    seen.push(("launch", status == 202));
    if crate::runs::engine_available() {
        let (status, run) = crate::runs::submit(
            app,
            who,
            &format!("{user}/shout"),
            json!({"words": ["a"], "flag": {"class": "File", "path": "/media/data/team-survey/flag.txt"}}),
        )
        .await;
        if status == 202 {
            let id = run["id"].as_str().unwrap();
            let run = crate::runs::finish(app, who, id, Duration::from_secs(120)).await;
            assert_eq!(run["state"], "succeeded", "{run}");
        } else {
            assert_eq!(
                (status, &run["code"]),
                (422, &json!("invalid_job")),
                "{run}"
            );
        }
        seen.push(("run", status == 202));
    }
    seen
}

/// Asserts that `who` sees the team's volume everywhere, or nowhere.
async fn assert_team_survey(app: &TestApp, (user, who): (&str, &str), sees: bool) {
    let seen = team_survey_seen(app, user, who).await;
    let wrong: Vec<_> = seen.iter().filter(|(_, s)| *s != sees).collect();
    assert!(
        wrong.is_empty(),
        "{user} should {}see the team's volume: {wrong:?}",
        if sees { "" } else { "not " }
    );
}

/// `visible_to = ["team:dpac"]`: the team's accepted members see the
/// volume everywhere, from the moment they accept until they leave; an
/// invitee and anyone else never do.
#[tokio::test]
async fn a_team_restricted_volume_exists_only_for_the_teams_members() {
    let data = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let demo = insitu_fits::generate_demo_volumes(data.path()).unwrap();
    let deep = demo.iter().find(|v| v.name == "deep-fields").unwrap();
    let source = data.path().join("team");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(
        deep.path.join("skysim_m31_g.fits"),
        source.join("frame_team.fits"),
    )
    .unwrap();
    std::fs::write(
        source.join("frame_team.fits.meta.toml"),
        "title = \"Proprietary frame\"\nra = 200.0\ndec = -60.0\n",
    )
    .unwrap();
    std::fs::write(source.join("flag.txt"), "ok").unwrap();
    let volume = VolumeConfig {
        name: "team-survey".to_owned(),
        visible_to: Some(vec!["team:dpac".to_owned()]),
        ..restricted(&source)
    };
    for db in backends() {
        let app = spawn_with(Options {
            db,
            extra_volumes: vec![volume.clone()],
            configure: crate::runs::pipelines_config,
            ..Options::default()
        })
        .await;
        let admin = app.admin_token().await;
        harvested(&app, &admin).await;
        let ann = app.user_with_role("ann", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let cid = app.user_with_role("cid", "user").await;
        let eve = app.user_with_role("eve", "user").await;
        for who in [&ann, &bob, &cid, &eve] {
            crate::runs::push_shout(&app, who).await;
        }
        let call = |who: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
            let mut req = plain().request(method, app.u(path)).bearer_auth(who);
            if let Some(b) = body {
                req = req.json(&b);
            }
            async move { req.send().await.unwrap().status().as_u16() }
        };
        use reqwest::Method as M;
        let create = Some(json!({"name": "dpac"}));
        assert_eq!(call(&ann, M::POST, "/api/v1/teams", create).await, 201);
        for invitee in ["bob", "cid"] {
            let invite = Some(json!({"username": invitee}));
            let status = call(&ann, M::POST, "/api/v1/teams/dpac/members", invite).await;
            assert_eq!(status, 201);
        }

        // Only the owner is a member yet.
        assert_team_survey(&app, ("ann", &ann), true).await;
        assert_team_survey(&app, ("bob", &bob), false).await;
        assert_team_survey(&app, ("eve", &eve), false).await;

        // Bob accepts: at once a member.
        assert_eq!(
            call(&bob, M::POST, "/api/v1/teams/dpac/accept", None).await,
            200
        );
        assert_team_survey(&app, ("bob", &bob), true).await;
        assert_team_survey(&app, ("cid", &cid), false).await;

        // Bob leaves: the volume is gone for him, his volumes included.
        let leave = call(&bob, M::DELETE, "/api/v1/teams/dpac/members/bob", None).await;
        assert_eq!(leave, 204);
        assert_team_survey(&app, ("bob", &bob), false).await;
        assert_team_survey(&app, ("eve", &eve), false).await;
    }
}
