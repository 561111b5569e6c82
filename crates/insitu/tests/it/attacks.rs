//! The attack suite: what one user, a lab, a page on another site or a
//! process of the host tries against the platform, run against the real
//! server, lab proxy and labs over HTTP and WebSocket. Run it alone with
//! `cargo nextest run -p insitu attacks`; `docs/security.md` says what each
//! boundary is meant to stop.
//!
//! - `access`: access requests: floods of applications, oversized and
//!   hostile fields, guessed status links, users and developers deciding,
//!   approvals past the admission cap, in parallel too.
//! - `devlabs`: user-developed datalabs: others editing, building, sharing,
//!   submitting or exporting a draft; developers deciding publications;
//!   users outside a private share looking for it; a rejected build
//!   launched by others; Containerfiles and container labs reaching for the
//!   host, the platform's data directory and database.
//! - `lab`: from inside a lab: the platform's configuration, database and
//!   what the operator hides, the host's control groups and another lab's.
//! - `lab_socket`: a lab's API socket asked for more than pipelines and
//!   runs, reached from another user's lab, submitting past its owner's
//!   limits, outliving its lab or its owner's account.
//! - `platform`: the platform's own listener, accounts, sessions, cookies,
//!   pages and API.
//! - `oidc`: the OpenID login: answers replayed, injected from another
//!   browser or another application, a tampered state, a return target on
//!   another site, ID tokens for another audience, nonce or signature.
//! - `pipelines`: another user's pipelines, runs, logs and outputs; what
//!   a step can read and write; CWL and job orders reaching for host
//!   paths.
//! - `proxy`: labs through and around the lab proxy: another lab's code
//!   going straight to a tool's port, another lab's host, tickets on the
//!   wrong host, WebSockets from another origin, a squatted port, and a
//!   flood of tickets and sessions from one account.
//! - `slurm_lab`: a lab on a cluster's node reached straight at its
//!   address without the lab's secret; a tool that takes none refused on
//!   a cluster.
//! - `teams`: a member, an invitee and an outsider against a team's
//!   routes and its workspace, from the API and from their labs.
//! - `workspaces`: a lab against workspace images: the images, another
//!   user's workspace, loop devices, mounting and resizing its own.

mod access;
mod devlabs;
mod lab;
mod lab_socket;
mod oidc;
mod pipelines;
mod platform;
mod proxy;
mod slurm_lab;
mod teams;
mod workspaces;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::*;

pub(crate) type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Launches `datalab` for the token's user and waits until it settles.
pub(crate) async fn running_lab(app: &TestApp, token: &str, datalab: &str) -> String {
    let (status, lab) = crate::labs::launch(app, token, datalab, &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let lab = crate::labs::settle(app, token, &id).await;
    assert_eq!(lab["state"], "running", "{lab}");
    id
}

/// A browser holding the lab proxy's cookie for one lab.
pub(crate) struct LabEntry {
    pub client: reqwest::Client,
    /// `http://host:port/labs/<id>/` on the proxy.
    pub base: String,
    /// The proxy's origin, as the lab's pages have it.
    pub origin: String,
    /// The lab cookie, `name=value`.
    pub cookie: String,
}

/// Takes a ticket for lab `id` from the API with `token` and redeems it
/// on the proxy.
pub(crate) async fn enter_lab(app: &TestApp, token: &str, id: &str) -> LabEntry {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/open")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ticket = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let origin = ticket.split("/labs/").next().unwrap().to_owned();
    let client = browser();
    let r = client.get(&ticket).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    LabEntry {
        client,
        base: format!("{origin}/labs/{id}/"),
        origin,
        cookie,
    }
}

impl LabEntry {
    /// The status of the lab's page, asked for with the lab cookie.
    pub(crate) async fn page_status(&self) -> u16 {
        self.client
            .get(&self.base)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// What the lab proxy at `proxy_url` (a restarted server's, at its new
    /// address) answers this entry's cookie on the lab's page: the status
    /// and the proxy's error code.
    pub(crate) async fn page_on(&self, proxy_url: &str) -> (u16, String) {
        let path = self.base.strip_prefix(&self.origin).unwrap();
        let r = plain()
            .get(format!("{proxy_url}{path}"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), proxy_code(&r.text().await.unwrap()))
    }

    /// A WebSocket to the lab through the proxy, as the lab's page opens it.
    pub(crate) async fn websocket(&self) -> WebSocket {
        let url = format!("{}echo", self.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        req.headers_mut()
            .insert("origin", self.origin.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("a WebSocket through the proxy");
        ws
    }
}

/// Whether the lab echoes `text` on the WebSocket.
pub(crate) async fn echoes(ws: &mut WebSocket, text: &str) -> bool {
    ws.send(Message::Text(text.into())).await.unwrap();
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ws.next()).await,
        Ok(Some(Ok(Message::Text(t)))) if t.as_str() == text
    )
}

/// Whether the WebSocket is closed within a few seconds: the stream ends,
/// fails, or a close frame arrives, and nothing gets through any more.
pub(crate) async fn is_cut(ws: &mut WebSocket) -> bool {
    // Whatever was in flight may still arrive; what matters is the end.
    let _ = ws.send(Message::Text("still there?".into())).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}
