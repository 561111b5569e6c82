//! Real bubblewrap sandboxes: what a tool inside can and cannot see or do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use insitu_launcher::{ExitStatus, HOME_PATH, SandboxProcess, SandboxSpec, VolumeMount};

fn bwrap() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/bwrap");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("INSITU_REQUIRE_SANDBOX").as_deref() != Ok("1"),
        "bubblewrap is required but missing"
    );
    eprintln!("skipping: bubblewrap is not installed");
    None
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    for d in ["ws", "volume", "platform-data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("volume/data.txt"), "archive").unwrap();
    std::fs::write(root.join("platform-data/secret"), "do not read").unwrap();
    Fixture { _dir: dir, root }
}

fn spec(f: &Fixture, script: &str) -> SandboxSpec {
    SandboxSpec {
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("LAB_GREETING".into(), "hello".into())],
        workspace: f.root.join("ws"),
        volumes: vec![VolumeMount {
            source: f.root.join("volume"),
            target: "/media/data/demo".into(),
        }],
        hidden: vec![f.root.join("platform-data")],
        ..SandboxSpec::default()
    }
}

async fn run_to_end(bwrap: &Path, spec: &SandboxSpec, log: &Path) -> (Option<i32>, String) {
    let mut p = SandboxProcess::start(bwrap, spec, log).unwrap();
    for _ in 0..200 {
        if let ExitStatus::Exited(code) = p.status() {
            return (code, std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("sandbox did not end");
}

#[tokio::test]
async fn even_root_in_a_sandbox_cannot_make_a_volume_writable() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    // Run as the caller: root where the tests run as root, as pipeline
    // steps of a root engine do.
    let script = "grep CapEff /proc/self/status; \
         mount -o remount,bind,rw /media/data/demo 2>/dev/null && echo REMOUNTED; \
         echo x > /media/data/demo/new.txt 2>/dev/null || echo VOLUME_WRITE_REFUSED";
    let (code, log) = run_to_end(&bwrap, &spec(&f, script), &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    assert!(!log.contains("REMOUNTED"), "{log}");
    assert!(log.contains("VOLUME_WRITE_REFUSED"), "{log}");
    assert!(!f.root.join("volume/new.txt").exists());
}

#[tokio::test]
async fn volumes_are_read_only_and_the_workspace_persists() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let script = format!(
        "cat /media/data/demo/data.txt; echo; \
         echo x > /media/data/demo/new.txt || echo VOLUME_WRITE_REFUSED; \
         rm /media/data/demo/data.txt || echo VOLUME_DELETE_REFUSED; \
         echo notebook > {HOME_PATH}/saved.txt && echo WORKSPACE_WRITE_OK; \
         pwd; echo $HOME $LAB_GREETING; \
         ls {} 2>&1 | grep -c secret || echo PLATFORM_DATA_HIDDEN; \
         echo pid=$$",
        f.root.join("platform-data").display()
    );
    let (code, log) = run_to_end(&bwrap, &spec(&f, &script), &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("archive"), "{log}");
    assert!(
        log.contains("VOLUME_WRITE_REFUSED") && log.contains("Read-only file system"),
        "{log}"
    );
    assert!(log.contains("VOLUME_DELETE_REFUSED"), "{log}");
    assert!(log.contains("WORKSPACE_WRITE_OK"), "{log}");
    assert!(
        log.contains(&format!("{HOME_PATH}\n{HOME_PATH} hello")),
        "{log}"
    );
    assert!(log.contains("PLATFORM_DATA_HIDDEN"), "{log}");
    assert!(
        !log.contains("pid=1\n"),
        "the tool runs under the sandbox's own init: {log}"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("ws/saved.txt")).unwrap(),
        "notebook\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("volume/data.txt")).unwrap(),
        "archive"
    );
}

#[tokio::test]
async fn other_homes_and_host_processes_are_invisible() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let script = "ls /home; echo HOMES_END; ls /proc | grep -c '^[0-9]' ; ls /root | wc -l";
    let (code, log) = run_to_end(&bwrap, &spec(&f, script), &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "user", "only the user's own home: {log}");
    let procs: u32 = lines[2].trim().parse().unwrap();
    assert!(
        procs <= 5,
        "own pid namespace, saw {procs} processes: {log}"
    );
    assert_eq!(lines[3].trim(), "0", "root's home is empty: {log}");
}

