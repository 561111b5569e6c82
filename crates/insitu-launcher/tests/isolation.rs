//! Resource limits (control groups) and per-user network namespaces, with
//! real bubblewrap sandboxes.
//!
//! These need root, writable control groups and iproute2. The test command
//! sets `INSITU_REQUIRE_ISOLATION=1` so that a machine without them fails
//! instead of skipping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use insitu_launcher::limits::Controller;
use insitu_launcher::{Cgroups, ExitStatus, Limits, NetNs, Placement, SandboxProcess, SandboxSpec};

fn required() -> bool {
    std::env::var("INSITU_REQUIRE_ISOLATION").as_deref() == Ok("1")
}

fn bwrap() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/bwrap");
    if p.exists() {
        return Some(p);
    }
    assert!(!required(), "bubblewrap is required but missing");
    eprintln!("skipping: bubblewrap is not installed");
    None
}

fn cgroups() -> Option<Cgroups> {
    let c = Cgroups::detect("insitu-test");
    if c.enforces(Controller::Memory) && c.enforces(Controller::Cpu) && c.enforces(Controller::Pids)
    {
        return Some(c);
    }
    assert!(!required(), "control groups are required: {}", c.describe());
    eprintln!("skipping: {}", c.describe());
    None
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn netns() -> Option<NetNs> {
    match NetNs::ensure(&unique("insitu-t")) {
        Ok(ns) => Some(ns),
        Err(e) => {
            assert!(!required(), "network namespaces are required: {e}");
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn spec(ws: &Path, script: &str) -> SandboxSpec {
    SandboxSpec {
        command: vec!["sh".into(), "-c".into(), script.into()],
        workspace: ws.to_owned(),
        share_network: true,
        ..SandboxSpec::default()
    }
}

/// Starts `script` with the workspace `ws`, its output in `log`.
fn start(
    bwrap: &Path,
    ws: &Path,
    script: &str,
    log: &Path,
    placement: Placement<'_>,
) -> SandboxProcess {
    SandboxProcess::start_in(bwrap, &spec(ws, script), log, placement).unwrap()
}

fn limited<'a>(cg: &'a Cgroups, name: &'a str, limits: Limits) -> Placement<'a> {
    Placement {
        cgroup: Some((cg, name, limits)),
        netns: None,
    }
}

fn in_network(ns: &NetNs) -> Placement<'_> {
    Placement {
        cgroup: None,
        netns: Some(ns),
    }
}

async fn wait_end(p: &mut SandboxProcess, secs: u64) -> Option<i32> {
    for _ in 0..secs * 40 {
        if let ExitStatus::Exited(code) = p.status() {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("sandbox did not end");
}

#[tokio::test]
async fn memory_beyond_the_limit_kills_the_tool_and_says_so() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem");
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        ..Limits::default()
    };
    // 256 MiB touched page by page: only possible without the limit.
    let script = "python3 -c 'b = bytearray(256 << 20); print(\"ALLOCATED\", len(b))'; \
                  echo exit=$?";
    let log = dir.path().join("lab.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        script,
        &log,
        limited(&cg, &name, limits),
    );
    let code = wait_end(&mut p, 20).await;
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("ALLOCATED"),
        "allocation passed the limit: {out}"
    );
    assert!(out.contains("exit=137"), "python was not killed: {out}");
    assert!(p.out_of_memory(), "the kill is reported as out of memory");
    p.stop(Duration::ZERO).await;
    assert!(cg.dirs(&name).iter().all(|d| !d.exists()), "group removed");

    // The same tool with room enough.
    let name = unique("mem");
    let roomy = Limits {
        memory_bytes: Some(512 << 20),
        ..Limits::default()
    };
    let log = dir.path().join("roomy.log");
    let mut p = start(&bwrap, dir.path(), script, &log, limited(&cg, &name, roomy));
    wait_end(&mut p, 20).await;
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(out.contains("ALLOCATED 268435456"), "{out}");
    assert!(!p.out_of_memory());
    p.stop(Duration::ZERO).await;
}

#[tokio::test]
async fn cpu_quota_and_process_limit_hold() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cpu");
    let limits = Limits {
        cpus: Some(0.2),
        max_pids: Some(20),
        ..Limits::default()
    };
    // Spin for 1.5 s of wall time and report the CPU time got; then try to
    // start 40 sleepers at once.
    let script = "python3 -c '\nimport time\nt = time.time()\nwhile time.time() - t < 1.5: pass\n\
                  print(\"CPU\", time.process_time())'; \
                  n=0; for i in $(seq 40); do (sleep 5 &) 2>/dev/null && n=$((n+1)); done; \
                  echo started=$n";
    let log = dir.path().join("lab.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        script,
        &log,
        limited(&cg, &name, limits),
    );
    // Every process of the sandbox is in the group while it runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let members = cg.pids(&name);
    assert!(
        members.contains(&p.pid) && members.len() >= 3,
        "bwrap, the sandbox init and the tool are in the group: {members:?}"
    );
    wait_end(&mut p, 30).await;
    let out = std::fs::read_to_string(&log).unwrap();
    let cpu: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("CPU "))
        .unwrap_or_else(|| panic!("no CPU line: {out}"))
        .trim()
        .parse()
        .unwrap();
    // 0.2 cores for 1.5 s is 0.3 s of CPU; without the quota it is ~1.5 s.
    assert!(
        cpu < 0.6,
        "the quota of 0.2 cores was exceeded: {cpu} s of CPU in 1.5 s"
    );
    let started: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("started="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(started < 40, "the process limit of 20 let 40 start: {out}");
    p.stop(Duration::ZERO).await;
    assert!(cg.pids(&name).is_empty());
}

#[tokio::test]
async fn private_variables_arrive_once_the_sandbox_is_in_its_group() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("private");
    let mut s = spec(
        dir.path(),
        "echo \"secret=$LAB_SECRET\"; cat /proc/self/cgroup; sleep 30",
    );
    s.private_env.set("LAB_SECRET", "in-the-group-only");
    let log = dir.path().join("lab.log");
    let mut p =
        SandboxProcess::start_in(&bwrap, &s, &log, limited(&cg, &name, Limits::default())).unwrap();
    for _ in 0..200 {
        if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("secret=")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(out.contains("secret=in-the-group-only"), "{out}");
    let members = cg.pids(&name);
    assert!(
        members.contains(&p.pid) && members.len() >= 3,
        "bwrap, the sandbox init and the tool are in the group: {members:?}"
    );
    p.stop(Duration::ZERO).await;
}

#[tokio::test]
async fn labs_of_one_user_share_loopback_and_no_one_else_reaches_it() {
    let (Some(bwrap), Some(alice)) = (bwrap(), netns()) else {
        return;
    };
    let Some(bob) = netns() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A service on the host's loopback that labs must not reach.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let port = host_port; // the same port number inside the namespace
    let mut srv = start(
        &bwrap,
        dir.path(),
        &format!("exec python3 -m http.server {port} --bind 127.0.0.1 --directory /etc"),
        &dir.path().join("srv.log"),
        in_network(&alice),
    );
    // The platform reaches the lab inside the namespace.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut reached = false;
    for _ in 0..100 {
        if alice.connect(addr, Duration::from_secs(1)).await.is_ok() {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reached, "the platform connects to the lab in its namespace");
    let probe = format!(
        "python3 -c '\nimport urllib.request\ntry:\n    \
         urllib.request.urlopen(\"http://127.0.0.1:{port}/hostname\", timeout=2); print(\"REACHED\")\n\
         except Exception as e: print(\"REFUSED\", e)'"
    );
    let run = |ns: &NetNs, tag: &str| {
        start(
            &bwrap,
            dir.path(),
            &probe,
            &dir.path().join(format!("{tag}.log")),
            in_network(ns),
        )
    };
    // Another lab of the same user reaches it: the namespace's own server
    // answers, not the host's listener (which would never answer HTTP).
    let mut same = run(&alice, "same");
    wait_end(&mut same, 20).await;
    let out = std::fs::read_to_string(dir.path().join("same.log")).unwrap();
    assert!(out.contains("REACHED"), "{out}");
    // Another user's lab does not.
    let mut other = run(&bob, "other");
    wait_end(&mut other, 20).await;
    let out = std::fs::read_to_string(dir.path().join("other.log")).unwrap();
    assert!(out.contains("REFUSED"), "{out}");
    drop(host);
    srv.stop(Duration::from_secs(2)).await;
    drop((alice, bob));
    for ns in std::fs::read_dir(insitu_launcher::netns::NETNS_DIR)
        .unwrap()
        .flatten()
    {
        let name = ns.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("insitu-t-{}-", std::process::id())) {
            NetNs::delete(&name).unwrap();
        }
    }
}
