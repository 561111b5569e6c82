//! Desktop labs for real: TOPCAT and DS9 launched from the catalogue page in
//! Chromium, shown by noVNC through the lab proxy (screenshots kept under
//! `target/screenshots/`, pixels checked, window titles read from the X
//! server); another user refused on HTTP and at the WebSocket upgrade; a
//! reconnect finds the same session. SAMP: a table sent from astropy in a
//! user's JupyterLab reaches TOPCAT in a desktop lab of the same user, and
//! another user's hub never sees it. Launching on a file from a volume:
//! the checks, and DS9, fv and QFitsView showing the file in their window
//! titles and Aladin loading it; Aladin, fv and QFitsView showing their
//! windows (API and proxy, no browser). The clipboard both ways between a
//! VNC client on the proxy and the lab's X clipboard.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::browser::Driver;
use crate::harness::*;

fn desktop_available() -> bool {
    let ok = [
        "/usr/bin/bwrap",
        "/usr/bin/Xvnc",
        "/usr/bin/websockify",
        "/usr/bin/topcat",
        "/usr/bin/ds9",
        "/usr/bin/fv",
        "/usr/bin/aladin",
        "/usr/bin/QFitsView",
    ]
    .iter()
    .all(|p| Path::new(p).exists());
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_DESKTOP").as_deref() != Ok("1"),
            "INSITU_REQUIRE_DESKTOP=1 but bubblewrap, Xvnc, websockify or a desktop program is missing"
        );
        eprintln!("skipping: the desktop packages (scripts/deps.sh test) are not installed");
    }
    ok
}

