//! The team and sharing pages as a browser uses them: create, invite,
//! accept, what an owner and a member see and may do, a lab shared and
//! revoked from its page; refusals shown in the error banner.

use crate::harness::*;

/// Posts a form with the session's CSRF token; the redirect's target.
async fn submit(app: &TestApp, s: &Session, path: &str, fields: &[(&str, &str)]) -> String {
    let mut form = vec![("csrf", s.csrf.as_str())];
    form.extend_from_slice(fields);
    let r = s.client.post(app.u(path)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303, "{path}");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    decoded(&location)
}

/// A redirect's target with its query decoded, to read its banner.
fn decoded(target: &str) -> String {
    let url = reqwest::Url::parse(&format!("http://platform{target}")).unwrap();
    let query: Vec<String> = url.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}?{}", url.path(), query.join("&"))
}

async fn text(app: &TestApp, s: &Session, path: &str) -> (u16, String) {
    let r = s.client.get(app.u(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn teams_are_made_and_joined_from_their_pages() {
    let app = spawn_app().await;
    app.user_with_role("ann", "user").await;
    app.user_with_role("bob", "user").await;
    let ann = app.login("ann", PASSWORD).await;
    let bob = app.login("bob", PASSWORD).await;

    let to = submit(&app, &ann, "/teams", &[("name", "optics")]).await;
    assert_eq!(to, "/teams/optics?notice=Team optics created.");
    let (status, page) = text(&app, &ann, "/teams/optics").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<h1>optics</h1>") && page.contains("team_workspaces"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/teams/optics/invite\""),
        "an owner invites"
    );
    let to = submit(&app, &ann, "/teams", &[("name", "Optics!")]).await;
    assert!(to.starts_with("/teams?error=team name \"Optics!\""), "{to}");

    let to = submit(
        &app,
        &ann,
        "/teams/optics/invite",
        &[("username", "bob"), ("role", "member")],
    )
    .await;
    assert_eq!(to, "/teams/optics?notice=bob invited as member.");
    let to = submit(&app, &ann, "/teams/optics/invite", &[("username", "ann")]).await;
    assert_eq!(to, "/teams/optics?error=you cannot invite yourself");

    // Bob sees the invitation, accepts it, and may not invite.
    let (_, list) = text(&app, &bob, "/teams").await;
    assert!(list.contains("action=\"/teams/optics/accept\""), "{list}");
    let to = submit(&app, &bob, "/teams/optics/accept", &[]).await;
    assert!(
        to.starts_with("/teams/optics?notice=You joined optics"),
        "{to}"
    );
    let (_, page) = text(&app, &bob, "/teams/optics").await;
    assert!(
        !page.contains("/teams/optics/invite"),
        "a member does not invite"
    );
    let to = submit(&app, &bob, "/teams/optics/invite", &[("username", "ann")]).await;
    assert_eq!(
        to,
        "/teams/optics?error=only an owner of team optics may do this"
    );

    // The last owner stays; an outsider finds no team.
    let to = submit(&app, &ann, "/teams/optics/members/ann/remove", &[]).await;
    assert!(
        to.starts_with("/teams/optics?error=this would leave team optics without an owner"),
        "{to}"
    );
    app.user_with_role("eve", "user").await;
    let eve = app.login("eve", PASSWORD).await;
    let (status, _) = text(&app, &eve, "/teams/optics").await;
    assert_eq!(status, 404);
    let to = submit(&app, &bob, "/teams/optics/members/bob/remove", &[]).await;
    assert_eq!(to, "/teams?notice=You left optics.");
}

#[tokio::test]
async fn a_lab_is_shared_and_revoked_from_its_page() {
    if !crate::lifecycle::available() {
        return;
    }
    let app = spawn_app().await;
    let rosa_token = app.user_with_role("rosa", "user").await;
    app.user_with_role("tom", "user").await;
    let id = crate::attacks::running_lab(&app, &rosa_token, "testapp").await;
    let rosa = app.login("rosa", PASSWORD).await;
    let tom = app.login("tom", PASSWORD).await;
    let lab_page = format!("/my-labs/{id}");

    let (_, page) = text(&app, &rosa, &lab_page).await;
    assert!(page.contains("Nobody: only you use this lab."), "{page}");
    let to = submit(
        &app,
        &rosa,
        &format!("{lab_page}/share"),
        &[("username", "rosa")],
    )
    .await;
    assert_eq!(
        to,
        format!("{lab_page}?error=a lab is not shared with its owner")
    );
    let to = submit(
        &app,
        &rosa,
        &format!("{lab_page}/share"),
        &[("username", "tom")],
    )
    .await;
    assert_eq!(to, format!("{lab_page}?notice=Lab shared with tom."));
    let (_, page) = text(&app, &rosa, &lab_page).await;
    assert!(page.contains("data-username=\"tom\""), "{page}");

    // Tom finds it under his labs and opens it; its own page stays rosa's.
    let (_, labs) = text(&app, &tom, "/my-labs").await;
    assert!(
        labs.contains("Shared with me") && labs.contains(&id),
        "{labs}"
    );
    let r = tom.open_lab(&app, &id).await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/_insitu/auth?ticket=")
    );
    assert_eq!(text(&app, &tom, &lab_page).await.0, 404);

    let to = submit(&app, &rosa, &format!("{lab_page}/shares/tom/remove"), &[]).await;
    assert_eq!(to, format!("{lab_page}?notice=tom no longer has this lab."));
    assert_eq!(tom.open_lab(&app, &id).await.status(), 404);
    let (_, labs) = text(&app, &tom, "/my-labs").await;
    assert!(!labs.contains("Shared with me"), "{labs}");

    // With a team: tom is in once he accepts, out once the share goes.
    submit(&app, &rosa, "/teams", &[("name", "optics")]).await;
    let to = submit(
        &app,
        &rosa,
        &format!("{lab_page}/team-share"),
        &[("team", "optics")],
    )
    .await;
    assert_eq!(
        to,
        format!("{lab_page}?notice=Lab shared with team optics.")
    );
    submit(&app, &rosa, "/teams/optics/invite", &[("username", "tom")]).await;
    assert_eq!(
        tom.open_lab(&app, &id).await.status(),
        404,
        "an invitee is not in"
    );
    submit(&app, &tom, "/teams/optics/accept", &[]).await;
    assert_eq!(tom.open_lab(&app, &id).await.status(), 303);
    let (_, page) = text(&app, &rosa, &lab_page).await;
    assert!(page.contains("data-team=\"optics\""), "{page}");
    let to = submit(
        &app,
        &tom,
        &format!("{lab_page}/team-share"),
        &[("team", "optics")],
    )
    .await;
    assert!(to.contains("error="), "{to}");
    let to = submit(
        &app,
        &rosa,
        &format!("{lab_page}/team-shares/optics/remove"),
        &[],
    )
    .await;
    assert_eq!(
        to,
        format!("{lab_page}?notice=Team optics no longer has this lab.")
    );
    assert_eq!(tom.open_lab(&app, &id).await.status(), 404);
}

