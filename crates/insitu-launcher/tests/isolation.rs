//! Resource limits (control groups) and per-user network namespaces, with
//! real bubblewrap sandboxes.
//!
//! These need root, writable control groups and iproute2. The test command
//! sets `INSITU_REQUIRE_ISOLATION=1` so that a machine without them fails
//! instead of skipping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// A shell line that makes `hog`, python under a name of its own (the
/// kernel names a process after the file it ran), in the workspace.
const HOG: &str = "ln -sf \"$(command -v python3)\" /home/user/hog";

/// 256 MiB touched page by page: only possible without a 64 MiB limit.
const ALLOCATE: &str = "/home/user/hog -c 'b = bytearray(256 << 20); print(\"ALLOCATED\", len(b))'";

fn mebibytes(n: u64) -> Limits {
    Limits {
        memory_bytes: Some(n << 20),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_childs_memory_kill_is_reported_apart_from_the_tools_own_exit() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem");
    let script = format!("{HOG}; {ALLOCATE}; echo exit=$?; exit 3");
    let log = dir.path().join("lab.log");
    let before = SystemTime::now();
    let mut p = start(
        &bwrap,
        dir.path(),
        &script,
        &log,
        limited(&cg, &name, mebibytes(64)),
    );
    let code = wait_end(&mut p, 20).await;
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        !out.contains("ALLOCATED"),
        "allocation passed the limit: {out}"
    );
    assert!(out.contains("exit=137"), "the child was not killed: {out}");
    let end = p.end().unwrap();
    assert_eq!(
        (end.code, end.killed_for_memory),
        (Some(3), false),
        "the tool's own exit is its end, not the child's kill"
    );
    assert!(end.at.is_some_and(|t| t + Duration::from_secs(2) >= before));
    let kills = p.memory_kills();
    assert_eq!(kills.len(), 1, "{kills:?}");
    let kill = &kills[0];
    assert_eq!(kill.command.as_deref(), Some("hog"), "{kills:?}");
    assert!(kill.pid.is_some() && !kill.tool, "{kills:?}");
    assert!(kill.at >= before - Duration::from_secs(1), "{kills:?}");
    assert!(p.memory_kills().is_empty(), "each kill is reported once");
    assert_eq!(p.memory_limit(), Some(64 << 20), "the group's limit");
    p.stop(Duration::ZERO).await;
    assert_eq!(p.memory_limit(), None, "no group, no limit");
    assert!(cg.dirs(&name).iter().all(|d| !d.exists()), "group removed");

    // The same tool with room enough.
    let name = unique("mem");
    let log = dir.path().join("roomy.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        &script,
        &log,
        limited(&cg, &name, mebibytes(512)),
    );
    wait_end(&mut p, 20).await;
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(out.contains("ALLOCATED 268435456"), "{out}");
    assert!(p.memory_kills().is_empty());
    assert!(!p.end().unwrap().killed_for_memory);
    p.stop(Duration::ZERO).await;
}

#[tokio::test]
async fn a_memory_kill_is_reported_while_the_tool_runs_on() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem");
    let script = format!("{HOG}; {ALLOCATE}; echo survived; exec sleep 300");
    let log = dir.path().join("lab.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        &script,
        &log,
        limited(&cg, &name, mebibytes(64)),
    );
    let mut kills = Vec::new();
    for _ in 0..400 {
        kills = p.memory_kills();
        if !kills.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0].command.as_deref(), Some("hog"));
    assert!(!kills[0].tool);
    assert_eq!(p.status(), ExitStatus::Running, "the lab keeps running");
    assert!(p.end().is_none());
    p.stop(Duration::from_secs(1)).await;
    assert!(cg.dirs(&name).iter().all(|d| !d.exists()), "group removed");
}

#[tokio::test]
async fn a_tool_killed_for_memory_ends_so() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique("mem");
    let script = format!("{HOG}; exec {ALLOCATE}");
    let log = dir.path().join("lab.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        &script,
        &log,
        limited(&cg, &name, mebibytes(64)),
    );
    wait_end(&mut p, 20).await;
    let end = p.end().unwrap();
    assert_eq!((end.code, end.killed_for_memory), (Some(137), true));
    let kills = p.memory_kills();
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert!(kills[0].tool, "the kill names the tool itself: {kills:?}");
    p.stop(Duration::ZERO).await;
}

