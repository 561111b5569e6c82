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
        page("POST", "/logout", USER, "Log out", || post(pages::logout)),
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
            "/static/insitu.js",
            Access::Public,
            "The pages' script (no page has inline code)",
            || get(pages::script),
        ),
    ]
}