async fn launch(app: &TestApp, token: &str, datalab: &str) -> String {
    let r = plain()
        .post(app.u("/api/v1/labs"))
        .bearer_auth(token)
        .json(&json!({"datalab": datalab}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{datalab}: {}", r.text().await.unwrap());
    let lab: Value = r.json().await.unwrap();
    lab["id"].as_str().unwrap().to_owned()
}

async fn wait_running(app: &TestApp, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), token).await;
        match lab["state"].as_str().unwrap() {
            "running" => return,
            "pending" | "starting" => {}
            _ => panic!("lab {id} did not start: {lab}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "lab {id} still not running: {lab}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop_all(app: &TestApp, token: &str) {
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), token).await;
    for l in labs["items"].as_array().unwrap() {
        let id = l["id"].as_str().unwrap();
        plain()
            .post(app.u(&format!("/api/v1/labs/{id}/stop")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    }
}

/// Waits until noVNC in the current page is connected to the lab's display.
async fn wait_connected(d: &Driver) {
    let start = Instant::now();
    loop {
        if d.script("return !!document.documentElement?.classList.contains('noVNC_connected');")
            .await
            == Value::Bool(true)
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "noVNC did not connect: {}",
            d.script("return document.body.innerText;").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The program's windows as the X server in the lab lists them, read
/// through the proxy by the page: `(id, title)` pairs.
async fn windows(d: &Driver) -> Vec<(String, String)> {
    let text = d
        .script(
            "const x = new XMLHttpRequest(); x.open('GET', 'insitu-windows.txt', false); x.send(); \
             return x.status + '\\n' + x.responseText;",
        )
        .await;
    let text = text.as_str().unwrap();
    let (status, list) = text.split_once('\n').unwrap();
    assert_eq!(status, "200", "{text}");
    list.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, t)| (id.to_owned(), t.to_owned()))
        .collect()
}

/// Of the noVNC canvas: its size, the share of pixels that are not the
/// most common colour, and the number of distinct colours (sampled).
async fn canvas_stats(d: &Driver) -> (u64, u64, f64, u64) {
    let v = d
        .script(
            "const c = document.querySelector('#noVNC_container canvas');\
             const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;\
             const counts = new Map();\
             for (let i = 0; i < data.length; i += 4 * 7) {\
               const k = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];\
               counts.set(k, (counts.get(k) || 0) + 1);\
             }\
             let total = 0, top = 0;\
             for (const n of counts.values()) { total += n; top = Math.max(top, n); }\
             return [c.width, c.height, (total - top) / total, counts.size];",
        )
        .await;
    (
        v[0].as_u64().unwrap(),
        v[1].as_u64().unwrap(),
        v[2].as_f64().unwrap(),
        v[3].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topcat_and_ds9_launch_from_the_catalogue_and_show_their_windows_through_the_proxy() {
    if !desktop_available() {
        return;
    }
    let Some(d) = Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    let token = app.user_with_role("dora", "user").await;
    d.go(&app.u("/login")).await;
    d.type_into("#username", "dora").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/datalabs'").await;

    let mut opened = Vec::new();
    for (datalab, title) in [("topcat", "TOPCAT"), ("ds9", "SAOImage ds9")] {
        d.go(&app.u(&format!("/datalabs/{datalab}"))).await;
        d.click("#launch").await;
        d.wait_for("location.pathname.startsWith('/my-labs/')")
            .await;
        let id = d
            .script("return location.pathname.split('/')[2];")
            .await
            .as_str()
            .unwrap()
            .to_owned();
        let start = Instant::now();
        loop {
            let state = d
                .script(
                    "const s = document.querySelector('#lab-state'); return s ? s.textContent.trim().toLowerCase() : '';",
                )
                .await;
            if state == "running" {
                break;
            }
            assert_ne!(state, "failed", "{datalab} failed to start");
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{datalab}: {state}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        d.wait_for("document.querySelector('#open')").await;
        // *Open* posts the CSRF token and opens the lab in a new tab.
        d.click_into_new_tab("#open").await;
        wait_connected(&d).await;
        let url = d.script("return location.href;").await;
        let url = url.as_str().unwrap().to_owned();
        assert!(
            url.contains(&format!("/labs/{id}/vnc.html")) && !url.contains("password"),
            "noVNC from the proxy, no credential in the URL: {url}"
        );
        assert!(!url.starts_with(&app.url), "served by the proxy's origin");

        // The window title, from the X server in the lab.
        let start = Instant::now();
        let list = loop {
            let list = windows(&d).await;
            if list.iter().any(|(_, t)| t.contains(title)) {
                break list;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {title} window: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        // The display follows the browser window (remote resize) and shows
        // the program: many pixels off the background, many colours.
        let start = Instant::now();
        let (w, h, busy, colours) = loop {
            let (w, h, busy, colours) = canvas_stats(&d).await;
            let inner = d
                .script("return [window.innerWidth, window.innerHeight];")
                .await;
            let resized = Some(w) == inner[0].as_u64() && Some(h) == inner[1].as_u64();
            if resized && busy > 0.05 && colours > 8 || start.elapsed() > Duration::from_secs(20) {
                assert!(resized, "display {w}x{h} follows the browser {inner}");
                break (w, h, busy, colours);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(
            busy > 0.05 && colours > 8,
            "{datalab}: the screen is blank ({busy:.3} of pixels off the background, {colours} colours)"
        );
        let shot = d.screenshot(&format!("desktop-{datalab}.png")).await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 20_000);
        eprintln!(
            "{datalab}: {w}x{h}, {:.0}% of pixels off the background, {colours} colours, windows {list:?}",
            busy * 100.0
        );
        opened.push((id, list, url));
    }

    // Closing the page leaves the program running; reconnecting shows the
    // same windows of the same X server.
    let (id, before, url) = opened[0].clone();
    d.go("about:blank").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &token).await;
    assert_eq!(lab["state"], "running");
    d.go(&url).await;
    wait_connected(&d).await;
    let after = windows(&d).await;
    let main = before.iter().find(|(_, t)| t.contains("TOPCAT")).unwrap();
    assert!(
        after.contains(main),
        "same window {main:?} after reconnecting: {after:?}"
    );
    d.screenshot("desktop-topcat-reconnected.png").await;

    // Another user: no ticket from the platform, nothing on the proxy by
    // HTTP, and the WebSocket upgrade is refused.
    app.user_with_role("otto", "user").await;
    let otto = app.login("otto", PASSWORD).await;
    let r = otto.open_lab(&app, &id).await;
    assert_eq!(r.status(), 404, "no ticket for another user's lab");
    let base = url.split("vnc.html").next().unwrap().to_owned();
    let r = otto
        .client
        .get(format!("{base}vnc.html"))
        .send()
        .await
        .unwrap();
    assert!(
        [401, 403, 404].contains(&r.status().as_u16()),
        "{}",
        r.status()
    );
    for cookie in [None, Some(format!("insitu_lab_{id}=forged"))] {
        let mut req = format!("{}websockify", base.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        if let Some(c) = &cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        // From a page of the lab's origin: refused for the cookie alone.
        let origin = base.split("/labs/").next().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert!([401, 403, 404].contains(&r.status().as_u16()), "{r:?}")
            }
            other => panic!("the upgrade was not refused: {other:?}"),
        }
    }
    stop_all(&app, &token).await;
}

/// Every hub's log, for failure messages.
fn hub_logs(app: &TestApp) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(app.dir.path().join("data/samp"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let log = std::fs::read_to_string(entry.path().join("hub.log")).unwrap_or_default();
        out.push_str(&format!("\n--- {}\n{log}", entry.path().display()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_sent_over_samp_from_a_notebook_reaches_topcat_of_the_same_user_only() {
    if !desktop_available() || !repo_root().join(".venv/bin/jupyter-lab").exists() {
        return;
    }
    let app = spawn_app().await;
    let ann = app.user_with_role("ann", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    let topcat = launch(&app, &ann, "topcat").await;
    let notebook = launch(&app, &ann, "jupyterlab").await;
    let other = launch(&app, &bob, "jupyterlab").await;
    for (token, id) in [(&ann, &topcat), (&ann, &notebook), (&bob, &other)] {
        wait_running(&app, token, id).await;
    }

    let send = "from astropy.samp import SAMPIntegratedClient, conf\n\
        conf.use_internet = False\n\
        import time, warnings\n\
        warnings.simplefilter('ignore')\n\
        from astropy.table import Table\n\
        Table({'name': ['M31', 'M42'], 'ra': [10.68, 83.82], 'dec': [41.27, -5.39]})\
        .write('/home/user/objects.vot', format='votable', overwrite=True)\n\
        c = SAMPIntegratedClient(name='notebook')\n\
        c.connect()\n\
        names = {}\n\
        for _ in range(120):\n    \
            names = {k: c.get_metadata(k).get('samp.name', '') for k in c.get_registered_clients()}\n    \
            if 'topcat' in [n.lower() for n in names.values()]:\n        break\n    \
            time.sleep(0.5)\n\
        print('clients', sorted(names.values()))\n\
        for k, n in names.items():\n    \
            if n.lower() == 'topcat':\n        \
                r = c.call_and_wait(k, {'samp.mtype': 'table.load.votable', 'samp.params': \
                {'url': 'file:///home/user/objects.vot', 'name': 'objects'}}, '60')\n        \
                print('reply', r['samp.status'])\n\
        c.notify_all({'samp.mtype': 'table.load.votable', 'samp.params': {'url': 'file:///home/user/objects.vot'}})\n\
        c.disconnect()\n";
    let lab = crate::jupyter::open(&app, "ann", &notebook).await;
    let (out, err) = lab.run(send).await;
    assert_eq!(err, None, "{out}\nhub logs: {}", hub_logs(&app));
    assert!(
        out.contains("reply samp.ok"),
        "TOPCAT loaded the table: {out}"
    );

    // The hub's records say the same: TOPCAT and the notebook registered,
    // the table went from one to the other and TOPCAT replied OK.
    let (status, records) = get_json(&plain(), &app.u("/api/v1/me/samp"), &ann).await;
    assert_eq!(status, 200);
    let records = records["items"].as_array().unwrap().clone();
    let client = |name: &str| {
        records
            .iter()
            .find(|r| {
                r["event"] == "metadata" && r["name"].as_str().unwrap().eq_ignore_ascii_case(name)
            })
            .and_then(|r| r["client"].as_str())
            .unwrap_or_else(|| panic!("no {name} client in {records:?}"))
            .to_owned()
    };
    let (topcat_client, notebook_client) = (client("topcat"), client("notebook"));
    assert!(
        records.iter().any(|r| r["event"] == "message"
            && r["mtype"] == "table.load.votable"
            && r["sender"] == notebook_client.as_str()
            && r["recipient"] == topcat_client.as_str()
            && r["params"]["url"] == "file:///home/user/objects.vot"),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r["event"] == "reply"
            && r["sender"] == topcat_client.as_str()
            && r["recipient"] == notebook_client.as_str()
            && r["status"] == "samp.ok"),
        "{records:?}"
    );

    // Bob's notebook finds a hub of his own, without TOPCAT; what he sends
    // never reaches Ann's hub.
    let lab = crate::jupyter::open(&app, "bob", &other).await;
    let (out, err) = lab
        .run(
            "from astropy.samp import SAMPIntegratedClient, conf\n\
             conf.use_internet = False\n\
             import warnings\n\
             warnings.simplefilter('ignore')\n\
             c = SAMPIntegratedClient(name='bobs-notebook')\n\
             c.connect()\n\
             print('clients', sorted(c.get_metadata(k).get('samp.name', '') for k in c.get_registered_clients()))\n\
             c.notify_all({'samp.mtype': 'table.load.votable', 'samp.params': {'url': 'file:///home/user/mine.vot'}})\n\
             c.disconnect()\n",
        )
        .await;
    assert_eq!(err, None, "{out}");
    assert!(!out.to_lowercase().contains("topcat"), "{out}");
    let (_, theirs) = get_json(&plain(), &app.u("/api/v1/me/samp"), &bob).await;
    let theirs = theirs["items"].as_array().unwrap();
    assert!(
        theirs.iter().any(|r| r["name"] == "bobs-notebook"),
        "{theirs:?}"
    );
    assert!(
        !theirs.iter().any(|r| r["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("topcat"))),
        "{theirs:?}"
    );
    let (_, mine) = get_json(&plain(), &app.u("/api/v1/me/samp"), &ann).await;
    let mine = mine["items"].as_array().unwrap();
    assert!(
        !mine
            .iter()
            .any(|r| r["name"] == "bobs-notebook"
                || r["params"]["url"] == "file:///home/user/mine.vot"),
        "{mine:?}"
    );

    stop_all(&app, &ann).await;
    stop_all(&app, &bob).await;
}

/// A client holding the lab proxy's cookie for lab `id` (redeemed from a
/// ticket the API hands out), and the lab's base URL on the proxy.
async fn proxy_session(app: &TestApp, token: &str, id: &str) -> (reqwest::Client, String) {
    let (client, base, _) = proxy_session_with_cookie(app, token, id).await;
    (client, base)
}

/// [`proxy_session`], and the cookie itself (`name=value`) for WebSockets.
async fn proxy_session_with_cookie(
    app: &TestApp,
    token: &str,
    id: &str,
) -> (reqwest::Client, String, String) {
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
    let origin = ticket.split("/labs/").next().unwrap().to_owned();
    (client, format!("{origin}/labs/{id}/"), cookie)
}

/// Waits until the lab's X server lists a window titled `title` (or
/// `title` and more after a space); returns every `(id, title)`.
async fn wait_window(
    client: &reqwest::Client,
    base: &str,
    datalab: &str,
    title: &str,
) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let r = client
            .get(format!("{base}insitu-windows.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{datalab}: the window list");
        let list: Vec<(String, String)> = r
            .text()
            .await
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, t)| (id.to_owned(), t.to_owned()))
            .collect();
        let named = |t: &String| t == title || t.starts_with(&format!("{title} "));
        if list.iter().any(|(_, t)| named(t)) {
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{datalab}: no window titled {title:?}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn stop(app: &TestApp, token: &str, id: &str) {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn launch_with(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let r = plain()
        .post(app.u("/api/v1/labs"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

const M31: &str = "/media/data/deep-fields/skysim_m31_g.fits";

#[tokio::test]
async fn a_file_to_open_must_be_a_file_inside_a_selected_volume() {
    let app = spawn_app().await;
    let t = app.user_with_role("fay", "user").await;
    let (_, ds9) = get_json(&plain(), &app.u("/api/v1/datalabs/ds9"), &t).await;
    assert_eq!(ds9["opens_files"], true);
    let (_, jl) = get_json(&plain(), &app.u("/api/v1/datalabs/jupyterlab"), &t).await;
    assert_eq!(jl["opens_files"], false);
    // Outside the volume, climbing out of it, not there, in a volume not
    // selected, relative, for a datalab that opens no files.
    for (datalab, volumes, file, says) in [
        (
            "ds9",
            json!(["deep-fields"]),
            "/etc/passwd",
            "not inside the mount path",
        ),
        (
            "ds9",
            json!(["deep-fields"]),
            "/media/data/deep-fields/../allsky-survey/allsky_skysim_car.fits",
            "plain path",
        ),
        (
            "ds9",
            json!(["deep-fields"]),
            "/media/data/deep-fields//skysim_m31_g.fits",
            "plain path",
        ),
        (
            "ds9",
            json!(["deep-fields"]),
            "/media/data/deep-fields/nope.fits",
            "no file",
        ),
        (
            "ds9",
            json!(["deep-fields"]),
            "/media/data/deep-fields",
            "not inside the mount path",
        ),
        (
            "ds9",
            json!(["allsky-survey"]),
            M31,
            "not among the volumes to mount",
        ),
        ("ds9", json!([]), M31, "not among the volumes to mount"),
        (
            "ds9",
            json!(["deep-fields"]),
            "skysim_m31_g.fits",
            "absolute",
        ),
        ("jupyterlab", json!(["deep-fields"]), M31, "opens no files"),
    ] {
        let (status, e) = launch_with(
            &app,
            &t,
            json!({"datalab": datalab, "volumes": volumes, "file": file}),
        )
        .await;
        assert_eq!(status, 422, "{file}: {e}");
        assert_eq!(e["code"], "invalid_launch_file", "{file}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(says), "{file}: {message}");
    }
    // A link in a volume that leads out of it is refused too.
    std::os::unix::fs::symlink(
        "/etc/passwd",
        app.dir.path().join("volumes/deep-fields/passwd.fits"),
    )
    .unwrap();
    let (status, e) = launch_with(
        &app,
        &t,
        json!({"datalab": "ds9", "volumes": ["deep-fields"], "file": "/media/data/deep-fields/passwd.fits"}),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("invalid_launch_file")),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("outside the volume"),
        "{e}"
    );
    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &t).await;
    assert_eq!(labs["items"], json!([]), "nothing was launched");

    // The volume page offers the FITS files to the datalabs that open
    // files, and a refusal from there lands back on it.
    let session = app.login("fay", PASSWORD).await;
    let page = session
        .client
        .get(app.u("/volumes/deep-fields"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "action=\"/datalabs/ds9/launch\"",
        "action=\"/datalabs/fv/launch\"",
        "data-datalab=\"ds9\" data-file=\"skysim_m31_g.fits\"",
        "Open in SAOImage DS9",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    assert!(!page.contains("/datalabs/jupyterlab/launch"), "{page}");
    let readme = page.split("<code>README.txt</code>").nth(1).unwrap();
    let readme = readme.split("</tr>").next().unwrap();
    assert!(!readme.contains("<form"), "only FITS files: {readme}");
    let r = session
        .client
        .post(app.u("/datalabs/ds9/launch"))
        .form(&[
            ("csrf", session.csrf.as_str()),
            ("volume", "deep-fields"),
            ("file", "/media/data/deep-fields/gone.fits"),
            ("back", "/volumes/deep-fields"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/volumes/deep-fields?error=") && to.contains("no+file"),
        "{to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fits_viewers_open_a_file_from_a_volume_and_name_it_in_their_windows() {
    if !desktop_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("gil", "user").await;

    // DS9 from the command line.
    let config = tempfile::tempdir().unwrap();
    let (url, token) = (app.url.clone(), t.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_insitu"))
            .args(["labs", "launch", "ds9", "--volume", "deep-fields"])
            .args(["--file", M31, "--json"])
            .env("INSITU_CONFIG_DIR", config.path())
            .env("INSITU_URL", url)
            .env("INSITU_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lab: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lab["file"], M31);
    let ds9 = lab["id"].as_str().unwrap().to_owned();
    wait_running(&app, &t, &ds9).await;
    let (client, base) = proxy_session(&app, &t, &ds9).await;
    let title = format!("SAOImage {M31}");
    wait_window(&client, &base, "ds9", &title).await;
    // DS9 says it could not load a file in a dialog: there is none (the
    // list is refreshed every 2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = wait_window(&client, &base, "ds9", &title).await;
    assert_eq!(list.len(), 1, "DS9 shows the image and no dialog: {list:?}");
    eprintln!("ds9 windows: {list:?}");
    stop(&app, &t, &ds9).await;

    // fv from the volume page's "Open in".
    let session = app.login("gil", PASSWORD).await;
    let r = session
        .client
        .post(app.u("/datalabs/fv/launch"))
        .form(&[
            ("csrf", session.csrf.as_str()),
            ("volume", "deep-fields"),
            ("file", M31),
            ("back", "/volumes/deep-fields"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    let fv = to
        .strip_prefix("/my-labs/")
        .unwrap_or_else(|| panic!("{to}"))
        .to_owned();
    wait_running(&app, &t, &fv).await;
    let (client, base) = proxy_session(&app, &t, &fv).await;
    let list = wait_window(&client, &base, "fv", "fv: Summary of skysim_m31_g.fits").await;
    eprintln!("fv windows: {list:?}");
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{fv}")), &t).await;
    assert_eq!(lab["volumes"], json!(["deep-fields"]));
    assert_eq!(lab["file"], M31);
    let page = session
        .client
        .get(app.u(&format!("/my-labs/{fv}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"lab-file\""),
        "the lab page names the file"
    );
    stop(&app, &t, &fv).await;

    // QFitsView names the file too; Aladin says in its output that it
    // loads it.
    let body = json!({"datalab": "qfitsview", "volumes": ["deep-fields"], "file": M31});
    let (status, lab) = launch_with(&app, &t, body).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    wait_running(&app, &t, &id).await;
    let (client, base) = proxy_session(&app, &t, &id).await;
    let list = wait_window(
        &client,
        &base,
        "qfitsview",
        &format!("QFitsView - buffer1 [{M31}]"),
    )
    .await;
    eprintln!("qfitsview windows: {list:?}");
    stop(&app, &t, &id).await;

    let body = json!({"datalab": "aladin", "volumes": ["deep-fields"], "file": M31});
    let (status, lab) = launch_with(&app, &t, body).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    wait_running(&app, &t, &id).await;
    let start = Instant::now();
    loop {
        let (_, logs) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}/logs")), &t).await;
        let lines = logs["lines"].as_array().unwrap();
        if lines
            .iter()
            .any(|l| l.as_str().unwrap().contains(&format!("[load {M31}]")))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Aladin loads the file: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop(&app, &t, &id).await;
}

/// Aladin, fv and QFitsView, one after the other (to keep the machine's
/// load down): each lab runs and its program shows its main window, and
/// no other (Aladin's network-failure dialog, say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aladin_fv_and_qfitsview_launch_and_show_their_windows() {
    if !desktop_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("hal", "user").await;
    for (datalab, title) in [
        ("aladin", "Aladin"),
        ("fv", "fv"),
        ("qfitsview", "QFitsView"),
    ] {
        let started = Instant::now();
        let id = launch(&app, &t, datalab).await;
        wait_running(&app, &t, &id).await;
        let (client, base) = proxy_session(&app, &t, &id).await;
        wait_window(&client, &base, datalab, title).await;
        eprintln!(
            "{datalab}: a window after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // The list is refreshed every 2 s: a dialog would be there by now.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let list = wait_window(&client, &base, datalab, title).await;
        eprintln!("{datalab}: {list:?}");
        assert!(
            list.iter().all(|(_, t)| t.starts_with(title)),
            "{datalab}: only its own windows, no dialog: {list:?}"
        );
        stop(&app, &t, &id).await;
    }
}

/// A Java desktop tool's heap follows the lab's memory, even where its
/// launcher script sets its own: Debian's `aladin` runs `java -Xmx1024m`,
/// which is all of a 1 GiB lab and more than it can hold beside the
/// desktop session, so the kernel would kill Aladin before Java could say
/// it is out of memory. Read from the running JVM itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_heaps_follow_the_labs_memory_even_where_a_launcher_script_sets_its_own() {
    if !desktop_available() || !Path::new("/usr/bin/jcmd").exists() {
        assert!(
            std::env::var("INSITU_REQUIRE_DESKTOP").as_deref() != Ok("1"),
            "INSITU_REQUIRE_DESKTOP=1 but jcmd (the JDK) is missing"
        );
        return;
    }
    let app = spawn_app().await;
    let catalogue = app.dir.path().join("catalogue");
    let aladin = std::fs::read_to_string(catalogue.join("aladin.toml")).unwrap();
    assert!(aladin.contains("memory = \"2GiB\""), "{aladin}");
    std::fs::write(
        catalogue.join("aladin-1g.toml"),
        aladin.replace("memory = \"2GiB\"", "memory = \"1GiB\""),
    )
    .unwrap();
    let admin = app.admin_token().await;
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = app.user_with_role("jay", "user").await;
    let id = launch(&app, &t, "aladin-1g").await;
    wait_running(&app, &t, &id).await;
    let java: Vec<u32> = insitu_launcher::Cgroups::detect("insitu")
        .pids(&id)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "java")
        })
        .collect();
    assert_eq!(java.len(), 1, "Aladin's JVM in the lab's group: {java:?}");
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", java[0])).unwrap();
    assert!(
        cmdline.split('\0').any(|a| a == "-Xmx1024m"),
        "the script's own heap is on the command line: {cmdline:?}"
    );
    // jcmd attaches as the JVM's own user, through its /tmp in the lab.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["jcmd", &java[0].to_string(), "VM.flags"])
        .output()
        .unwrap();
    let flags = String::from_utf8_lossy(&out.stdout);
    let heap: u64 = flags
        .split_whitespace()
        .find_map(|f| f.strip_prefix("-XX:MaxHeapSize=")?.parse().ok())
        .unwrap_or_else(|| panic!("no heap size from jcmd: {flags} {out:?}"));
    let want = ((1u64 << 30) / 100 * 70) >> 20 << 20;
    assert_eq!(
        heap, want,
        "70 % of the lab's 1 GiB, not the script's 1024 MiB"
    );
    stop(&app, &t, &id).await;
}

/// A test desktop datalab for the clipboard: it shows a small window, logs
/// every change of the X clipboard and answers "from the client N" by
/// putting "from the lab N" on the clipboard itself (with xclip).
const CLIPBOARD_LAB: &str = r#"
title = "Clipboard test"
description = "Logs and answers the X clipboard"
version = "1"
kind = "desktop"
license = "MIT"
[launch]
command = ["bash", "-c", '''
xmessage -geometry 320x60+0+0 "clipboard test" &
last=
while sleep 0.2; do
  c=$(xclip -o -selection clipboard 2>/dev/null)
  [ "$c" = "$last" ] && continue
  last=$c
  echo "clipboard: $c"
  case $c in
    "from the client "*)
      last=$(printf '%s' "$c" | sed 's/^from the client /from the lab /')
      printf '%s' "$last" | xclip -selection clipboard
      echo "answered: $last" ;;
  esac
done
''']
[resources]
memory = "256MiB"
"#;

/// A minimal VNC client (RFB 3.8, no authentication: the proxy's cookie
/// is the credential) over the lab proxy's WebSocket.
struct Vnc {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    buf: Vec<u8>,
}

impl Vnc {
    async fn connect(base: &str, cookie: &str) -> Vnc {
        let mut req = format!("{}websockify", base.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        // noVNC's page is on the lab's origin; the proxy wants that Origin.
        let origin = base.split("/labs/").next().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req.headers_mut()
            .insert("sec-websocket-protocol", "binary".parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut vnc = Vnc {
            ws,
            buf: Vec::new(),
        };
        assert_eq!(vnc.read(12).await, b"RFB 003.008\n");
        vnc.send(b"RFB 003.008\n").await;
        let n = vnc.read(1).await[0] as usize;
        let types = vnc.read(n).await;
        assert!(types.contains(&1), "security type None offered: {types:?}");
        vnc.send(&[1]).await;
        assert_eq!(vnc.read(4).await, [0, 0, 0, 0], "security result OK");
        vnc.send(&[1]).await; // ClientInit, shared
        let init = vnc.read(24).await;
        let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize;
        vnc.read(name_len).await;
        vnc
    }

    async fn send(&mut self, bytes: &[u8]) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.to_vec().into(),
            ))
            .await
            .unwrap();
    }

    async fn read(&mut self, n: usize) -> Vec<u8> {
        use futures_util::StreamExt;
        while self.buf.len() < n {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("the VNC server said nothing for 30 s")
                .expect("the WebSocket closed")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Binary(b) = msg {
                self.buf.extend_from_slice(&b);
            }
        }
        self.buf.drain(..n).collect()
    }

    /// ClientCutText: the client's clipboard, to the server.
    async fn cut_text(&mut self, text: &str) {
        let mut m = vec![6, 0, 0, 0];
        m.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
        m.extend_from_slice(text.as_bytes());
        self.send(&m).await;
    }

    /// The next ServerCutText (no screen updates come: none is asked for;
    /// bells are skipped).
    async fn server_cut_text(&mut self) -> String {
        loop {
            match self.read(1).await[0] {
                2 => continue,
                3 => {
                    let head = self.read(7).await;
                    let len = u32::from_be_bytes(head[3..7].try_into().unwrap()) as usize;
                    return String::from_utf8_lossy(&self.read(len).await).into_owned();
                }
                other => panic!("unexpected VNC message type {other}"),
            }
        }
    }
}

/// The clipboard both ways through the lab proxy: text a VNC client sends
/// (ClientCutText, as noVNC's clipboard panel does) lands on the X
/// clipboard in the lab, and text a program in the lab puts there reaches
/// the client (ServerCutText).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_goes_both_ways_between_a_vnc_client_and_the_lab() {
    if !desktop_available() || !Path::new("/usr/bin/xclip").exists() {
        assert!(
            std::env::var("INSITU_REQUIRE_DESKTOP").as_deref() != Ok("1"),
            "INSITU_REQUIRE_DESKTOP=1 but xclip is missing"
        );
        return;
    }
    let app = spawn_app().await;
    std::fs::write(
        app.dir.path().join("catalogue/cliptest.toml"),
        CLIPBOARD_LAB,
    )
    .unwrap();
    let admin = app.admin_token().await;
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let problems: Value = r.json().await.unwrap();
    assert!(
        !problems.to_string().contains("cliptest"),
        "the test datalab loads: {problems}"
    );
    let t = app.user_with_role("ivy", "user").await;
    let id = launch(&app, &t, "cliptest").await;
    wait_running(&app, &t, &id).await;
    let (_, base, cookie) = proxy_session_with_cookie(&app, &t, &id).await;
    let mut vnc = Vnc::connect(&base, &cookie).await;

    for n in 1..=2 {
        vnc.cut_text(&format!("from the client {n}")).await;
        let text = vnc.server_cut_text().await;
        assert_eq!(text, format!("from the lab {n}"));
        let (_, logs) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}/logs")), &t).await;
        let lines: Vec<&str> = logs["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(
            lines.contains(&format!("clipboard: from the client {n}").as_str()),
            "the client's text is on the lab's X clipboard: {lines:?}"
        );
    }
    stop(&app, &t, &id).await;
}
