//! Teams under attack: an outsider, an invitee and a plain member try
//! what only owners may do, reach for a team they are not in, and look
//! for its workspace from their labs; bad input gets its code.

use serde_json::{Value, json};

use super::lab::attempt;
use crate::harness::*;
use crate::labs::{launch, settle};
use crate::lifecycle::{available, id_of, open_lab};

/// Calls the API; the status and the JSON answer.
async fn call(
    app: &impl Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = plain().request(method, app.u(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or(""))
}

use reqwest::Method as M;

#[tokio::test]
async fn only_owners_change_a_team_outsiders_never_see_it_and_one_owner_stays() {
    for db in backends() {
        let app = spawn_on(db).await;
        let ann = app.user_with_role("ann", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let cid = app.user_with_role("cid", "user").await;
        let eve = app.user_with_role("eve", "admin").await;
        app.user_with_role("dan", "user").await;
        let admin = app.admin_token().await;
        let (status, _) = call(
            &app,
            &admin,
            M::PATCH,
            "/api/v1/admin/users/dan",
            Some(json!({"disabled": true})),
        )
        .await;
        assert_eq!(status, 200);

        // Names: refused, taken.
        for bad in ["Astro", "../etc", "a/b", "", "x.y"] {
            let r = call(
                &app,
                &ann,
                M::POST,
                "/api/v1/teams",
                Some(json!({"name": bad})),
            )
            .await;
            assert_eq!(code(&r), (422, "invalid_team_name"), "{bad:?}: {}", r.1);
        }
        let r = call(
            &app,
            &ann,
            M::POST,
            "/api/v1/teams",
            Some(json!({"name": "astro"})),
        )
        .await;
        assert_eq!(r.0, 201, "{}", r.1);
        assert_eq!(r.1["role"], "owner");
        assert_eq!(r.1["workspace_path"], "/home/user/team_workspaces/astro");
        let r = call(
            &app,
            &eve,
            M::POST,
            "/api/v1/teams",
            Some(json!({"name": "astro"})),
        )
        .await;
        assert_eq!(code(&r), (409, "team_name_taken"));

        // Invitations: bob accepts, cid stays invited.
        let invite = |who: &str| Some(json!({"username": who}));
        let members = "/api/v1/teams/astro/members";
        assert_eq!(
            call(&app, &ann, M::POST, members, invite("bob")).await.0,
            201
        );
        assert_eq!(
            call(&app, &ann, M::POST, members, invite("cid")).await.0,
            201
        );
        let r = call(&app, &bob, M::POST, "/api/v1/teams/astro/accept", None).await;
        assert_eq!((r.0, &r.1["accepted"]), (200, &json!(true)), "{}", r.1);
        for (who, expected) in [
            ("ann", (422, "invalid_invitation")),
            ("ghost", (404, "user_not_found")),
            ("Not A Name", (404, "user_not_found")),
            ("bob", (409, "already_in_team")),
            ("cid", (409, "already_in_team")),
            ("dan", (409, "user_disabled")),
        ] {
            let r = call(&app, &ann, M::POST, members, invite(who)).await;
            assert_eq!(code(&r), expected, "inviting {who}: {}", r.1);
        }
        let r = call(
            &app,
            &ann,
            M::POST,
            members,
            Some(json!({"username": "eve", "role": "admin"})),
        )
        .await;
        assert_eq!(code(&r), (422, "invalid_request"), "{}", r.1);

        // What each caller may do: the owner alone changes the team; the
        // outsider (an administrator of the platform, even) finds no team.
        let no_team = (404, "team_not_found");
        let not_owner = (403, "not_team_owner");
        for (who, token, see, change) in [
            ("bob", &bob, 200, not_owner),
            ("cid", &cid, 200, not_owner),
            ("eve", &eve, 404, no_team),
        ] {
            let r = call(&app, token, M::GET, "/api/v1/teams/astro", None).await;
            assert_eq!(r.0, see, "{who} sees: {}", r.1);
            let attempts = [
                (M::POST, members.to_owned(), invite("eve")),
                (
                    M::PATCH,
                    format!("{members}/{who}"),
                    Some(json!({"role": "owner"})),
                ),
                (
                    M::PATCH,
                    format!("{members}/ann"),
                    Some(json!({"role": "member"})),
                ),
                (M::DELETE, format!("{members}/ann"), None),
            ];
            for (method, path, body) in attempts {
                let r = call(&app, token, method.clone(), &path, body).await;
                assert_eq!(code(&r), change, "{who}: {method} {path}: {}", r.1);
            }
        }
        let r = call(&app, &eve, M::POST, "/api/v1/teams/astro/accept", None).await;
        assert_eq!(code(&r), no_team, "no invitation, no way in");
        let (_, eves) = call(&app, &eve, M::GET, "/api/v1/teams", None).await;
        assert_eq!(eves["items"], json!([]));
        // A team that does not exist answers as one the caller is not in.
        let missing = call(&app, &eve, M::GET, "/api/v1/teams/nope", None).await;
        assert_eq!(code(&missing), no_team);
        let (_, cids) = call(&app, &cid, M::GET, "/api/v1/teams", None).await;
        assert_eq!(cids["items"][0]["accepted"], false);
        let (_, team) = call(&app, &ann, M::GET, "/api/v1/teams/astro", None).await;
        let shown: Vec<(&str, &str, bool)> = team["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["username"].as_str().unwrap(),
                    m["role"].as_str().unwrap(),
                    m["accepted"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("ann", "owner", true),
                ("bob", "member", true),
                ("cid", "member", false)
            ]
        );

        // The last owner stays: neither leaving nor stepping down.
        let r = call(&app, &ann, M::DELETE, &format!("{members}/ann"), None).await;
        assert_eq!(code(&r), (409, "last_owner"), "{}", r.1);
        let r = call(
            &app,
            &ann,
            M::PATCH,
            &format!("{members}/ann"),
            Some(json!({"role": "member"})),
        )
        .await;
        assert_eq!(code(&r), (409, "last_owner"));
        let r = call(&app, &ann, M::DELETE, &format!("{members}/ghost"), None).await;
        assert_eq!(code(&r), (404, "not_in_team"));
        // An invited owner counts only once they accept.
        let r = call(
            &app,
            &ann,
            M::PATCH,
            &format!("{members}/cid"),
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = call(
            &app,
            &cid,
            M::PATCH,
            &format!("{members}/bob"),
            Some(json!({})),
        )
        .await;
        assert_eq!(code(&r), (422, "invalid_request"), "a body is needed");
        let r = call(&app, &cid, M::DELETE, &format!("{members}/bob"), None).await;
        assert_eq!(code(&r), not_owner, "an invited owner is no owner yet");
        let r = call(&app, &ann, M::DELETE, &format!("{members}/ann"), None).await;
        assert_eq!(code(&r), (409, "last_owner"));
        // Promoted, bob lets ann go; cid declines; bob removes nobody else.
        let r = call(
            &app,
            &ann,
            M::PATCH,
            &format!("{members}/bob"),
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(r.0, 200);
        assert_eq!(
            call(&app, &ann, M::DELETE, &format!("{members}/ann"), None)
                .await
                .0,
            204
        );
        assert_eq!(
            call(&app, &cid, M::DELETE, &format!("{members}/cid"), None)
                .await
                .0,
            204
        );
        let r = call(&app, &ann, M::GET, "/api/v1/teams/astro", None).await;
        assert_eq!(code(&r), no_team, "ann left");
        let (_, team) = call(&app, &bob, M::GET, "/api/v1/teams/astro", None).await;
        assert_eq!(team["members"].as_array().unwrap().len(), 1, "{team}");
    }
}

#[tokio::test]
async fn a_team_workspace_is_in_its_members_labs_only_and_read_write() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    let ann = app.user_with_role("ann", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    let eve = app.user_with_role("eve", "user").await;
    let members = "/api/v1/teams/astro/members";
    call(
        &app,
        &ann,
        M::POST,
        "/api/v1/teams",
        Some(json!({"name": "astro"})),
    )
    .await;
    for who in ["bob", "eve"] {
        let r = call(&app, &ann, M::POST, members, Some(json!({"username": who}))).await;
        assert_eq!(r.0, 201, "{}", r.1);
    }
    // Bob accepts; eve stays invited.
    call(&app, &bob, M::POST, "/api/v1/teams/astro/accept", None).await;

    let lab_of = |token: String| {
        let app = &app;
        async move {
            let (status, lab) = launch(app, &token, "testapp", &[]).await;
            assert_eq!(status, 202, "{lab}");
            let id = id_of(&lab);
            assert_eq!(settle(app, &token, &id).await["state"], "running");
            let (client, base) = open_lab(app, &token, &id).await;
            (id, client, base)
        }
    };
    let shared = "/home/user/team_workspaces/astro/plan.txt";
    let (_, ann_lab, ann_base) = lab_of(ann.clone()).await;
    assert_eq!(
        attempt(&ann_lab, &ann_base, "write", shared, Some("from ann")).await,
        Ok(Value::from("written"))
    );
    let (bob_id, bob_lab, bob_base) = lab_of(bob.clone()).await;
    assert_eq!(
        attempt(&bob_lab, &bob_base, "read", shared, None).await,
        Ok(Value::from("from ann"))
    );
    let reply = "/home/user/team_workspaces/astro/reply.txt";
    assert_eq!(
        attempt(&bob_lab, &bob_base, "write", reply, Some("from bob")).await,
        Ok(Value::from("written"))
    );
    assert_eq!(
        attempt(&ann_lab, &ann_base, "read", reply, None).await,
        Ok(Value::from("from bob"))
    );
    // Nobody adds a team of their own to the home.
    let other = attempt(
        &bob_lab,
        &bob_base,
        "write",
        "/home/user/team_workspaces/x",
        Some("x"),
    )
    .await;
    assert!(other.is_err(), "{other:?}");

    // The invitee who has not accepted has no team workspace, and the
    // host's copy is out of reach (the data directory is hidden).
    let (_, eve_lab, eve_base) = lab_of(eve.clone()).await;
    assert_eq!(
        attempt(
            &eve_lab,
            &eve_base,
            "list",
            "/home/user/team_workspaces",
            None
        )
        .await,
        Ok(json!([]))
    );
    let host_copy = app.config().data_dir.join("teams/astro/plan.txt");
    assert!(host_copy.is_file());
    let read = attempt(
        &eve_lab,
        &eve_base,
        "read",
        &host_copy.display().to_string(),
        None,
    )
    .await;
    assert!(read.is_err(), "{read:?}");

    // Removed, bob keeps it in the lab he has until his next launch.
    let r = call(&app, &ann, M::DELETE, &format!("{members}/bob"), None).await;
    assert_eq!(r.0, 204, "{}", r.1);
    call(
        &app,
        &bob,
        M::POST,
        &format!("/api/v1/labs/{bob_id}/stop"),
        None,
    )
    .await;
    let (_, bob_lab, bob_base) = lab_of(bob.clone()).await;
    assert_eq!(
        attempt(
            &bob_lab,
            &bob_base,
            "list",
            "/home/user/team_workspaces",
            None
        )
        .await,
        Ok(json!([]))
    );
}

#[tokio::test]
async fn a_shared_lab_admits_named_users_only_until_the_share_is_revoked() {
    use crate::attacks::{echoes, enter_lab, is_cut, running_lab};
    if !available() {
        return;
    }
    let mut app = spawn_app().await;
    let ann = app.user_with_role("ann", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    let eve = app.user_with_role("eve", "admin").await;
    app.user_with_role("dan", "user").await;
    let admin = app.admin_token().await;
    call(
        &app,
        &admin,
        M::PATCH,
        "/api/v1/admin/users/dan",
        Some(json!({"disabled": true})),
    )
    .await;
    let id = running_lab(&app, &ann, "testapp").await;
    let lab = format!("/api/v1/labs/{id}");
    let shares = format!("{lab}/shares");
    let not_found = (404, "lab_not_found");

    // Not shared: no way in, not even for an administrator.
    for token in [&bob, &eve] {
        let r = call(&app, token, M::POST, &format!("{lab}/open"), None).await;
        assert_eq!(code(&r), not_found);
    }
    // Bad input.
    for (who, expected) in [
        ("ann", (422, "invalid_share")),
        ("ghost", (404, "user_not_found")),
        ("dan", (409, "user_disabled")),
    ] {
        let r = call(&app, &ann, M::PUT, &format!("{shares}/{who}"), None).await;
        assert_eq!(code(&r), expected, "{who}: {}", r.1);
    }
    let r = call(&app, &ann, M::DELETE, &format!("{shares}/eve"), None).await;
    assert_eq!(code(&r), (404, "share_not_found"));
    let r = call(&app, &bob, M::PUT, &format!("{shares}/bob"), None).await;
    assert_eq!(code(&r), not_found, "only the owner shares");

    let r = call(&app, &ann, M::PUT, &format!("{shares}/bob"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["shared_with"], json!(["bob"]));
    let (_, shared) = call(&app, &bob, M::GET, "/api/v1/labs/shared", None).await;
    assert_eq!(shared["items"][0]["id"], id.as_str(), "{shared}");
    let (_, none) = call(&app, &eve, M::GET, "/api/v1/labs/shared", None).await;
    assert_eq!(none["items"], json!([]));

    // Bob uses the lab with a session of his own, HTTP and WebSocket.
    let bobs = enter_lab(&app, &bob, &id).await;
    assert_eq!(bobs.page_status().await, 200);
    let mut ws = bobs.websocket().await;
    assert!(echoes(&mut ws, "hello from bob").await);
    let anns = enter_lab(&app, &ann, &id).await;
    assert_eq!(anns.page_status().await, 200);
    let mut anns_ws = anns.websocket().await;
    // A shared user does nothing else with the lab.
    for (method, path) in [
        (M::POST, format!("{lab}/stop")),
        (M::GET, format!("{lab}/logs")),
        (M::GET, lab.clone()),
        (M::GET, shares.clone()),
        (M::PUT, format!("{shares}/eve")),
        (M::DELETE, format!("{shares}/bob")),
    ] {
        let r = call(&app, &bob, method.clone(), &path, None).await;
        assert_eq!(code(&r), not_found, "{method} {path}: {}", r.1);
    }
    // The owner sees who is connected.
    let (status, sharing) = call(&app, &ann, M::GET, &shares, None).await;
    assert_eq!(status, 200);
    let connected = |name: &str| {
        sharing["connected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["username"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(connected("bob")["websockets"], 1, "{sharing}");
    assert!(
        connected("bob")["sessions"].as_u64() >= Some(1),
        "{sharing}"
    );
    assert_eq!(connected("ann")["websockets"], 1, "{sharing}");

    // Revoked: cut off at once, the open WebSocket included; the owner
    // stays.
    let r = call(&app, &ann, M::DELETE, &format!("{shares}/bob"), None).await;
    assert_eq!(r.0, 204, "{}", r.1);
    assert!(is_cut(&mut ws).await, "bob's WebSocket is closed");
    assert_eq!(
        bobs.page_on(&app.proxy_url).await,
        (401, "lab_auth_required".to_owned())
    );
    let r = call(&app, &bob, M::POST, &format!("{lab}/open"), None).await;
    assert_eq!(code(&r), not_found);
    assert!(echoes(&mut anns_ws, "ann stays").await);
    assert_eq!(anns.page_status().await, 200);

    // Shared again, then a restart: the share holds; revoked before a
    // restart, it stays revoked.
    call(&app, &ann, M::PUT, &format!("{shares}/bob"), None).await;
    let again = enter_lab(&app, &bob, &id).await;
    assert_eq!(again.page_status().await, 200);
    app.restart().await;
    assert_eq!(
        again.page_on(&app.proxy_url).await.0,
        200,
        "the share outlives a restart"
    );
    let r = call(&app, &ann, M::DELETE, &format!("{shares}/bob"), None).await;
    assert_eq!(r.0, 204);
    app.restart().await;
    assert_eq!(
        again.page_on(&app.proxy_url).await,
        (401, "lab_auth_required".to_owned())
    );
    assert_eq!(anns.page_on(&app.proxy_url).await.0, 200);
    call(&app, &ann, M::POST, &format!("{lab}/stop"), None).await;
}

#[tokio::test]
async fn non_owners_cannot_rename_or_delete_a_team_nor_keep_its_shared_lab() {
    use crate::attacks::{echoes, enter_lab, is_cut, running_lab};
    if !available() {
        return;
    }
    for db in backends() {
        let mut app = spawn_on(db).await;
        let ann = app.user_with_role("ann", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let cid = app.user_with_role("cid", "user").await;
        let out = app.user_with_role("out", "user").await;
        let admin = app.admin_token().await;
        let r = call(
            &app,
            &ann,
            M::POST,
            "/api/v1/teams",
            Some(json!({"name": "optics"})),
        )
        .await;
        assert_eq!(r.0, 201);
        for who in ["bob", "cid"] {
            call(
                &app,
                &ann,
                M::POST,
                "/api/v1/teams/optics/members",
                Some(json!({"username": who})),
            )
            .await;
        }
        call(&app, &bob, M::POST, "/api/v1/teams/optics/accept", None).await;

        // A member, an invitee, an outsider and an administrator neither
        // rename nor delete it.
        for (who, token, expected) in [
            ("member", &bob, (403, "not_team_owner")),
            ("invitee", &cid, (403, "not_team_owner")),
            ("outsider", &out, (404, "team_not_found")),
            ("administrator", &admin, (404, "team_not_found")),
        ] {
            let r = call(
                &app,
                token,
                M::PATCH,
                "/api/v1/teams/optics",
                Some(json!({"name": "mine"})),
            )
            .await;
            assert_eq!(code(&r), expected, "{who} renaming");
            let r = call(&app, token, M::DELETE, "/api/v1/teams/optics", None).await;
            assert_eq!(code(&r), expected, "{who} deleting");
        }
        let r = call(
            &app,
            &ann,
            M::PATCH,
            "/api/v1/teams/optics",
            Some(json!({"name": "Bad Name"})),
        )
        .await;
        assert_eq!(code(&r), (422, "invalid_team_name"));

        // Sharing with a team one is not in is refused as no such team;
        // nor may anyone but the owner share the lab.
        let id = running_lab(&app, &ann, "testapp").await;
        let outs_lab = running_lab(&app, &out, "testapp").await;
        let r = call(
            &app,
            &out,
            M::PUT,
            &format!("/api/v1/labs/{outs_lab}/team-shares/optics"),
            None,
        )
        .await;
        assert_eq!(code(&r), (404, "team_not_found"));
        let r = call(
            &app,
            &bob,
            M::PUT,
            &format!("/api/v1/labs/{id}/team-shares/optics"),
            None,
        )
        .await;
        assert_eq!(code(&r), (404, "lab_not_found"));
        let r = call(
            &app,
            &ann,
            M::PUT,
            &format!("/api/v1/labs/{id}/team-shares/optics"),
            None,
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);

        // Bob is in; leaving cuts him off at once.
        let bobs = enter_lab(&app, &bob, &id).await;
        let mut ws = bobs.websocket().await;
        assert!(echoes(&mut ws, "bob").await);
        let r = call(
            &app,
            &bob,
            M::DELETE,
            "/api/v1/teams/optics/members/bob",
            None,
        )
        .await;
        assert_eq!(r.0, 204);
        assert!(
            is_cut(&mut ws).await,
            "{db:?}: a member who left keeps no WebSocket"
        );
        assert_eq!(bobs.page_status().await, 401);

        // Renamed, the share follows the team; a new member gets in on
        // accepting, and deleting the team cuts them off.
        let r = call(
            &app,
            &ann,
            M::PATCH,
            "/api/v1/teams/optics",
            Some(json!({"name": "photonics"})),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let (_, sharing) = call(
            &app,
            &ann,
            M::GET,
            &format!("/api/v1/labs/{id}/shares"),
            None,
        )
        .await;
        assert_eq!(sharing["teams"], json!(["photonics"]), "{sharing}");
        let r = call(&app, &cid, M::POST, "/api/v1/teams/photonics/accept", None).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let cids = enter_lab(&app, &cid, &id).await;
        assert_eq!(cids.page_status().await, 200);
        // A restart keeps the team share, under its new name.
        app.restart().await;
        assert_eq!(cids.page_on(&app.proxy_url).await.0, 200, "{db:?}");
        let cids = enter_lab(&app, &cid, &id).await;
        let mut ws = cids.websocket().await;
        assert!(echoes(&mut ws, "cid").await);
        let r = call(&app, &ann, M::DELETE, "/api/v1/teams/photonics", None).await;
        assert_eq!(r.0, 204, "{}", r.1);
        assert!(
            is_cut(&mut ws).await,
            "{db:?}: a deleted team's member is cut off"
        );
        assert_eq!(cids.page_status().await, 401);
        let r = call(&app, &ann, M::GET, "/api/v1/teams/photonics", None).await;
        assert_eq!(code(&r), (404, "team_not_found"));
        // Its workspace was kept aside, out of the labs' reach.
        let aside = app.dir.path().join("data/teams-deleted");
        let kept: Vec<String> = std::fs::read_dir(&aside)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            kept.iter().any(|n| n.starts_with("photonics-")),
            "{db:?}: {kept:?}"
        );
        for lab in [&id, &outs_lab] {
            let token = if lab == &id { &ann } else { &out };
            call(
                &app,
                token,
                M::POST,
                &format!("/api/v1/labs/{lab}/stop"),
                None,
            )
            .await;
        }
    }
}
