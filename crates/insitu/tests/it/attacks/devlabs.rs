//! Attacks on user-developed datalabs: other users editing, building,
//! submitting or exporting a developer's draft; developers approving
//! publications; users outside a private share looking for it (API,
//! catalogue listing, search, pages); a rejected version launched by
//! others; and Containerfiles and container labs reaching for the host.

use serde_json::{Value, json};

use crate::devlabs::{
    PYTHON_BASE, build, call, containers_available, launch_settled, open, stop, tool,
    web_tool_draft,
};
use crate::harness::*;

/// Whether `token`'s user finds `name` anywhere in the catalogue: the API
/// listing, a search, the datalab itself and its page, and the discovery
/// portal (its search and its facet counts).
async fn finds(app: &TestApp, user: &str, token: &str, name: &str) -> bool {
    let listed = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == name)
    };
    let (status, all) = call(app, "GET", "/api/v1/datalabs", token, None).await;
    assert_eq!(status, 200);
    let (status, searched) = call(
        app,
        "GET",
        &format!("/api/v1/datalabs?q={name}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (one, _) = call(app, "GET", &format!("/api/v1/datalabs/{name}"), token, None).await;
    let (status, discovered) = call(
        app,
        "GET",
        &format!("/api/v1/search?q={name}&facet=type:datalab"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{discovered}");
    let in_discovery = discovered["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == format!("datalab:{name}"));
    let counted = discovered["facets"]["type"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["value"] == "datalab" && c["count"].as_u64() > Some(0));
    let session = app.login(user, PASSWORD).await;
    let page = session
        .client
        .get(app.u("/datalabs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let own_page = session
        .client
        .get(app.u(&format!("/datalabs/{name}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let found = [
        listed(&all),
        listed(&searched),
        one == 200,
        page.contains(&format!("/datalabs/{name}\"")),
        own_page == 200,
        in_discovery,
        counted,
    ];
    assert!(
        found.iter().all(|f| *f) || found.iter().all(|f| !*f),
        "{user} sees {name} in some places and not others: {found:?}"
    );
    found[0]
}

#[tokio::test]
async fn only_the_developer_changes_builds_shares_submits_or_exports_a_draft() {
    let app = spawn_app().await;
    let dora = app.user_with_role("dora", "developer").await;
    let eve = app.user_with_role("eve", "developer").await;
    let root = app.admin_token().await;
    let (status, d) = call(
        &app,
        "POST",
        "/api/v1/devlabs",
        &dora,
        Some(json!({"name": "mine", "template": "web-tool"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let change = json!({"definition": d["definition"], "source": d["source"]});
    let attempts = |who: &str| -> Vec<(&'static str, String, Option<Value>)> {
        let _ = who;
        vec![
            ("GET", "/api/v1/devlabs/mine".to_owned(), None),
            (
                "PUT",
                "/api/v1/devlabs/mine".to_owned(),
                Some(change.clone()),
            ),
            ("POST", "/api/v1/devlabs/mine/builds".to_owned(), None),
            ("GET", "/api/v1/devlabs/mine/builds".to_owned(), None),
            (
                "PUT",
                "/api/v1/devlabs/mine/audience".to_owned(),
                Some(json!({"public": true})),
            ),
            (
                "POST",
                "/api/v1/devlabs/mine/submissions".to_owned(),
                Some(json!({"build": 0})),
            ),
            (
                "GET",
                "/api/v1/devlabs/mine/builds/0/export".to_owned(),
                None,
            ),
            ("DELETE", "/api/v1/devlabs/mine".to_owned(), None),
        ]
    };
    // Another developer does not even learn that it exists; an
    // administrator is no developer of it either.
    for (token, who) in [(&eve, "eve"), (&root, "admin")] {
        for (method, path, body) in attempts(who) {
            let (status, e) = call(&app, method, &path, token, body).await;
            assert_eq!(
                (status, e["code"].as_str()),
                (404, Some("devlab_not_found")),
                "{who} {method} {path}: {e}"
            );
        }
    }
    // Named in its share, a developer sees it and still changes nothing.
    let (status, _) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/mine/audience",
        &dora,
        Some(json!({"public": false, "users": ["eve"]})),
    )
    .await;
    assert_eq!(status, 200);
    for (method, path, body) in attempts("eve") {
        let (status, e) = call(&app, method, &path, &eve, body).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (403, Some("not_devlab_owner")),
            "eve {method} {path}: {e}"
        );
    }
    let (_, d) = call(&app, "GET", "/api/v1/devlabs/mine", &dora, None).await;
    assert_eq!(d["definition"], change["definition"]);
    assert!(d["builds"].as_array().unwrap().is_empty(), "{d}");
    assert_eq!(d["public"], false);
    // A plain user does not develop at all.
    let ulla = app.user_with_role("ulla", "user").await;
    let (status, _) = call(&app, "GET", "/api/v1/devlabs", &ulla, None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn only_moderators_decide_and_never_on_their_own_datalab() {
    if !containers_available() {
        return;
    }
    let app = spawn_app().await;
    let dora = app.user_with_role("dora", "developer").await;
    let eve = app.user_with_role("eve", "developer").await;
    let mona = app.user_with_role("mona", "moderator").await;
    web_tool_draft(&app, &dora, "tool").await;
    let b = build(&app, &dora, "tool").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    let (status, r) = call(
        &app,
        "POST",
        "/api/v1/devlabs/tool/submissions",
        &dora,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    for (token, who) in [(&dora, "dora"), (&eve, "eve")] {
        let (status, _) = call(&app, "GET", "/api/v1/moderation/submissions", token, None).await;
        assert_eq!(status, 403, "{who} reads the queue");
        for action in ["approve", "reject"] {
            let (status, _) = call(
                &app,
                "POST",
                &format!("/api/v1/moderation/submissions/tool/0/{action}"),
                token,
                Some(json!({"reason": "looks fine to me"})),
            )
            .await;
            assert_eq!(status, 403, "{who} {action}s");
        }
    }
    // A moderator's own datalab goes to another moderator.
    web_tool_draft(&app, &mona, "modtool").await;
    let b = build(&app, &mona, "modtool").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/devlabs/modtool/submissions",
        &mona,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/moderation/submissions/modtool/0/approve",
        &mona,
        Some(json!({})),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (403, Some("own_submission")));
    // Nothing was decided.
    let (_, queue) = call(&app, "GET", "/api/v1/moderation/submissions", &mona, None).await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 2, "{queue}");
}

#[tokio::test]
async fn a_private_share_is_seen_only_by_the_named_users_and_a_rejected_build_only_by_its_developer()
 {
    if !containers_available() {
        return;
    }
    let app = spawn_app().await;
    let dora = app.user_with_role("dora", "developer").await;
    let nina = app.user_with_role("nina", "user").await;
    let otto = app.user_with_role("otto", "user").await;
    let mona = app.user_with_role("mona", "moderator").await;
    web_tool_draft(&app, &dora, "secretlab").await;
    let b = build(&app, &dora, "secretlab").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    // The catalogue takes a build in once it has ended.
    let start = std::time::Instant::now();
    while call(&app, "GET", "/api/v1/datalabs/secretlab", &dora, None)
        .await
        .0
        != 200
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finds(&app, "dora", &dora, "secretlab").await);
    assert!(!finds(&app, "nina", &nina, "secretlab").await);
    let (status, _) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/secretlab/audience",
        &dora,
        Some(json!({"public": false, "users": ["nina"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(finds(&app, "nina", &nina, "secretlab").await);
    assert!(!finds(&app, "otto", &otto, "secretlab").await);
    assert!(
        !finds(&app, "mona", &mona, "secretlab").await,
        "a moderator sees only what is submitted"
    );
    // Otto can neither launch nor star it; nina can launch it.
    let (status, e) = crate::labs::launch(&app, &otto, "secretlab", &[]).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (404, Some("datalab_not_found")),
        "{e}"
    );
    let (status, _) = call(&app, "PUT", "/api/v1/datalabs/secretlab/star", &otto, None).await;
    assert_eq!(status, 404);
    let lab = launch_settled(&app, &nina, "secretlab", &[]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    stop(&app, &nina, lab["id"].as_str().unwrap()).await;

    // Rejected: its developer reads why; nobody else launches it.
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/devlabs/secretlab/submissions",
        &dora,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/moderation/submissions/secretlab/0/reject",
        &mona,
        Some(json!({})),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (422, Some("reason_required")));
    let (status, r) = call(
        &app,
        "POST",
        "/api/v1/moderation/submissions/secretlab/0/reject",
        &mona,
        Some(json!({"reason": "the tool lists the workspace of whoever opens it"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, d) = call(&app, "GET", "/api/v1/devlabs/secretlab", &dora, None).await;
    assert_eq!(d["state"], "rejected", "{d}");
    assert_eq!(
        d["releases"][0]["reason"],
        "the tool lists the workspace of whoever opens it"
    );
    for version in [None, Some("0.1.0"), Some("0.1.0-0")] {
        let r = plain()
            .post(app.u("/api/v1/labs"))
            .bearer_auth(&nina)
            .json(&json!({"datalab": "secretlab", "volumes": [], "version": version}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            (status, e["code"].as_str()),
            (404, Some("version_not_found")),
            "nina launches the rejected build at {version:?}: {e}"
        );
    }
    assert!(
        !finds(&app, "nina", &nina, "secretlab").await,
        "a rejected build is out of the shared catalogue"
    );
    // Its developer still tests it.
    let lab = launch_settled(&app, &dora, "secretlab", &[]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    stop(&app, &dora, lab["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_containerfile_cannot_reach_the_platform_or_write_outside_its_context() {
    if !containers_available() {
        return;
    }
    let app = spawn_app().await;
    let dora = app.user_with_role("dora", "developer").await;
    let d = web_tool_draft(&app, &dora, "escape").await;
    let data_dir = app.dir.path().join("data");
    let db = data_dir.join("insitu.db");
    assert!(db.exists());
    let planted = app.dir.path().join("planted-by-build");
    // Each step records what it managed; the build succeeds either way, and
    // the image is read back through a lab.
    let containerfile = format!(
        "FROM {PYTHON_BASE}\n\
         COPY app.py /opt/tool/app.py\n\
         RUN (cat {db} > /opt/stolen-db 2>&1 && echo READ-DB || echo no-db) > /opt/report; \
             (ls {data} >> /opt/report 2>&1 && echo LISTED-DATA >> /opt/report || echo no-data >> /opt/report); \
             (touch {planted} 2>/dev/null && echo WROTE-HOST >> /opt/report || echo no-write >> /opt/report); \
             grep CapEff /proc/self/status >> /opt/report; true\n",
        db = db.display(),
        data = data_dir.display(),
        planted = planted.display(),
    );
    let mut source = d["source"].clone();
    source["containerfile"] = Value::String(containerfile);
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/escape",
        &dora,
        Some(json!({"definition": d["definition"], "source": source})),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    let b = build(&app, &dora, "escape").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    assert!(!planted.exists(), "a build wrote on the host");
    let lab = launch_settled(&app, &dora, "escape", &[]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let (client, base) = open(&app, "dora", &id).await;
    let seen = tool(&client, &base, &[("read", "/opt/report")]).await;
    let report = seen["files"]["read"].as_str().unwrap().to_owned();
    for refused in ["no-db", "no-data", "no-write"] {
        assert!(report.contains(refused), "{refused} in {report}");
    }
    // Build steps keep only what installing packages needs: none of the
    // capabilities that reach past the container (DAC_READ_SEARCH,
    // NET_ADMIN, NET_RAW, SYS_MODULE, SYS_CHROOT, SYS_PTRACE, SYS_ADMIN,
    // MKNOD).
    let caps = report
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no CapEff in {report}"));
    for bit in [2, 12, 13, 16, 18, 19, 21, 27] {
        assert_eq!(
            caps & (1 << bit),
            0,
            "capability {bit} in a build: {caps:x}"
        );
    }
    // The lab itself: no capabilities, no new privileges, not root, no
    // sight of the platform's data directory or database.
    let status = tool(&client, &base, &[("read", "/proc/self/status")]).await;
    let status = status["files"]["read"].as_str().unwrap().to_owned();
    for line in [
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(status.contains(line), "{line} in {status}");
    }
    assert!(!status.contains("Uid:\t0\t"), "{status}");
    for path in [db.display().to_string(), data_dir.display().to_string()] {
        let r = tool(&client, &base, &[("list", &path), ("read", &path)]).await;
        assert!(
            r["files"]["list"].is_null() && r["files"]["read"].is_null(),
            "{path}: {r}"
        );
    }
    stop(&app, &dora, &id).await;

    // COPY reaches no further than the build's context.
    let mut source = d["source"].clone();
    source["containerfile"] = Value::String(format!(
        "FROM {PYTHON_BASE}\nCOPY ../../data/insitu.db /opt/db\n"
    ));
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/escape",
        &dora,
        Some(json!({"definition": d["definition"], "source": source})),
    )
    .await;
    if status == 200 {
        let b = build(&app, &dora, "escape").await;
        assert_eq!(b["state"], "failed", "COPY outside the context: {b}");
    } else {
        assert_eq!(
            (status, e["code"].as_str()),
            (422, Some("invalid_containerfile")),
            "{e}"
        );
    }
}
