//! A lab's life with real sandboxes: a stop wins in whatever state of the
//! launch it comes and leaves no process or control group behind; a lab
//! whose process dies is failed within seconds; the SAMP hub runs in its
//! own limits and stops with the user's last lab; a user's network goes
//! after the linger time; proxied traffic keeps a lab from idle culling; a
//! restart never hands out a GPU twice.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::labs::{launch, settle};

pub(crate) fn available() -> bool {
    let ok = std::path::Path::new("/usr/bin/bwrap").exists()
        && std::process::Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var("INSITU_REQUIRE_ISOLATION").as_deref() != Ok("1"),
        "bubblewrap and iproute2 are required"
    );
    if !ok {
        eprintln!("skipping: bubblewrap or iproute2 missing");
    }
    ok
}

fn cgroups() -> insitu_launcher::Cgroups {
    insitu_launcher::Cgroups::detect("insitu")
}

/// Whether the control group `name` (a lab's id, `samp-<user id>`) exists
/// in any hierarchy.
pub(crate) fn group_exists(name: &str) -> bool {
    cgroups().dirs(name).iter().any(|d| d.exists())
}

/// Every process of a lab: those in its control group, and any whose
/// command line names its base URL (a lab's tool is started with it).
pub(crate) fn lab_pids(lab_id: &str) -> Vec<u32> {
    let mut pids = cgroups().pids(lab_id);
    let needle = format!("/labs/{lab_id}/");
    for p in std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        let named = std::fs::read_to_string(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.contains(&needle));
        if named && !pids.contains(&p) {
            pids.push(p);
        }
    }
    pids
}

pub(crate) async fn get_lab(app: &impl Server, token: &str, id: &str) -> Value {
    let (status, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), token).await;
    assert_eq!(status, 200, "{lab}");
    lab
}