#[tokio::test]
async fn stop_ends_the_whole_tree_and_adoption_finds_running_sandboxes() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    // A tool that starts a grandchild and ignores SIGTERM itself.
    let script = "trap '' TERM; sleep 300 & sleep 300 & echo started; wait";
    let log = f.root.join("lab.log");
    let mut p = SandboxProcess::start(&bwrap, &spec(&f, script), &log).unwrap();
    for _ in 0..100 {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = SandboxProcess::adopt(p.pid, p.start_ticks, &log).expect("adopt a running sandbox");
    assert_eq!(again.pid, p.pid);
    assert!(
        SandboxProcess::adopt(p.pid, p.start_ticks + 1, &log).is_none(),
        "a reused pid is not adopted"
    );
    let sleepers = count_sleepers();
    assert!(sleepers >= 2, "saw {sleepers}");
    p.stop(Duration::from_millis(500)).await;
    assert_ne!(p.status(), ExitStatus::Running);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count_sleepers(),
        sleepers - 2,
        "no orphan survives the stop"
    );
    assert_eq!(p.log_tail(5), vec!["started".to_owned()]);
}

fn count_sleepers() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cmdline"))
                .is_ok_and(|c| c == "sleep\u{0}300\u{0}")
        })
        .count()
}

#[tokio::test]
async fn an_unprivileged_sandbox_cannot_read_root_only_files() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let ws = f.root.join("ws");
    std::os::unix::fs::chown(&ws, Some(65534), Some(65534)).unwrap();
    let mut s = spec(
        &f,
        "id -u; cat /etc/shadow >/dev/null 2>&1 && echo SHADOW_READ || echo SHADOW_REFUSED; touch /home/user/mine && echo WS_OK",
    );
    s.run_as = Some((65534, 65534));
    let (code, log) = run_to_end(&bwrap, &s, &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.starts_with("65534\n"), "{log}");
    assert!(
        log.contains("SHADOW_REFUSED") && log.contains("WS_OK"),
        "{log}"
    );
}

#[tokio::test]
async fn exposed_tool_paths_are_visible_even_under_tmp() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    // The fixture lives under the host's /tmp, which sandboxes replace.
    let tools = f.root.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(tools.join("hello.sh"), "echo hello from a tool").unwrap();
    let mut s = spec(
        &f,
        &format!(
            "sh {}/hello.sh; touch {}/x || echo TOOLS_READ_ONLY",
            tools.display(),
            tools.display()
        ),
    );
    s.expose = vec![tools];
    let (code, log) = run_to_end(&bwrap, &s, &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("hello from a tool") && log.contains("TOOLS_READ_ONLY"),
        "{log}"
    );
}

/// Every process's command line on the host, joined.
fn host_command_lines() -> String {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_private_variable_reaches_the_tool_and_no_command_line() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let secret = format!("private-{}", std::process::id());
    let mut s = spec(
        &f,
        "echo \"secret=$LAB_SECRET greeting=$LAB_GREETING\"; echo ready; sleep 30",
    );
    s.private_env.set("LAB_SECRET", secret.clone());
    // A public variable of the same name loses to the private one.
    s.env.push(("LAB_SECRET".into(), "public".into()));
    let log = f.root.join("lab.log");
    let mut p = SandboxProcess::start(&bwrap, &s, &log).unwrap();
    for _ in 0..200 {
        if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        out.contains(&format!("secret={secret} greeting=hello")),
        "{out}"
    );
    assert!(
        !host_command_lines().contains(&secret),
        "the secret is on a command line"
    );
    assert!(
        !format!("{s:?}").contains(&secret),
        "Debug shows the secret"
    );
    p.stop(Duration::ZERO).await;
}
