//! JupyterLab for real, through the lab proxy: its UI loads, a Python kernel
//! started over the proxied WebSocket reads a FITS file from a mounted volume
//! with astropy and cannot write into the volume, and a notebook saved in the
//! workspace is still there after stop and relaunch. Another user is refused
//! on the proxy, HTTP and WebSocket.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::harness::*;

fn jupyter_available() -> bool {
    let ok = std::path::Path::new("/usr/bin/bwrap").exists()
        && repo_root().join(".venv/bin/jupyter-lab").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "JupyterLab and bubblewrap are required but missing"
        );
        eprintln!("skipping: JupyterLab (.venv) or bubblewrap missing");
    }
    ok
}

/// A browser session on the platform that has opened a lab on the proxy.
pub(crate) struct Opened {
    pub(crate) client: reqwest::Client,
    xsrf: std::sync::Mutex<Option<String>>,
    /// `http://proxy/labs/<id>/`
    pub(crate) base: String,
    pub(crate) cookie: String,
}

async fn launch_and_open(app: &TestApp, user: &str, token: &str) -> (String, Opened) {
    let r = plain()
        .post(app.u("/api/v1/labs"))
        .bearer_auth(token)
        .json(&json!({"datalab": "jupyterlab", "volumes": ["deep-fields"]}))
        .send()
        .await
        .unwrap();
    let lab: Value = r.json().await.unwrap();
    let id = lab["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), token).await;
        match lab["state"].as_str().unwrap() {
            "running" => break,
            "pending" | "starting" => {}
            _ => panic!("JupyterLab did not start: {lab}"),
        }
        assert!(start.elapsed() < Duration::from_secs(90));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (id.clone(), open(app, user, &id).await)
}

pub(crate) async fn open(app: &TestApp, user: &str, id: &str) -> Opened {
    let s = app.login(user, PASSWORD).await;
    let r = s.open_lab(app, id).await;
    let ticket_url = r.headers()["location"].to_str().unwrap().to_owned();
    let origin = ticket_url.split("/labs/").next().unwrap().to_owned();
    let r = s.client.get(&ticket_url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    Opened {
        client: s.client,
        xsrf: std::sync::Mutex::new(None),
        base: format!("{origin}/labs/{id}/"),
        cookie,
    }
}

impl Opened {
    async fn xsrf(&self) -> String {
        if let Some(x) = self.xsrf.lock().unwrap().clone() {
            return x;
        }
        // JupyterLab's page sets its _xsrf cookie; API writes send it back.
        let r = self
            .client
            .get(format!("{}lab", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let xsrf = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix("_xsrf=")
                    .map(|v| v.split(';').next().unwrap().to_owned())
            });
        let page = r.text().await.unwrap();
        assert!(
            page.contains("JupyterLab"),
            "the JupyterLab UI loads through the proxy"
        );
        let xsrf = xsrf.unwrap_or_default();
        *self.xsrf.lock().unwrap() = Some(xsrf.clone());
        xsrf
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let xsrf = self.xsrf().await;
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-XSRFToken", &xsrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Runs code in a new kernel over the proxied WebSocket; returns stdout
    /// and the error name, if any.
    pub(crate) async fn run(&self, code: &str) -> (String, Option<String>) {
        let (status, kernel) = self
            .api(
                reqwest::Method::POST,
                "api/kernels",
                json!({"name": "python3"}),
            )
            .await;
        assert_eq!(status, 201, "{kernel}");
        let kid = kernel["id"].as_str().unwrap();
        let ws_url = format!(
            "{}api/kernels/{kid}/channels",
            self.base.replacen("http://", "ws://", 1)
        );
        let mut req = ws_url.into_client_request().unwrap();
        req.headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        // JupyterLab's page is on the lab's origin; the proxy wants that Origin.
        let origin = self.base.split("/labs/").next().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("WebSocket through the proxy");
        let msg_id = format!("run-{}", std::process::id());
        let execute = json!({
            "header": {"msg_id": msg_id, "username": "test", "session": "s1", "msg_type": "execute_request",
                       "version": "5.3", "date": "2026-01-01T00:00:00Z"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": false, "store_history": false, "user_expressions": {},
                        "allow_stdin": false, "stop_on_error": true}
        });
        ws.send(Message::Text(execute.to_string().into()))
            .await
            .unwrap();
        let (mut out, mut error) = (String::new(), None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(Some(Ok(Message::Text(t)))) =
                tokio::time::timeout(Duration::from_secs(60), ws.next()).await
            else {
                continue;
            };
            let m: Value = serde_json::from_str(&t).unwrap();
            if m["parent_header"]["msg_id"] != msg_id.as_str() {
                continue;
            }
            match m["msg_type"].as_str().unwrap_or("") {
                "stream" => out.push_str(m["content"]["text"].as_str().unwrap_or("")),
                "error" => error = m["content"]["ename"].as_str().map(str::to_owned),
                "status" if m["content"]["execution_state"] == "idle" => break,
                _ => {}
            }
        }
        (out, error)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_reads_fits_from_a_volume_and_its_workspace_persists() {
    if !jupyter_available() {
        return;
    }
    let app = spawn_app().await;
    let token = app.user_with_role("tess", "user").await;
    let (id, lab) = launch_and_open(&app, "tess", &token).await;

    let (out, err) = lab
        .run(
            "from astropy.io import fits\n\
             h = fits.getheader('/media/data/deep-fields/skysim_m31_g.fits')\n\
             print(h['OBJECT'], h['TELESCOP'], h['NAXIS1'])\n\
             try:\n    open('/media/data/deep-fields/mine.txt', 'w')\nexcept OSError as e:\n    print('write refused:', e.strerror)\n",
        )
        .await;
    assert_eq!(err, None, "{out}");
    assert!(out.contains("M31 INSITU-SIM 256"), "{out}");
    assert!(
        out.contains("write refused: Read-only file system"),
        "{out}"
    );

    let notebook = json!({"type": "notebook", "content": {
        "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}});
    let (status, saved) = lab
        .api(
            reqwest::Method::PUT,
            "api/contents/analysis.ipynb",
            notebook,
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let (_, ws) = get_json(&plain(), &app.u("/api/v1/me/workspace"), &token).await;
    assert_eq!(ws["path"], "/home/user");
    assert!(
        ws["files"].as_u64().unwrap() >= 1 && ws["used_bytes"].as_u64().unwrap() > 0,
        "{ws}"
    );

    // Another user cannot reach the lab, by HTTP or WebSocket.
    app.user_with_role("ugo", "user").await;
    let ugo = app.login("ugo", PASSWORD).await;
    assert_eq!(
        ugo.client
            .get(format!("{}lab", lab.base))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let mut req = format!("{}api/kernels", lab.base.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", "insitu_lab_forged=abc".parse().unwrap());
    // From a page of the lab's origin: refused for the cookie alone.
    let origin = lab.base.split("/labs/").next().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_err(),
        "the upgrade is refused"
    );

    // Stop, relaunch: the notebook is still in the workspace.
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, again) = launch_and_open(&app, "tess", &token).await;
    let r = again
        .client
        .get(format!("{}api/contents/analysis.ipynb", again.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the notebook survived the relaunch");
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &token).await;
    for l in labs["items"].as_array().unwrap() {
        let id = l["id"].as_str().unwrap();
        plain()
            .post(app.u(&format!("/api/v1/labs/{id}/stop")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
}
