//! Restarts of the real binary that users must not notice: `insitu serve`
//! as a process of its own, with JupyterLab and a desktop lab running and
//! a WebSocket open, ended by SIGTERM (an operator's restart) and by
//! SIGKILL (a crash), then started again, on SQLite and on PostgreSQL. The
//! labs' processes are the same ones before and after (pids and start
//! times), they answer through the proxy after a new ticket, a notebook's
//! kernel keeps its variables, the WebSocket that dropped with the old
//! process connects again; launches caught half-way by the crash end
//! running or failed, never stuck; and after the labs stop nothing of them
//! is left on the machine.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::harness::*;
use crate::labs::{launch, settle};
use crate::lifecycle::{
    available, get_lab, group_exists, id_of, lab_pids, let_answer, steps, stop, wait_for,
};

/// A desktop datalab as light as one can be: the desktop session with
/// xmessage as its program.
const DESKTOP_LAB: &str = r#"
title = "Desktop test"
description = "A desktop session showing one small window"
version = "1"
kind = "desktop"
license = "MIT"
[launch]
command = ["xmessage", "-geometry", "320x60+0+0", "a desktop lab"]
[resources]
memory = "256MiB"
"#;

fn scenario_available() -> bool {
    let ok = [
        "/usr/bin/Xvnc",
        "/usr/bin/websockify",
        "/usr/share/novnc/vnc.html",
        "/usr/bin/xmessage",
    ]
    .iter()
    .all(|p| std::path::Path::new(p).exists())
        && repo_root().join(".venv/bin/jupyter-lab").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_DESKTOP").as_deref() != Ok("1"),
            "the desktop packages or JupyterLab are missing"
        );
        eprintln!("skipping: the desktop packages or JupyterLab (.venv) are missing");
    }
    available() && ok
}

/// The processes of a lab: pid and start time (clock ticks since boot) of
/// each in its control group, sorted.
fn identities(lab_id: &str) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = insitu_launcher::Cgroups::detect("insitu")
        .pids(lab_id)
        .into_iter()
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let after = stat.rsplit_once(") ")?.1;
            let start = after.split_whitespace().nth(19)?.parse().ok()?;
            Some((p, start))
        })
        .collect();
    v.sort_unstable();
    v
}

/// The lab's long-lived processes: those seen in two looks 2.5 s apart (a
/// desktop session runs short commands every two seconds).
async fn lasting(lab_id: &str) -> Vec<(u32, u64)> {
    let first = identities(lab_id);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = identities(lab_id);
    first.into_iter().filter(|p| second.contains(p)).collect()
}

/// A lab opened on the proxy: a client holding its lab cookie.
struct Opened {
    client: reqwest::Client,
    /// `http://proxy/labs/<id>/`
    base: String,
    cookie: String,
}

impl Opened {
    fn origin(&self) -> &str {
        self.base.split("/labs/").next().unwrap()
    }

