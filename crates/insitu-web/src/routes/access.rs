//! The route table's rows of access requests: the public application and
//! status link, the moderators' waiting list and decisions; API first,
//! then pages.

use axum::routing::{get, post};
use insitu_api::*;

use super::{MODERATOR, RouteInfo, api_route, page, schema};
use crate::access::Access;
use crate::api::access as api;
use crate::pages::access as pages;

pub(super) fn api_rows() -> Vec<RouteInfo> {
    let mut list = api_route(
        "GET",
        "/api/v1/access/requests",
        MODERATOR,
        "access",
        "Access requests in the order of application, each waiting one with its place in the waiting list; `state` (waiting, approved, denied, all) filters",
        None,
        (200, Some(schema::<List<AccessRequest>>)),
        || get(api::list),
    );
    list.query = &["state"];
    vec![
        api_route(
            "POST",
            "/api/v1/access/apply",
            Access::Public,
            "access",
            "Apply for an account (no login): the request waits for a moderator; the answer holds the status link's secret, shown once. Counted per client address and per e-mail address",
            Some(schema::<AccessApplication>),
            (201, Some(schema::<AccessApplied>)),
            || post(api::apply),
        ),
        api_route(
            "GET",
            "/api/v1/access/status/{token}",
            Access::Public,
            "access",
            "Where an access request stands, by its status link's secret: its place in the waiting list, or the moderator's decision and message",
            None,
            (200, Some(schema::<AccessRequestStatus>)),
            || get(api::status),
        ),
        api_route(
            "POST",
            "/api/v1/access/status/{token}/password",
            Access::Public,
            "access",
            "Set the password of an approved applicant's new account, once, by the status link's secret",
            Some(schema::<AccessPasswordRequest>),
            (200, Some(schema::<AccessRequestStatus>)),
            || post(api::set_password),
        ),
        list,
        api_route(
            "POST",
            "/api/v1/access/requests/{id}/approve",
            MODERATOR,
            "access",
            "Approve a waiting request: its account is made (role user), unless the admission cap is reached; the applicant sets the password through their status link",
            Some(schema::<AccessDecisionRequest>),
            (200, Some(schema::<AccessRequest>)),
            || post(api::approve),
        ),
        api_route(
            "POST",
            "/api/v1/access/requests/{id}/deny",
            MODERATOR,
            "access",
            "Deny a waiting request with a message the applicant reads on their status page",
            Some(schema::<AccessDecisionRequest>),
            (200, Some(schema::<AccessRequest>)),
            || post(api::deny),
        ),
    ]
}

pub(super) fn page_rows() -> Vec<RouteInfo> {
    vec![
        page(
            "GET",
            "/access/apply",
            Access::Public,
            "Apply for access: the public form",
            || get(pages::apply_form),
        ),
        page(
            "POST",
            "/access/apply",
            Access::Public,
            "Apply for access",
            || post(pages::apply_submit),
        ),
        page(
            "GET",
            "/access/status/{token}",
            Access::Public,
            "An applicant's status page: place in the waiting list, the decision, setting the password",
            || get(pages::status),
        ),
        page(
            "POST",
            "/access/status/{token}/password",
            Access::Public,
            "Set an approved applicant's password",
            || post(pages::set_password),
        ),
        page(
            "GET",
            "/access/requests",
            MODERATOR,
            "The waiting list and decided access requests",
            || get(pages::requests),
        ),
        page(
            "POST",
            "/access/requests/{id}/approve",
            MODERATOR,
            "Approve an access request",
            || post(pages::approve),
        ),
        page(
            "POST",
            "/access/requests/{id}/deny",
            MODERATOR,
            "Deny an access request with a message",
            || post(pages::deny),
        ),
    ]
}