#[tokio::test]
async fn a_sandbox_sees_its_own_control_group_and_no_other() {
    let (Some(bwrap), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other = unique("neighbour");
    let mut neighbour = start(
        &bwrap,
        dir.path(),
        "exec sleep 300",
        &dir.path().join("other.log"),
        limited(&cg, &other, mebibytes(100)),
    );
    let name = unique("own");
    let script = "ls -R /sys/fs/cgroup; echo GROUPS; cat /proc/self/cgroup; echo LIMIT; \
                  cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes 2>/dev/null || cat memory.max; \
                  echo x > memory/memory.limit_in_bytes || echo LIMIT_READ_ONLY";
    let log = dir.path().join("lab.log");
    let mut p = start(
        &bwrap,
        dir.path(),
        script,
        &log,
        limited(&cg, &name, mebibytes(200)),
    );
    wait_end(&mut p, 20).await;
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        !out.contains(&other) && !out.contains(&name) && !out.contains("insitu-test"),
        "another sandbox's group, or its own name, shows: {out}"
    );
    let (listing, rest) = out.split_once("GROUPS\n").unwrap();
    let (groups, limit) = rest.split_once("LIMIT\n").unwrap();
    assert!(
        listing.contains("memory.limit_in_bytes") || listing.contains("memory.max"),
        "{out}"
    );
    assert!(!groups.is_empty());
    for line in groups.lines() {
        assert!(line.ends_with(":/"), "rooted at its own group: {out}");
    }
    assert!(
        limit.starts_with(&format!("{}\n", 200u64 << 20)),
        "its own limit: {out}"
    );
    assert!(out.contains("LIMIT_READ_ONLY"), "{out}");
    p.stop(Duration::ZERO).await;
    neighbour.stop(Duration::ZERO).await;
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

/// The process that starts a sandbox and then goes away: this test binary
/// run again with `INSITU_TEST_STARTER` = "DIR GROUP NETNS|- exit|hang" and
/// the tool's script in `INSITU_TEST_SCRIPT`. It writes the sandbox's
/// "PID START" to DIR/started, then ends (exit) or waits to be killed.
#[test]
#[ignore = "a child process of the tests of sandboxes outliving their starter"]
fn starter() {
    let Ok(task) = std::env::var("INSITU_TEST_STARTER") else {
        return;
    };
    let task: Vec<&str> = task.split(' ').collect();
    let [dir, group, netns, how] = task[..] else {
        panic!("bad INSITU_TEST_STARTER: {task:?}");
    };
    let dir = Path::new(dir);
    let script = std::env::var("INSITU_TEST_SCRIPT").unwrap();
    let cg = Cgroups::detect("insitu-test");
    let ns = (netns != "-").then(|| NetNs::ensure(netns).unwrap());
    let mut s = spec(dir, &script);
    // With the platform as bubblewrap's parent, this flag ended the
    // sandbox with the thread that started it.
    s.die_with_parent = true;
    let placement = Placement {
        cgroup: Some((&cg, group, mebibytes(256))),
        netns: ns.as_ref(),
    };
    let p = SandboxProcess::start_in(
        Path::new("/usr/bin/bwrap"),
        &s,
        &dir.join("lab.log"),
        placement,
    )
    .unwrap();
    std::fs::write(dir.join("started"), format!("{} {}", p.pid, p.start_ticks)).unwrap();
    if how == "hang" {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// A tool that ticks until DIR/finish appears, then exits 7.
const TICKER: &str = "while [ ! -e /home/user/finish ]; do date +%s%N > /home/user/ticks; \
                      sleep 0.05; done; exit 7";

/// Starts `TICKER` from a child process that then exits or is killed, and
/// returns the sandbox's pid and start.
async fn start_from_a_child(
    dir: &Path,
    group: &str,
    netns: Option<&NetNs>,
    kill: bool,
) -> (u32, u64) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "starter", "--ignored", "--nocapture"])
        .env(
            "INSITU_TEST_STARTER",
            format!(
                "{} {group} {} {}",
                dir.display(),
                netns.map_or("-", NetNs::name),
                if kill { "hang" } else { "exit" }
            ),
        )
        .env("INSITU_TEST_SCRIPT", TICKER)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = dir.join("started");
    for _ in 0..600 {
        if started.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&started).expect("the child started a sandbox");
    if kill {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.success(), !kill, "{status:?}");
    let (pid, start) = text.split_once(' ').unwrap();
    // Time enough for a parent-death signal to have done its work.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (pid.parse().unwrap(), start.parse().unwrap())
}

