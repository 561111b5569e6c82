//! The role matrix: every route of the route table, called as anonymous,
//! user, developer, moderator and admin, must let in exactly the roles its
//! declared access allows — on every backend. The logout routes are called
//! too: the callers use API tokens, which logging out does not end.

use insitu_domain::Role;
use insitu_web::{Access, Surface, route_table};

use crate::harness::*;

fn concrete(path: &str) -> String {
    path.replace("{name}", "deep-fields")
        .replace("{username}", "nobody-here")
        .replace("{id}", "no-such-token")
        .replace("{team}", "no-such-team")
}

#[tokio::test]
async fn every_route_admits_exactly_its_roles() {
    for db in backends() {
        let app = spawn_on(db).await;
        let mut callers: Vec<(Option<Role>, Option<String>)> = vec![(None, None)];
        for role in Role::ALL {
            let token = if role == Role::Admin {
                app.admin_token().await
            } else {
                app.user_with_role(&format!("as-{}", role.as_str()), role.as_str())
                    .await
            };
            callers.push((Some(role), Some(token)));
        }
        let client = plain();
        let mut checked = 0;
        for route in route_table() {
            for (role, token) in &callers {
                let url = app.u(&concrete(route.path));
                let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
                let mut req = client.request(method, &url);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if route.method != "GET" {
                    req = match route.surface {
                        Surface::Api | Surface::VoTable => req.json(&serde_json::json!({})),
                        Surface::Page => req.form(&[("csrf", "")]),
                    };
                }
                let status = req.send().await.unwrap().status().as_u16();
                let allowed = match route.access {
                    Access::Public => true,
                    Access::Role(required) => role.is_some_and(|r| r.allows(required)),
                };
                let what = format!(
                    "{db:?} {} {} as {role:?}: {status}",
                    route.method, route.path
                );
                if allowed {
                    assert!(![401, 403].contains(&status), "{what} should be allowed");
                } else if role.is_none() {
                    let expected = if route.surface == Surface::Page {
                        303
                    } else {
                        401
                    };
                    assert_eq!(status, expected, "{what} should ask to log in");
                } else {
                    assert_eq!(status, 403, "{what} should be forbidden");
                }
                checked += 1;
            }
        }
        assert!(checked > 150, "the matrix covered {checked} calls");
    }
}

/// The role matrix of a running lab behind the lab proxy: who may take a
/// ticket, load its page and hold a WebSocket, as its owner shares it
/// with a team and a named user and revokes them — the owner, a team
/// member, an invitee who has not accepted, a non-member, a revoked named
/// share, a member removed from the team, and an administrator (who is no
/// one to a lab). Over HTTP and WebSocket through the proxy.
#[tokio::test]
async fn a_shared_lab_admits_exactly_its_audience_over_http_and_websocket() {
    use crate::attacks::{echoes, enter_lab, is_cut, running_lab};
    if !crate::lifecycle::available() {
        return;
    }
    for db in backends() {
        let app = spawn_on(db).await;
        let ann = app.user_with_role("ann", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let cid = app.user_with_role("cid", "user").await;
        let dee = app.user_with_role("dee", "user").await;
        let eli = app.user_with_role("eli", "user").await;
        let fay = app.user_with_role("fay", "user").await;
        let admin = app.admin_token().await;
        let post = |token: &str, path: String| {
            plain()
                .post(app.u(&path))
                .bearer_auth(token.to_owned())
                .json(&serde_json::json!({}))
        };
        let put =
            |token: &str, path: String| plain().put(app.u(&path)).bearer_auth(token.to_owned());
        let del =
            |token: &str, path: String| plain().delete(app.u(&path)).bearer_auth(token.to_owned());

        // optics: ann (owner), bob and fay (members), cid (invited only).
        let r = post(&ann, "/api/v1/teams".into())
            .json(&serde_json::json!({"name": "optics"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        for who in ["bob", "cid", "fay"] {
            let r = post(&ann, "/api/v1/teams/optics/members".into())
                .json(&serde_json::json!({"username": who}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        for token in [&bob, &fay] {
            let r = post(token, "/api/v1/teams/optics/accept".into())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }

        let id = running_lab(&app, &ann, "testapp").await;
        let lab = format!("/api/v1/labs/{id}");
        let r = put(&ann, format!("{lab}/team-shares/optics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let sharing: serde_json::Value = r.json().await.unwrap();
        assert_eq!(sharing["teams"], serde_json::json!(["optics"]), "{sharing}");
        let r = put(&ann, format!("{lab}/shares/eli")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        let opens = |token: String| {
            let url = app.u(&format!("{lab}/open"));
            async move {
                plain()
                    .post(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        for (who, token, admitted) in [
            ("owner", &ann, true),
            ("team member", &bob, true),
            ("team member", &fay, true),
            ("named user", &eli, true),
            ("invitee", &cid, false),
            ("non-member", &dee, false),
            ("administrator", &admin, false),
        ] {
            let status = opens(token.clone()).await;
            assert_eq!(
                status,
                if admitted { 200 } else { 404 },
                "{db:?} {who} taking a ticket"
            );
        }
        let mut held = Vec::new();
        for token in [&ann, &bob, &fay, &eli] {
            let entry = enter_lab(&app, token, &id).await;
            assert_eq!(entry.page_status().await, 200);
            let mut ws = entry.websocket().await;
            assert!(echoes(&mut ws, "in").await);
            held.push((entry, ws));
        }
        let (mut ann_in, mut bob_in, mut fay_in, mut eli_in) = {
            let mut it = held.into_iter();
            (
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap(),
            )
        };

        // A revoked named share: out over HTTP and WebSocket at once.
        let r = del(&ann, format!("{lab}/shares/eli")).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert!(
            is_cut(&mut eli_in.1).await,
            "{db:?} the revoked user's WebSocket"
        );
        assert_eq!(eli_in.0.page_status().await, 401);
        assert_eq!(opens(eli.clone()).await, 404);

        // A member removed from the team: out at once; the others stay.
        let r = del(&ann, "/api/v1/teams/optics/members/bob".into())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(
            is_cut(&mut bob_in.1).await,
            "{db:?} the removed member's WebSocket"
        );
        assert_eq!(bob_in.0.page_status().await, 401);
        assert_eq!(opens(bob.clone()).await, 404);
        assert!(echoes(&mut fay_in.1, "still in").await);
        assert_eq!(fay_in.0.page_status().await, 200);

        // The team share revoked: its members are out, the owner stays.
        let r = del(&ann, format!("{lab}/team-shares/optics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(is_cut(&mut fay_in.1).await, "{db:?} the team's WebSocket");
        assert_eq!(fay_in.0.page_status().await, 401);
        assert_eq!(opens(fay.clone()).await, 404);
        assert!(echoes(&mut ann_in.1, "owner stays").await);
        assert_eq!(ann_in.0.page_status().await, 200);
        let r = post(&ann, format!("{lab}/stop")).send().await.unwrap();
        assert!(r.status().is_success());
    }
}
