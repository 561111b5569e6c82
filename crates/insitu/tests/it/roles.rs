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
                        Surface::Api => req.json(&serde_json::json!({})),
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
                    let expected = if route.surface == Surface::Api {
                        401
                    } else {
                        303
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