    /// A WebSocket to `path` under the lab, from a page of the lab's origin.
    async fn websocket(
        &self,
        path: &str,
        protocol: Option<&str>,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let url = format!("{}{path}", self.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        let headers = req.headers_mut();
        headers.insert("cookie", self.cookie.parse().unwrap());
        headers.insert("origin", self.origin().parse().unwrap());
        if let Some(p) = protocol {
            headers.insert("sec-websocket-protocol", p.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }

    /// JupyterLab's XSRF token, from the cookie its page sets.
    async fn xsrf(&self) -> String {
        let r = self
            .client
            .get(format!("{}lab", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "JupyterLab's page through the proxy");
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| Some(c.strip_prefix("_xsrf=")?.split(';').next()?.to_owned()))
            .unwrap_or_default()
    }
}

/// Opens a lab with a fresh ticket from the platform (the proxy session is
/// new). The cookie a browser held before the restart working on is the
/// proxy's session table's promise: see `the_old_cookie_still_opens`.
async fn open_after_restart(server: &ServerProcess, token: &str, id: &str) -> Opened {
    let r = plain()
        .post(server.u(&format!("/api/v1/labs/{id}/open")))
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
    Opened {
        client,
        base: format!("{origin}/labs/{id}/"),
        cookie,
    }
}

/// The lab cookie a browser held before a restart opens the lab after it
/// (the proxy keeps its sessions in the platform's store).
async fn the_old_cookie_still_opens(held: &Opened, how: &str) {
    let r = held
        .client
        .get(format!("{}api/status", held.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the old cookie after SIG{how}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs `code` in kernel `kernel` over its channels WebSocket; returns what
/// it printed.
async fn execute(ws: &mut Socket, code: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let msg_id = format!("m-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let request = json!({
        "header": {"msg_id": msg_id, "username": "test", "session": "restart", "msg_type": "execute_request",
                   "version": "5.3", "date": "2026-01-01T00:00:00Z"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": false, "user_expressions": {},
                    "allow_stdin": false, "stop_on_error": true}
    });
    ws.send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    let mut out = String::new();
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
            "error" => panic!("the kernel failed: {m}"),
            "status" if m["content"]["execution_state"] == "idle" => break,
            _ => {}
        }
    }
    out
}

/// Waits for the VNC server's greeting on a desktop lab's WebSocket.
async fn vnc_greeting(ws: &mut Socket) -> Vec<u8> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the VNC server said nothing for 30 s")
            .expect("the WebSocket closed")
            .unwrap();
        if let Message::Binary(b) = msg {
            return b.to_vec();
        }
    }
}

/// Whether a WebSocket was closed under it (its server went away).
async fn dropped(ws: &mut Socket) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
            Err(_) => return false,
        }
    }
    false
}