#[tokio::test]
async fn owners_rename_and_delete_a_team_from_its_page() {
    let app = spawn_app().await;
    app.user_with_role("ann", "user").await;
    app.user_with_role("bob", "user").await;
    let ann = app.login("ann", PASSWORD).await;
    let bob = app.login("bob", PASSWORD).await;
    submit(&app, &ann, "/teams", &[("name", "optics")]).await;
    submit(&app, &ann, "/teams/optics/invite", &[("username", "bob")]).await;
    submit(&app, &bob, "/teams/optics/accept", &[]).await;
    let (_, page) = text(&app, &bob, "/teams/optics").await;
    assert!(
        !page.contains("id=\"rename-team\""),
        "members see no rename"
    );
    let to = submit(&app, &bob, "/teams/optics/rename", &[("name", "mine")]).await;
    assert_eq!(
        to,
        "/teams/optics?error=only an owner of team optics may do this"
    );
    let to = submit(&app, &bob, "/teams/optics/delete", &[]).await;
    assert_eq!(
        to,
        "/teams/optics?error=only an owner of team optics may do this"
    );

    let (_, page) = text(&app, &ann, "/teams/optics").await;
    assert!(page.contains("id=\"rename-team\"") && page.contains("id=\"delete-team\""));
    let to = submit(&app, &ann, "/teams/optics/rename", &[("name", "photonics")]).await;
    assert_eq!(to, "/teams/photonics?notice=Team optics renamed photonics.");
    let (status, page) = text(&app, &bob, "/teams/photonics").await;
    assert_eq!(status, 200, "{page}");
    let to = submit(&app, &ann, "/teams/photonics/delete", &[]).await;
    assert_eq!(to, "/teams?notice=Team photonics deleted.");
    assert_eq!(text(&app, &bob, "/teams/photonics").await.0, 404);
}