/// Whether the file the ticker writes is still being rewritten.
async fn ticking(dir: &Path) -> bool {
    let before = std::fs::read_to_string(dir.join("ticks")).unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::read_to_string(dir.join("ticks")).unwrap_or_default() != before
}

async fn outlives_its_starter(netns: Option<&NetNs>, kill: bool) {
    let (Some(_), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let group = unique("outlive");
    let (pid, start) = start_from_a_child(dir.path(), &group, netns, kill).await;
    let log = dir.path().join("lab.log");
    let mut p = SandboxProcess::adopt_in(pid, start, &log, Some((&cg, &group)))
        .expect("the sandbox outlived the process that started it");
    assert_eq!(p.status(), ExitStatus::Running);
    // Found from its status file alone, as for a launch whose pid its
    // caller had not recorded yet.
    let recorded = SandboxProcess::adopt_recorded(&log, Some((&cg, &group)))
        .expect("the sandbox, found from its status file");
    assert_eq!((recorded.pid, recorded.start_ticks), (pid, start));
    assert!(
        SandboxProcess::adopt_recorded(&dir.path().join("none.log"), None).is_none(),
        "no status file, nothing to adopt"
    );
    assert!(ticking(dir.path()).await, "the tool still runs");
    let members = cg.pids(&group);
    assert!(members.contains(&pid) && members.len() >= 3, "{members:?}");
    if let Some(ns) = netns {
        use std::os::unix::fs::MetadataExt;
        let wanted = std::fs::metadata(ns.path()).unwrap().ino();
        for m in &members {
            let theirs = std::fs::metadata(format!("/proc/{m}/ns/net"))
                .unwrap()
                .ino();
            assert_eq!(theirs, wanted, "process {m} is in the user's namespace");
        }
    }
    p.stop(Duration::from_secs(2)).await;
    assert_ne!(p.status(), ExitStatus::Running);
    assert!(!ticking(dir.path()).await, "the tool stopped");
    for _ in 0..100 {
        if members
            .iter()
            .all(|m| !Path::new(&format!("/proc/{m}")).exists())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: Vec<&u32> = members
        .iter()
        .filter(|m| Path::new(&format!("/proc/{m}")).exists())
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(cg.dirs(&group).iter().all(|d| !d.exists()), "group removed");
}

#[tokio::test]
async fn a_sandbox_outlives_the_process_that_started_it() {
    outlives_its_starter(None, false).await;
    outlives_its_starter(None, true).await;
}

#[tokio::test]
async fn a_sandbox_in_a_network_namespace_outlives_the_process_that_started_it() {
    let Some(ns) = netns() else { return };
    outlives_its_starter(Some(&ns), false).await;
    outlives_its_starter(Some(&ns), true).await;
    NetNs::delete(ns.name()).unwrap();
}

#[tokio::test]
async fn how_a_sandbox_ended_is_known_after_its_starter_is_gone() {
    let (Some(_), Some(cg)) = (bwrap(), cgroups()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let group = unique("outlive");
    let (pid, start) = start_from_a_child(dir.path(), &group, None, true).await;
    let log = dir.path().join("lab.log");
    let mut p = SandboxProcess::adopt_in(pid, start, &log, Some((&cg, &group))).unwrap();
    assert!(p.end().is_none());
    let before = SystemTime::now();
    std::fs::write(dir.path().join("finish"), "").unwrap();
    assert_eq!(
        wait_end(&mut p, 20).await,
        Some(7),
        "the exit status, recorded"
    );
    let end = p.end().unwrap();
    assert_eq!((end.code, end.killed_for_memory), (Some(7), false));
    let at = end.at.expect("the time of the end, recorded");
    assert!(at + Duration::from_secs(2) >= before && at <= SystemTime::now());
    // What a platform that was down while it ended learns.
    let recorded = insitu_launcher::process::recorded_end(pid, start, &log).unwrap();
    assert_eq!(recorded, end);
    assert_eq!(
        insitu_launcher::process::recorded_end(pid, start + 1, &log),
        None,
        "not for another process"
    );
    p.stop(Duration::ZERO).await;
    assert!(cg.dirs(&group).iter().all(|d| !d.exists()), "group removed");
}
