//! A real headless Chromium, driven over WebDriver (chromedriver), logs in,
//! filters the catalogue, adds a volume to "my volumes" and keeps
//! screenshots under `target/screenshots/`.
//!
//! Runs where Chromium and chromedriver are installed (the test command
//! installs them and sets `INSITU_REQUIRE_BROWSER=1`, which turns their
//! absence into a failure).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) struct Driver {
    process: Child,
    http: reqwest::Client,
    session: String,
}

impl Drop for Driver {
    /// Ends chromedriver and the Chromium it started: they share a process
    /// group of their own, so no browser outlives the test.
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.wait();
    }
}

impl Driver {
    pub(crate) async fn start() -> Option<Driver> {
        let (driver, chromium) = (
            Path::new("/usr/bin/chromedriver"),
            Path::new("/usr/bin/chromium"),
        );
        if !driver.exists() || !chromium.exists() {
            assert!(
                std::env::var("INSITU_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "INSITU_REQUIRE_BROWSER=1 but chromium or chromedriver is missing"
            );
            eprintln!("skipping the browser test: chromium and chromedriver are not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(driver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1400,1000", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Some(Driver {
            process,
            http,
            session: format!("{base}/session/{session}"),
        })
    }

    pub(crate) async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(r["value"].get("error").is_none(), "WebDriver {path}: {r}");
        r["value"].clone()
    }

    pub(crate) async fn go(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        for _ in 0..50 {
            let r: Value = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = r["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css}");
    }

    pub(crate) async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            json!({}),
        )
        .await;
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Clicks what opens a new tab (a form with `target=_blank`) and
    /// continues in that tab.
    pub(crate) async fn click_into_new_tab(&self, css: &str) {
        let before = self
            .cmd(reqwest::Method::GET, "/window/handles", Value::Null)
            .await;
        self.click(css).await;
        for _ in 0..100 {
            let now = self
                .cmd(reqwest::Method::GET, "/window/handles", Value::Null)
                .await;
            let new = now
                .as_array()
                .unwrap()
                .iter()
                .find(|h| !before.as_array().unwrap().contains(h))
                .cloned();
            if let Some(handle) = new {
                self.cmd(reqwest::Method::POST, "/window", json!({"handle": handle}))
                    .await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} opened no new tab");
    }

    pub(crate) async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": js, "args": []}),
        )
        .await
    }

    pub(crate) async fn wait_for(&self, js_condition: &str) {
        for _ in 0..50 {
            if self.script(&format!("return !!({js_condition});")).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {js_condition}");
    }

    async fn card_names(&self) -> Vec<String> {
        let v = self
            .script("return [...document.querySelectorAll('.card')].map(c => c.dataset.name);")
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let b64 = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = decode_base64(b64.as_str().unwrap());
        assert_eq!(&png[1..4], b"PNG");
        let dir = repo_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(value(*c))).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scientist_logs_in_filters_the_catalogue_and_adds_a_volume() {
    let Some(d) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    app.user_with_role("lena", "user").await;

    d.go(&app.u("/datalabs")).await;
    d.wait_for("location.pathname === '/login'").await;
    d.type_into("#username", "lena").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/datalabs'").await;
    assert_eq!(
        d.card_names().await,
        [
            "aladin",
            "crashes",
            "ds9",
            "fv",
            "gpuapp",
            "jupyterlab",
            "memhog",
            "qfitsview",
            "testapp",
            "topcat"
        ]
    );

    // A tag: ticking a facet submits the filter.
    d.click("input[name=property][value=query_tool]").await;
    d.wait_for("location.search.includes('property=query_tool')")
        .await;
    assert_eq!(d.card_names().await, ["aladin", "topcat"]);
    // Free text on top of it.
    d.type_into("#search", "sky atlas").await;
    d.click("#apply-filter").await;
    d.wait_for("location.search.includes('q=sky')").await;
    assert_eq!(d.card_names().await, ["aladin"]);
    d.go(&app.u("/datalabs?q=fits")).await;
    assert_eq!(d.card_names().await, ["ds9", "fv", "qfitsview"]);
    let shot = d.screenshot("catalogue.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    d.go(&app.u("/volumes")).await;
    let mine = d
        .script("return document.querySelector('#my-volumes').innerText;")
        .await;
    assert!(mine.as_str().unwrap().contains("not added any volume"));
    d.click("#add-allsky-survey-btn").await;
    d.wait_for("document.querySelector('#my-volumes a[href=\"/volumes/allsky-survey\"]')")
        .await;
    let notice = d
        .script("return document.querySelector('.notice').innerText;")
        .await;
    assert!(
        notice.as_str().unwrap().contains("added to your volumes"),
        "{notice}"
    );
    d.screenshot("my-volumes.png").await;

    // The server agrees.
    let token = app.token("lena", PASSWORD).await;
    let (_, mine) = get_json(&plain(), &app.u("/api/v1/me/volumes"), &token).await;
    assert_eq!(mine["items"][0]["name"], "allsky-survey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scientist_launches_jupyterlab_from_the_catalogue_and_sees_it_through_the_proxy() {
    if !repo_root().join(".venv/bin/jupyter-lab").exists() || !Path::new("/usr/bin/bwrap").exists()
    {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "JupyterLab is required"
        );
        return;
    }
    let Some(d) = Driver::start().await else {
        return;
    };
    // Every lab on an origin of its own, as the demo serves them.
    let app = spawn_with(Options {
        per_lab_origins: true,
        ..Options::default()
    })
    .await;
    app.user_with_role("vera", "user").await;
    d.go(&app.u("/login")).await;
    d.type_into("#username", "vera").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/datalabs'").await;
    d.go(&app.u("/volumes")).await;
    d.click("#add-deep-fields-btn").await;
    d.wait_for("document.querySelector('#my-volumes a[href=\"/volumes/deep-fields\"]')")
        .await;

    d.go(&app.u("/datalabs/jupyterlab")).await;
    d.click("#launch").await;
    d.wait_for("location.pathname.startsWith('/my-labs/')")
        .await;
    // The page follows the launch step by step until the lab runs.
    for _ in 0..900 {
        let state = d
            .script("const s = document.querySelector('#lab-state'); return s ? s.innerText : '';")
            .await;
        if state == "running" {
            break;
        }
        assert_ne!(state, "failed", "JupyterLab failed to start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_for("document.querySelector('#open')").await;
    d.screenshot("lab-running.png").await;
    let lab_page = d.script("return location.pathname;").await;
    // *Open* is a form posting the CSRF token; the lab opens in a new tab.
    d.click_into_new_tab("#open").await;
    d.wait_for("location.pathname.endsWith('/lab') || location.pathname.includes('/lab/')")
        .await;
    assert!(
        !d.script("return location.origin;")
            .await
            .as_str()
            .unwrap()
            .ends_with(&app.url[7..]),
        "served by the proxy's origin"
    );
    let host = d.script("return location.hostname;").await;
    let host = host.as_str().unwrap();
    let lab_id = host.strip_suffix(".localhost").unwrap_or_default();
    assert!(
        !lab_id.is_empty() && lab_page.as_str().unwrap() == format!("/my-labs/{lab_id}"),
        "the lab's own origin, named after it: {host}"
    );
    // JupyterLab's own UI renders: its launcher and file browser.
    for _ in 0..300 {
        if d.script("return !!document.querySelector('.jp-Launcher, .jp-DirListing');")
            .await
            == Value::Bool(true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_for("document.querySelector('.jp-Launcher, .jp-DirListing')")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shot = d.screenshot("jupyterlab-through-proxy.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000);
    let token = app.token("vera", PASSWORD).await;
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &token).await;
    let id = labs["items"][0]["id"].as_str().unwrap();
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
}

impl Driver {
    async fn log_in(&self, app: &TestApp, user: &str) {
        self.go(&app.u("/login")).await;
        self.type_into("#username", user).await;
        self.type_into("#password", PASSWORD).await;
        self.click("#login-submit").await;
        self.wait_for("location.pathname === '/datalabs'").await;
    }

    async fn log_out(&self) {
        self.click("#logout").await;
        self.wait_for("location.pathname === '/login' || location.pathname === '/'")
            .await;
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await;
        self.script(&format!(
            "return document.querySelector({css:?}).innerText;"
        ))
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_builds_a_datalab_a_moderator_approves_it_and_a_scientist_launches_it() {
    if !crate::devlabs::containers_available() {
        return;
    }
    let Some(d) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    app.user_with_role("dora", "developer").await;
    app.user_with_role("mona", "moderator").await;
    app.user_with_role("sam", "user").await;

    // Draft from a template.
    d.log_in(&app, "dora").await;
    d.click("#nav-devlabs").await;
    d.wait_for("location.pathname === '/devlabs'").await;
    d.type_into("#devlab-name", "starfinder").await;
    d.type_into("#devlab-title", "Star finder").await;
    d.click("#create").await;
    d.wait_for("location.pathname === '/devlabs/starfinder'")
        .await;
    assert_eq!(d.text("#devlab-state").await, "DRAFT");
    let containerfile = d
        .script("return document.querySelector('#containerfile').value;")
        .await;
    assert!(
        containerfile
            .as_str()
            .unwrap()
            .contains("FROM localhost/insitu/python:3"),
        "{containerfile}"
    );

    // A step that takes a while, so the page shows the log as it comes.
    let token = app.token("dora", PASSWORD).await;
    let (_, draft) =
        crate::devlabs::call(&app, "GET", "/api/v1/devlabs/starfinder", &token, None).await;
    let mut source = draft["source"].clone();
    source["containerfile"] = Value::String(format!(
        "{}RUN echo indexing the star catalogue && sleep 5\n",
        source["containerfile"].as_str().unwrap()
    ));
    let (status, _) = crate::devlabs::call(
        &app,
        "PUT",
        "/api/v1/devlabs/starfinder",
        &token,
        Some(json!({"definition": draft["definition"], "source": source})),
    )
    .await;
    assert_eq!(status, 200);

    // Build: the build's page follows its log live, and shows its state
    // once it ends.
    d.go(&app.u("/devlabs/starfinder")).await;
    d.click("#build").await;
    d.wait_for("location.pathname === '/devlabs/starfinder/builds/0'")
        .await;
    for _ in 0..100 {
        let log = d.text("#build-log").await;
        if log.contains("indexing the star catalogue") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        d.text("#build-log")
            .await
            .contains("indexing the star catalogue")
    );
    assert_ne!(
        d.text("#build-state").await,
        "SUCCEEDED",
        "the log grew on the page while the build ran"
    );
    d.screenshot("devlab-build-running.png").await;
    for _ in 0..600 {
        let state = d
            .script(
                "const s = document.querySelector('#build-state'); return s ? s.innerText : '';",
            )
            .await;
        if state == "SUCCEEDED" {
            break;
        }
        assert_ne!(state, "FAILED", "the build failed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(d.text("#build-state").await, "SUCCEEDED");
    let log = d.text("#build-log").await;
    assert!(log.contains("COPY app.py"), "{log}");
    d.screenshot("devlab-build-log.png").await;

    // Public once approved; submitted from the development page.
    d.go(&app.u("/devlabs/starfinder")).await;
    assert!(d.text("#builds").await.contains("SUCCESS"));
    d.click("#visibility-public").await;
    d.click("#save-audience").await;
    d.wait_for("document.querySelector('.notice')").await;
    d.click("#submit").await;
    d.wait_for("document.querySelector('.notice')").await;
    assert!(d.text(".notice").await.contains("submitted"));
    assert_eq!(d.text("#devlab-state").await, "SUBMITTED");
    d.screenshot("devlab-submitted.png").await;
    d.log_out().await;

    // The moderator approves it from the queue.
    d.log_in(&app, "mona").await;
    d.click("#nav-moderation").await;
    d.wait_for("location.pathname === '/moderation'").await;
    let card = ".submission[data-name=starfinder]";
    assert!(d.text(card).await.contains("dora"));
    d.screenshot("moderation-queue.png").await;
    d.click(&format!("{card} .approve")).await;
    d.wait_for("document.querySelector('.notice')").await;
    assert!(d.text(".notice").await.contains("published"));
    d.find("#queue-empty").await;
    d.log_out().await;

    // A scientist finds it in the catalogue and launches it.
    d.log_in(&app, "sam").await;
    d.type_into("#search", "star finder").await;
    d.click("#apply-filter").await;
    d.wait_for("location.search.includes('q=star')").await;
    let card = d.text(".card[data-name=starfinder]").await;
    assert!(
        card.contains("PUBLISHED") && card.contains("dora"),
        "{card}"
    );
    d.screenshot("devlab-in-catalogue.png").await;
    d.click(".card[data-name=starfinder] a").await;
    d.wait_for("location.pathname === '/datalabs/starfinder'")
        .await;
    assert_eq!(d.text("#developed-state").await, "PUBLISHED");
    d.click("#launch").await;
    d.wait_for("location.pathname.startsWith('/my-labs/')")
        .await;
    for _ in 0..900 {
        let state = d
            .script("const s = document.querySelector('#lab-state'); return s ? s.innerText : '';")
            .await;
        if state == "running" {
            break;
        }
        assert_ne!(state, "failed", "the developed datalab failed to start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_for("document.querySelector('#open')").await;
    d.click_into_new_tab("#open").await;
    for _ in 0..100 {
        if d.script(
            "return document.body && document.body.innerText.includes('Hello from my datalab');",
        )
        .await
            == Value::Bool(true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(d.text("h1").await.contains("Hello from my datalab"));
    d.screenshot("devlab-launched.png").await;
    let token = app.token("sam", PASSWORD).await;
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &token).await;
    let id = labs["items"][0]["id"].as_str().unwrap();
    crate::devlabs::stop(&app, &token, id).await;
}