pub(crate) async fn stop(app: &impl Server, token: &str, id: &str) -> Value {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Polls the lab until `done` holds of it.
pub(crate) async fn wait_for(
    app: &impl Server,
    token: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let lab = get_lab(app, token, id).await;
        if done(&lab) {
            return lab;
        }
        assert!(start.elapsed() < within, "still {lab}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn steps(lab: &Value) -> Vec<String> {
    lab["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn id_of(lab: &Value) -> String {
    lab["id"].as_str().unwrap().to_owned()
}

/// Lets the slow test tool of lab `id` answer (see the harness).
pub(crate) fn let_answer(app: &impl Server, username: &str, id: &str) {
    std::fs::write(
        app.config()
            .data_dir
            .join(format!("workspaces/{username}/go-{id}")),
        "",
    )
    .unwrap();
}

#[tokio::test]
async fn a_stop_in_any_state_of_a_launch_wins_and_leaves_nothing_behind() {
    if !available() {
        return;
    }
    // One lab may start at a time, so a second launch waits, pending.
    let app = spawn_with(Options {
        max_starting: 1,
        ..Options::default()
    })
    .await;
    add_slowapp(&app.dir.path().join("catalogue"));
    reload_catalogue(&app).await;
    let t = app.user_with_role("stan", "user").await;
    let (status, slow) = launch(&app, &t, "slowapp", &[]).await;
    assert_eq!(status, 202, "{slow}");
    let slow = id_of(&slow);
    let waiting = wait_for(&app, &t, &slow, Duration::from_secs(30), |l| {
        l["state"] == "starting" && steps(l).contains(&"waiting_for_readiness".to_owned())
    })
    .await;
    assert_eq!(waiting["state"], "starting", "{waiting}");
    assert!(!lab_pids(&slow).is_empty() && group_exists(&slow));

    let (status, queued) = launch(&app, &t, "testapp", &[]).await;
    assert_eq!(status, 202, "{queued}");
    let queued = id_of(&queued);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let lab = get_lab(&app, &t, &queued).await;
    assert_eq!(lab["state"], "pending", "queued behind the slow lab: {lab}");
    assert_eq!(steps(&lab), ["queued"]);

    let stopped = stop(&app, &t, &queued).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(
        stopped["reason"],
        "stopped by the user while it was pending (before its tool started)"
    );
    let stopped = stop(&app, &t, &slow).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(
        stopped["reason"],
        "stopped by the user while it was starting (waiting for its tool to answer)"
    );
    for id in [&slow, &queued] {
        assert!(lab_pids(id).is_empty(), "no process of {id} is left");
        assert!(!group_exists(id), "no control group of {id} is left");
    }
    // Nothing of either launch comes back, even once the tool would answer.
    let_answer(&app, "stan", &slow);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in [&slow, &queued] {
        let lab = get_lab(&app, &t, id).await;
        assert_eq!(lab["state"], "stopped", "{lab}");
        assert!(lab_pids(id).is_empty() && !group_exists(id), "{id}");
    }

    // Stops that race the launch's steps (recording it, starting its
    // sandbox, recording the process, waiting for it): the stop wins
    // whichever step it meets.
    let mut met = Vec::new();
    let mut ids = Vec::new();
    for delay_ms in [0, 5, 20, 50, 100, 200, 400] {
        let (status, lab) = launch(&app, &t, "testapp", &[]).await;
        assert_eq!(status, 202, "{lab}");
        let id = id_of(&lab);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let stopped = stop(&app, &t, &id).await;
        assert_eq!(
            stopped["state"], "stopped",
            "after {delay_ms} ms: {stopped}"
        );
        assert!(lab_pids(&id).is_empty(), "after {delay_ms} ms: {stopped}");
        assert!(!group_exists(&id), "after {delay_ms} ms: {stopped}");
        met.push(stopped["reason"].as_str().unwrap().to_owned());
        ids.push(id);
    }
    eprintln!("stops met: {met:#?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let lab = get_lab(&app, &t, id).await;
        assert_eq!(lab["state"], "stopped", "it stays stopped: {lab}");
        assert!(lab_pids(id).is_empty() && !group_exists(id), "{lab}");
    }
}

/// Two server processes of one platform on one database: a stop accepted
/// by the one wins over a launch the other is running, queued or waiting
/// for its tool, and leaves nothing behind.
#[tokio::test]
async fn two_servers_on_one_database_agree_that_a_stop_wins() {
    if !available() {
        return;
    }
    let app = spawn_with(Options {
        max_starting: 1,
        ..Options::default()
    })
    .await;
    add_slowapp(&app.dir.path().join("catalogue"));
    reload_catalogue(&app).await;
    let twin = app.twin().await;
    let t = app.user_with_role("tara", "user").await;
    let (_, slow) = launch(&app, &t, "slowapp", &[]).await;
    let slow = id_of(&slow);
    wait_for(&app, &t, &slow, Duration::from_secs(30), |l| {
        l["state"] == "starting" && steps(l).contains(&"waiting_for_readiness".to_owned())
    })
    .await;
    let (_, queued) = launch(&app, &t, "testapp", &[]).await;
    let queued = id_of(&queued);
    assert_eq!(get_lab(&twin, &t, &queued).await["state"], "pending");

    let stopped = stop(&twin, &t, &queued).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(
        stopped["reason"],
        "stopped by the user while it was pending (before its tool started)"
    );
    let stopped = stop(&twin, &t, &slow).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    // Recorded by whichever server got there first.
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .starts_with("stopped by the user while it was starting"),
        "{stopped}"
    );
    assert!(lab_pids(&slow).is_empty() && !group_exists(&slow));
    let_answer(&app, "tara", &slow);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&slow, &queued] {
        let path = format!("/api/v1/labs/{id}");
        for url in [app.u(&path), twin.u(&path)] {
            let (_, lab) = get_json(&plain(), &url, &t).await;
            assert_eq!(lab["state"], "stopped", "{lab}");
        }
        assert!(lab_pids(id).is_empty(), "no process of {id} is left");
        assert!(!group_exists(id), "no control group of {id} is left");
    }
}

#[tokio::test]
async fn a_lab_whose_process_dies_is_failed_within_seconds() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("dora", "user").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = id_of(&lab);
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let tool: Vec<u32> = lab_pids(&id)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with("python3\0"))
        })
        .collect();
    assert_eq!(tool.len(), 1, "{tool:?}");
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &tool[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let lab = wait_for(&app, &t, &id, Duration::from_secs(10), |l| {
        l["state"] != "running"
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "noticed after {:?}",
        killed.elapsed()
    );
    assert_eq!(lab["state"], "failed", "{lab}");
    assert_eq!(
        lab["reason"], "the tool exited (exit code 137)",
        "killed by SIGKILL: {lab}"
    );
    assert!(lab_pids(&id).is_empty() && !group_exists(&id), "{lab}");
}

#[tokio::test]
async fn the_samp_hub_runs_within_its_own_limits_and_stops_with_the_last_lab() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("hugo", "user").await;
    let uid = app.user_id("hugo").await;
    let mut labs = Vec::new();
    for _ in 0..2 {
        let (_, lab) = launch(&app, &t, "testapp", &[]).await;
        let id = id_of(&lab);
        assert_eq!(settle(&app, &t, &id).await["state"], "running");
        labs.push(id);
    }
    let pid_file = app.dir.path().join(format!("data/samp/{uid}/hub.pid"));
    let hub: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let group = format!("samp-{uid}");
    let members = cgroups().pids(&group);
    assert!(
        members.contains(&hub) && members.len() >= 2,
        "the hub and its program are in a group of their own: {members:?}"
    );
    let mine = std::fs::read_to_string(format!("/proc/{hub}/cgroup")).unwrap();
    assert!(
        mine.lines()
            .filter(|l| l.contains("memory") || l.contains("pids"))
            .all(|l| l.ends_with(&format!("/insitu/{group}"))),
        "{mine}"
    );
    // The defaults of labs.samp_hub, where this host enforces them.
    for dir in cgroups().dirs(&group) {
        for (file, want) in [
            ("memory.limit_in_bytes", "268435456"),
            ("memory.max", "268435456"),
            ("pids.max", "64"),
            ("cpu.cfs_quota_us", "50000"),
        ] {
            if let Ok(v) = std::fs::read_to_string(dir.join(file)) {
                assert_eq!(v.trim(), want, "{}", dir.join(file).display());
            }
        }
    }
    let limited = cgroups()
        .dirs(&group)
        .iter()
        .any(|d| d.join("memory.limit_in_bytes").exists() || d.join("memory.max").exists());
    assert!(limited, "the hub's memory is limited");

    stop(&app, &t, &labs[0]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        std::path::Path::new(&format!("/proc/{hub}")).exists(),
        "the hub stays while the user has a lab: {}",
        std::fs::read_to_string(app.dir.path().join(format!("data/samp/{uid}/hub.log")))
            .unwrap_or_default()
    );
    stop(&app, &t, &labs[1]).await;
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{hub}")).exists() || group_exists(&group) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the hub outlived the user's last lab"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Gone, or dead and not yet reaped by whoever inherited them.
    let left: Vec<String> = members
        .iter()
        .filter_map(|m| std::fs::read_to_string(format!("/proc/{m}/stat")).ok())
        .filter(|stat| {
            !stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .collect();
    assert!(left.is_empty(), "the hub's processes are gone: {left:?}");
}

/// Another platform starting on the same machine (another test's server,
/// another deployment) takes nothing of this one's: its labs, their groups,
/// its users' SAMP hubs and networks.
#[tokio::test]
async fn another_platform_starting_on_the_machine_leaves_this_ones_alone() {
    if !available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("olaf", "user").await;
    let uid = app.user_id("olaf").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = id_of(&lab);
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let hub: u32 = std::fs::read_to_string(app.dir.path().join(format!("data/samp/{uid}/hub.pid")))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pids = lab_pids(&id);
    let mut other = spawn_app().await;
    other.restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        std::path::Path::new(&format!("/proc/{hub}")).exists(),
        "the hub runs on"
    );
    assert!(group_exists(&format!("samp-{uid}")), "with its group");
    assert_eq!(lab_pids(&id), pids, "the lab runs on");
    assert!(group_exists(&id));
    assert!(
        std::path::Path::new("/run/netns")
            .join(network_name(&uid))
            .exists()
    );
    assert_eq!(get_lab(&app, &t, &id).await["state"], "running");
    drop(other);
    stop(&app, &t, &id).await;
}

#[tokio::test]
async fn a_users_network_is_deleted_after_the_linger_time_after_the_last_lab() {
    if !available() {
        return;
    }
    let app = spawn_with(Options {
        network_linger: "2s",
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("lina", "user").await;
    let ns = std::path::PathBuf::from("/run/netns").join(network_name(&app.user_id("lina").await));
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&ns).ok().map(|m| m.ino())
    };
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let first = id_of(&lab);
    assert_eq!(settle(&app, &t, &first).await["state"], "running");
    let made = inode().expect("the user's namespace");
    stop(&app, &t, &first).await;
    // A relaunch within the linger time reuses it.
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let second = id_of(&lab);
    assert_eq!(settle(&app, &t, &second).await["state"], "running");
    assert_eq!(inode(), Some(made), "the same namespace");
    stop(&app, &t, &second).await;
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(inode().is_some(), "kept for the linger time");
    while inode().is_some() {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the namespace outlived the linger time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stopped.elapsed() >= Duration::from_millis(1900));
}

#[tokio::test]
async fn proxied_traffic_keeps_a_lab_from_idle_culling() {
    if !available() {
        return;
    }
    let app = spawn_with(Options {
        lab_idle_timeout: "3s",
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("ida", "user").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = id_of(&lab);
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let (client, base) = open_lab(&app, &t, &id).await;
    let busy = Instant::now();
    while busy.elapsed() < Duration::from_secs(7) {
        let r = client.get(&base).send().await.unwrap();
        assert_eq!(r.status(), 200, "still served");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        get_lab(&app, &t, &id).await["state"],
        "running",
        "used for longer than the idle timeout, and never idle that long"
    );
    let quiet = Instant::now();
    let lab = wait_for(&app, &t, &id, Duration::from_secs(15), |l| {
        l["state"] == "stopped"
    })
    .await;
    // The proxy notes traffic at most once a second, and the monitor
    // looks every second.
    assert!(quiet.elapsed() >= Duration::from_millis(1000), "{lab}");
    assert!(
        lab["reason"].as_str().unwrap().contains("idle culling"),
        "{lab}"
    );
}

/// A restart reconnects a lab's idle clock where it was, instead of
/// starting it afresh.
#[tokio::test]
async fn the_idle_clock_resumes_where_it_was_after_a_restart() {
    if !available() {
        return;
    }
    let mut app = spawn_with(Options {
        lab_idle_timeout: "6s",
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("ivo", "user").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = id_of(&lab);
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let idle_since = Instant::now();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    app.restart().await;
    let restarted = Instant::now();
    assert_eq!(get_lab(&app, &t, &id).await["state"], "running");
    let lab = wait_for(&app, &t, &id, Duration::from_secs(15), |l| {
        !["running", "stopping"].contains(&l["state"].as_str().unwrap())
    })
    .await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    assert!(
        lab["reason"].as_str().unwrap().contains("idle culling"),
        "{lab}"
    );
    assert!(
        restarted.elapsed() < Duration::from_millis(5000),
        "culled {:?} after the restart: the clock went on, not afresh",
        restarted.elapsed()
    );
    assert!(idle_since.elapsed() >= Duration::from_millis(5500));
}

#[tokio::test]
async fn a_restart_cannot_assign_a_gpu_twice() {
    if !available() {
        return;
    }
    let mut app = spawn_with(Options {
        gpus: vec!["0".into()],
        ..Options::default()
    })
    .await;
    let a = app.user_with_role("gus", "user").await;
    let b = app.user_with_role("gwen", "user").await;
    let (_, lab) = launch(&app, &a, "gpuapp", &[]).await;
    let held = id_of(&lab);
    assert_eq!(settle(&app, &a, &held).await["state"], "running");
    app.restart().await;
    assert_eq!(get_lab(&app, &a, &held).await["state"], "running");
    let (status, body) = launch(&app, &b, "gpuapp", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("gpu_unavailable")),
        "the only GPU is the re-adopted lab's: {body}"
    );
    stop(&app, &a, &held).await;
    let (status, lab) = launch(&app, &b, "gpuapp", &[]).await;
    assert_eq!(status, 202, "freed, it is assigned again: {lab}");
    settle(&app, &b, &id_of(&lab)).await;
    stop(&app, &b, &id_of(&lab)).await;
}

/// A client holding a lab cookie from a fresh ticket, and the lab's base
/// URL on the proxy.
pub(crate) async fn open_lab(
    app: &impl Server,
    token: &str,
    id: &str,
) -> (reqwest::Client, String) {
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
    let origin = ticket.split("/labs/").next().unwrap().to_owned();
    (client, format!("{origin}/labs/{id}/"))
}
