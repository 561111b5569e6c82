//! The pages' rows of the route table.

use axum::routing::{get, post};

use super::{ADMIN, MODERATOR, RouteInfo, USER, page};
use crate::access::Access;
use crate::pages;

pub(super) fn rows() -> Vec<RouteInfo> {
    vec![
        page(
            "GET",
            "/",
            Access::Public,
            "Home: the catalogue, or the login page",
            || get(pages::home),
        ),
        page("GET", "/login", Access::Public, "Login form", || {
            get(pages::login_form)
        }),
        page("POST", "/login", Access::Public, "Log in", || {
            post(pages::login_submit)
        }),
        page(
            "GET",
            "/login/oidc/{provider}",
            Access::Public,
            "Log in with an OpenID provider: to the provider's login page",
            || get(pages::oidc::start),
        ),
        page(
            "GET",
            "/login/oidc/{provider}/callback",
            Access::Public,
            "The OpenID provider's answer: checked, then a session",
            || get(pages::oidc::callback),
        ),
        page("POST", "/logout", USER, "Log out", || post(pages::logout)),
        page(
            "GET",
            "/discover",
            USER,
            "Discovery portal: one search over datalabs, data volumes and datasets, with facets and cone search",
            || get(pages::discover::discover),
        ),
        page(
            "POST",
            "/discover/open",
            USER,
            "Open a dataset in a chosen datalab (launched with its volume mounted)",
            || post(pages::discover::open_dataset),
        ),
        page(
            "GET",
            "/admin/search",
            ADMIN,
            "Discovery index: the harvest's progress and problems",
            || get(pages::discover::admin_search),
        ),
        page(
            "POST",
            "/admin/search/harvest",
            ADMIN,
            "Harvest the data volumes now",
            || post(pages::discover::admin_search_harvest),
        ),
        page(
            "GET",
            "/zones",
            USER,
            "Datazones: each with its volumes, capacity and what is free; the current datazone",
            || get(pages::zones::zones),
        ),
        page(
            "POST",
            "/zones/current",
            USER,
            "Choose the current datazone (offered first when launching)",
            || post(pages::zones::choose_zone),
        ),
        page(
            "GET",
            "/datalabs",
            USER,
            "Datalab catalogue with search and facets",
            || get(pages::datalabs),
        ),
        page("GET", "/datalabs/{name}", USER, "One datalab", || {
            get(pages::datalab)
        }),
        page(
            "POST",
            "/datalabs/{name}/launch",
            USER,
            "Launch a datalab",
            || post(pages::launch),
        ),
        page(
            "POST",
            "/my-labs/{id}/share",
            USER,
            "Share a running lab with a user (its owner)",
            || post(pages::my_lab_share),
        ),
        page(
            "POST",
            "/my-labs/{id}/team-share",
            USER,
            "Share a running lab with a team the owner is in",
            || post(pages::my_lab_share_team),
        ),
        page(
            "POST",
            "/my-labs/{id}/team-shares/{team}/remove",
            USER,
            "Stop sharing a lab with a team: its members are cut off at once",
            || post(pages::my_lab_unshare_team),
        ),
        page(
            "POST",
            "/my-labs/{id}/shares/{username}/remove",
            USER,
            "Stop sharing a lab with a user: they are cut off at once",
            || post(pages::my_lab_unshare),
        ),
        page(
            "GET",
            "/teams",
            USER,
            "The caller's teams and invitations; create a team",
            || get(pages::teams),
        ),
        page("POST", "/teams", USER, "Create a team", || {
            post(pages::team_create)
        }),
        page(
            "GET",
            "/teams/{team}",
            USER,
            "One team: members, invitations, roles",
            || get(pages::team),
        ),
        page(
            "POST",
            "/teams/{team}/rename",
            USER,
            "Rename a team (owners)",
            || post(pages::team_rename),
        ),
        page(
            "POST",
            "/teams/{team}/delete",
            USER,
            "Delete a team (owners); its workspace is kept aside",
            || post(pages::team_delete),
        ),
        page(
            "POST",
            "/teams/{team}/invite",
            USER,
            "Invite a user into a team (owners)",
            || post(pages::team_invite),
        ),
        page(
            "POST",
            "/teams/{team}/accept",
            USER,
            "Accept an invitation into a team",
            || post(pages::team_accept),
        ),
        page(
            "POST",
            "/teams/{team}/members/{username}/role",
            USER,
            "Change a member's role (owners)",
            || post(pages::team_member_role),
        ),
        page(
            "POST",
            "/teams/{team}/members/{username}/remove",
            USER,
            "Leave a team, decline an invitation, or remove a member (owners)",
            || post(pages::team_member_remove),
        ),
        page(
            "GET",
            "/my-labs",
            USER,
            "The caller's labs with live state",
            || get(pages::my_labs),
        ),
        page(
            "GET",
            "/my-labs/{id}",
            USER,
            "One lab: progress and logs",
            || get(pages::my_lab),
        ),
        page(
            "POST",
            "/my-labs/{id}/open",
            USER,
            "Open a running lab (through the lab proxy): a form with the CSRF field",
            || post(pages::my_lab_open),
        ),
        page("POST", "/my-labs/{id}/stop", USER, "Stop a lab", || {
            post(pages::my_lab_stop)
        }),
        page(
            "GET",
            "/volumes",
            USER,
            "Data volume catalogue and the caller's volumes",
            || get(pages::volumes),
        ),
        page("GET", "/volumes/{name}", USER, "One data volume", || {
            get(pages::volume)
        }),
        page(
            "POST",
            "/volumes/{name}/add",
            USER,
            "Add to my volumes",
            || post(pages::volume_add),
        ),
        page(
            "POST",
            "/volumes/{name}/remove",
            USER,
            "Remove from my volumes",
            || post(pages::volume_remove),
        ),
        page("GET", "/account", USER, "Password and API tokens", || {
            get(pages::account)
        }),
        page("POST", "/account/password", USER, "Change password", || {
            post(pages::account_password)
        }),
        page(
            "POST",
            "/account/logout-everywhere",
            USER,
            "Log out in every browser and on the lab proxy",
            || post(pages::logout_everywhere),
        ),
        page(
            "POST",
            "/account/tokens",
            USER,
            "Create an API token",
            || post(pages::account_token_create),
        ),
        page(
            "POST",
            "/account/tokens/{id}/revoke",
            USER,
            "Revoke an API token",
            || post(pages::account_token_revoke),
        ),
        page("GET", "/admin/users", ADMIN, "Accounts", || {
            get(pages::admin_users)
        }),
        page("POST", "/admin/users", ADMIN, "Create an account", || {
            post(pages::admin_user_create)
        }),
        page(
            "POST",
            "/admin/users/{username}",
            ADMIN,
            "Change role or disable",
            || post(pages::admin_user_update),
        ),
        page(
            "GET",
            "/admin/labs",
            ADMIN,
            "Running labs and runs: every user's, with what they use; stop or cancel one with a reason",
            || get(pages::admin_labs),
        ),
        page(
            "POST",
            "/admin/labs/{id}/stop",
            ADMIN,
            "Stop a user's lab with a reason",
            || post(pages::admin_lab_stop),
        ),
        page(
            "POST",
            "/admin/runs/{id}/cancel",
            ADMIN,
            "Cancel a user's run with a reason",
            || post(pages::admin_run_cancel),
        ),
        page(
            "GET",
            "/admin/catalogue",
            MODERATOR,
            "Catalogue health: definitions that failed to load",
            || get(pages::admin_catalogue),
        ),
        page(
            "POST",
            "/admin/catalogue/reload",
            ADMIN,
            "Reload the catalogue",
            || post(pages::admin_catalogue_reload),
        ),
        page(
            "GET",
            "/static/insitu.css",
            Access::Public,
            "Style sheet",
            || get(pages::stylesheet),
        ),
        page(
            "GET",
            "/static/discover.js",
            Access::Public,
            "The discovery page's script",
            || get(pages::discover::script),
        ),
        page(
            "GET",
            "/static/insitu.js",
            Access::Public,
            "The pages' script (no page has inline code)",
            || get(pages::script),
        ),
    ]
}
