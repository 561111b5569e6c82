//! The data volume catalogue and "my volumes".

use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn volumes_are_listed_added_and_removed_on_every_backend() {
    for db in backends() {
        let app = spawn_on(db).await;
        let t = app.user_with_role("hana", "user").await;
        let other = app.user_with_role("ivan", "user").await;
        let c = plain();
        let (status, list) = get_json(&c, &app.u("/api/v1/volumes"), &t).await;
        assert_eq!(status, 200, "{db:?}");
        let items = list["items"].as_array().unwrap();
        let names: Vec<&str> = items.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["allsky-survey", "deep-fields", "source-catalogue"],
            "{db:?}"
        );
        let deep = &items[1];
        assert_eq!(deep["mount_path"], "/media/data/deep-fields");
        assert_eq!(
            deep["metadata"]["instrument"],
            serde_json::json!(["SKYSIM"])
        );
        assert!(deep["file_count"].as_u64().unwrap() >= 3);
        assert!(deep["size_bytes"].as_u64().unwrap() > 3 * 256 * 256 * 4);
        assert_eq!(deep["in_my_volumes"], false);

        let r = c
            .put(app.u("/api/v1/me/volumes/deep-fields"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{db:?}");
        let r = c
            .put(app.u("/api/v1/me/volumes/deep-fields"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "adding twice is harmless ({db:?})");
        let (_, mine) = get_json(&c, &app.u("/api/v1/me/volumes"), &t).await;
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
        let (_, theirs) = get_json(&c, &app.u("/api/v1/me/volumes"), &other).await;
        assert!(
            theirs["items"].as_array().unwrap().is_empty(),
            "my volumes are mine only"
        );
        let (_, one) = get_json(&c, &app.u("/api/v1/volumes/deep-fields"), &t).await;
        assert_eq!(one["in_my_volumes"], true);

        let r = c
            .delete(app.u("/api/v1/me/volumes/deep-fields"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (_, mine) = get_json(&c, &app.u("/api/v1/me/volumes"), &t).await;
        assert!(mine["items"].as_array().unwrap().is_empty());

        let r = c
            .put(app.u("/api/v1/me/volumes/not-a-volume"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "volume_not_found");
    }
}

#[tokio::test]
async fn volumes_filter_by_text_and_metadata() {
    let app = spawn_app().await;
    let t = app.admin_token().await;
    let c = plain();
    let (_, l) = get_json(&c, &app.u("/api/v1/volumes?q=binary%20table"), &t).await;
    let names: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["source-catalogue"]);
    let (_, l) = get_json(
        &c,
        &app.u("/api/v1/volumes?instrument=SKYSIM&domain=astronomy"),
        &t,
    )
    .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 3);
    assert_eq!(l["facets"]["mission"][0]["count"], 3);
    let (_, l) = get_json(&c, &app.u("/api/v1/volumes?mission=Euclid"), &t).await;
    assert!(l["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_volume_page_lists_real_fits_files() {
    let app = spawn_app().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    let page = s
        .client
        .get(app.u("/volumes/deep-fields"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("skysim_m31_g.fits"), "{page}");
    assert!(
        page.contains("&#x2f;media&#x2f;data&#x2f;deep-fields"),
        "mount path shown (HTML-escaped)"
    );
    let hdus =
        insitu_fits::read_headers(&app.dir.path().join("volumes/deep-fields/skysim_m31_g.fits"))
            .unwrap();
    assert_eq!(hdus[0].get_str("OBJECT"), Some("M31"));
    assert_eq!(hdus[0].get_str("TELESCOP"), Some("INSITU-SIM"));
}
