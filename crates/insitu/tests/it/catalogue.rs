//! The datalab catalogue: listing, free-text and facet filters, facet counts,
//! and reporting of definitions that fail to load.

use serde_json::Value;

use crate::harness::*;

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_and_filters_the_catalogue() {
    let app = spawn_app().await;
    let t = app.user_with_role("gina", "user").await;
    let c = plain();
    let q = |query: &str| app.u(&format!("/api/v1/datalabs{query}"));

    let (status, all) = get_json(&c, &q(""), &t).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&all),
        [
            "aladin",
            "crashes",
            "ds9",
            "fv",
            "gpuapp",
            "jupyterlab",
            "memhog",
            "qfitsview",
            "testapp",
            "topcat"
        ],
        "broken definitions are left out"
    );

    let (_, desktop) = get_json(&c, &q("?kind=desktop"), &t).await;
    assert_eq!(
        names(&desktop),
        ["aladin", "ds9", "fv", "qfitsview", "topcat"]
    );
    let (_, query_tools) = get_json(&c, &q("?property=query_tool"), &t).await;
    assert_eq!(names(&query_tools), ["aladin", "topcat"]);
    let (_, either) = get_json(&c, &q("?mission=Gaia&mission=JWST"), &t).await;
    assert_eq!(
        names(&either),
        ["ds9", "topcat"],
        "values of one facet are alternatives"
    );
    let (_, both) = get_json(&c, &q("?mission=JWST&property=query_tool"), &t).await;
    assert!(names(&both).is_empty(), "facets combine");
    let (_, text) = get_json(&c, &q("?q=sky%20atlas"), &t).await;
    assert_eq!(names(&text), ["aladin"], "every word must match");
    let (_, text) = get_json(&c, &q("?q=NOTEBOOKS"), &t).await;
    assert_eq!(names(&text), ["jupyterlab"], "case does not matter");

    // Facet counts ignore the facet's own selection.
    let kinds = &desktop["facets"]["kind"];
    assert_eq!(
        kinds,
        &serde_json::json!([{"value": "desktop", "count": 5}, {"value": "web", "count": 5}])
    );

    let (status, one) = get_json(&c, &app.u("/api/v1/datalabs/ds9"), &t).await;
    assert_eq!(status, 200);
    assert_eq!(
        (one["kind"].as_str(), one["license"].as_str()),
        (Some("desktop"), Some("GPL-3.0-or-later"))
    );
    let (status, missing) = get_json(&c, &app.u("/api/v1/datalabs/nope"), &t).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("datalab_not_found"))
    );
    let (status, bad) = get_json(&c, &q("?colour=red"), &t).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_query")));
}

#[tokio::test]
async fn invalid_definitions_are_reported_and_reload_picks_up_fixes() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let c = plain();
    let (status, problems) = get_json(&c, &app.u("/api/v1/admin/catalogue/problems"), &admin).await;
    assert_eq!(status, 200);
    let items = problems["items"].as_array().unwrap();
    let broken = items
        .iter()
        .find(|p| p["file"].as_str().unwrap().ends_with("broken-kind.toml"))
        .unwrap();
    assert_eq!(broken["field"], "kind");
    assert!(broken["reason"].as_str().unwrap().contains("hologram"));
    let syntax = items
        .iter()
        .find(|p| p["file"].as_str().unwrap().ends_with("bad-syntax.toml"))
        .unwrap();
    assert_eq!(syntax["field"], "file");

    // The admin page shows them too.
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let page = s
        .client
        .get(app.u("/admin/catalogue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("broken-kind.toml") && page.contains("hologram"));

    std::fs::write(
        app.dir.path().join("catalogue/broken-kind.toml"),
        "title = \"Fixed\"\ndescription = \"now valid\"\nversion = \"1\"\nkind = \"web\"\nlicense = \"MIT\"\n[launch]\ncommand = [\"x\", \"--port={port}\"]\n",
    )
    .unwrap();
    let r = c
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let after: Value = r.json().await.unwrap();
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        1,
        "only the syntax error is left"
    );
    let (_, all) = get_json(&c, &app.u("/api/v1/datalabs"), &admin).await;
    assert!(names(&all).contains(&"broken-kind".to_owned()));
}

#[tokio::test]
async fn the_catalogue_page_filters_by_text_and_tags() {
    let app = spawn_app().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let page = s
        .client
        .get(app.u("/datalabs?kind=web"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-name=\"jupyterlab\""));
    assert!(!page.contains("data-name=\"ds9\""));
    let page = s
        .client
        .get(app.u("/datalabs?q=%3Cscript%3E"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "search text is escaped");
    assert!(page.contains("&lt;script&gt;"));
}