async fn restart_unnoticed(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        dir.path(),
        &Options {
            db,
            // One lab starts at a time, so a launch can be caught queued.
            max_starting: 1,
            network_linger: "2s",
            ..Options::default()
        },
    )
    .await;
    config.labs.max_per_user = 4;
    std::fs::write(config.catalogue_dir.join("desktoptest.toml"), DESKTOP_LAB).unwrap();
    add_slowapp(&config.catalogue_dir);
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let t = server.user_with_role("rhea", "user").await;
    let mut labs = Vec::new();
    for datalab in ["jupyterlab", "desktoptest"] {
        let (status, lab) = launch(&server, &t, datalab, &[]).await;
        assert_eq!(status, 202, "{lab}");
        let id = id_of(&lab);
        assert_eq!(
            settle(&server, &t, &id).await["state"],
            "running",
            "{datalab}"
        );
        labs.push(id);
    }
    let (jupyter, desktop) = (labs[0].clone(), labs[1].clone());
    // A notebook's kernel with a variable in it, over a WebSocket that
    // stays open.
    let lab = open_after_restart(&server, &t, &jupyter).await;
    // The cookie this browser holds, tried again after each restart.
    let held = Opened {
        client: lab.client.clone(),
        base: lab.base.clone(),
        cookie: lab.cookie.clone(),
    };
    let xsrf = lab.xsrf().await;
    let r = lab
        .client
        .post(format!("{}api/kernels", lab.base))
        .header("X-XSRFToken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let kernel = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let channels = format!("api/kernels/{kernel}/channels");
    let mut ws = lab.websocket(&channels, None).await;
    assert_eq!(execute(&mut ws, "x = 41\nprint(x)").await.trim(), "41");
    // The labs' processes, the kernel's included.
    let mut before: Vec<Vec<(u32, u64)>> = Vec::new();
    for id in &labs {
        before.push(lasting(id).await);
    }
    for (id, procs) in labs.iter().zip(&before) {
        assert!(procs.len() >= 2, "{id}: {procs:?}");
    }

    for how in ["TERM", "KILL"] {
        if how == "KILL" {
            // Launches caught half-way by the crash: one waiting for its
            // tool to answer, one queued behind it.
            let s = server.user_with_role("sol", "user").await;
            let (_, slow) = launch(&server, &s, "slowapp", &[]).await;
            let slow = id_of(&slow);
            wait_for(&server, &s, &slow, Duration::from_secs(30), |l| {
                l["state"] == "starting" && steps(l).contains(&"waiting_for_readiness".to_owned())
            })
            .await;
            let (_, queued) = launch(&server, &s, "testapp", &[]).await;
            let queued = id_of(&queued);
            assert_eq!(get_lab(&server, &s, &queued).await["state"], "pending");
            server.end(how);
            assert!(dropped(&mut ws).await, "the WebSocket went with the server");
            server.start_again().await;
            let failed = wait_for(&server, &s, &queued, Duration::from_secs(10), |l| {
                l["state"] != "pending"
            })
            .await;
            assert_eq!(failed["state"], "failed", "{failed}");
            assert_eq!(
                failed["reason"],
                "the platform restarted before the lab's tool started; launch it again"
            );
            let waiting = get_lab(&server, &s, &slow).await;
            assert_eq!(
                waiting["state"], "starting",
                "still waiting for its tool: {waiting}"
            );
            let_answer(&server, "sol", &slow);
            let running = wait_for(&server, &s, &slow, Duration::from_secs(30), |l| {
                l["state"] != "starting"
            })
            .await;
            assert_eq!(running["state"], "running", "{running}");
            let stopped = stop(&server, &s, &slow).await;
            assert_eq!(stopped["state"], "stopped");
            assert!(lab_pids(&slow).is_empty() && !group_exists(&slow));
            assert!(lab_pids(&queued).is_empty() && !group_exists(&queued));
        } else {
            server.end(how);
            assert!(dropped(&mut ws).await, "the WebSocket went with the server");
            server.start_again().await;
        }
        for (id, procs) in labs.iter().zip(&before) {
            let lab = get_lab(&server, &t, id).await;
            assert_eq!(lab["state"], "running", "after SIG{how}: {lab}");
            // Every one of them still runs (a VNC connection may have added
            // a process of its own since).
            let now = identities(id);
            let gone: Vec<_> = procs.iter().filter(|p| !now.contains(p)).collect();
            assert!(gone.is_empty(), "{id} lost {gone:?} to SIG{how}: {now:?}");
        }
        the_old_cookie_still_opens(&held, how).await;
        // Through the proxy again, with a new ticket.
        let lab = open_after_restart(&server, &t, &jupyter).await;
        let r = lab
            .client
            .get(format!("{}api/kernels/{kernel}", lab.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the kernel is still there");
        ws = lab.websocket(&channels, None).await;
        assert_eq!(
            execute(&mut ws, "x += 1\nprint(x)").await.trim(),
            if how == "TERM" { "42" } else { "43" },
            "the kernel kept its variables across SIG{how}"
        );
        let desk = open_after_restart(&server, &t, &desktop).await;
        let windows = desk
            .client
            .get(format!("{}insitu-windows.txt", desk.base))
            .send()
            .await
            .unwrap();
        assert_eq!(windows.status(), 200);
        let list = windows.text().await.unwrap();
        assert!(list.contains("xmessage"), "the same X session: {list}");
        let mut vnc = desk.websocket("websockify", Some("binary")).await;
        assert_eq!(vnc_greeting(&mut vnc).await, b"RFB 003.008\n");
    }
    drop(ws);

    // Stopped, nothing of the labs is left: processes, control groups, the
    // SAMP hub, and the user's network after the linger time.
    let uid = server.user_id("rhea").await;
    for id in &labs {
        let stopped = stop(&server, &t, id).await;
        assert_eq!(stopped["state"], "stopped", "{stopped}");
        assert!(lab_pids(id).is_empty(), "{id}: no process left");
        assert!(!group_exists(id), "{id}: no control group left");
    }
    let ns = std::path::Path::new("/run/netns").join(network_name(&uid));
    let start = Instant::now();
    while ns.exists() || group_exists(&format!("samp-{uid}")) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the user's network or SAMP hub outlived their labs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_of_the_server_process_go_unnoticed_on_sqlite() {
    if !scenario_available() {
        return;
    }
    restart_unnoticed(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_of_the_server_process_go_unnoticed_on_postgresql() {
    if !scenario_available() || !backends().contains(&Db::Postgres) {
        return;
    }
    restart_unnoticed(Db::Postgres).await;
}
