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
    for d in ["ws", "volume"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("volume/data.txt"), "archive").unwrap();
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
         echo pid=$$"
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

/// A directory outside `/tmp` (which every sandbox replaces anyway), so
/// that what a test hides there would show if hiding failed.
fn outside_tmp() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    assert!(insitu_launcher::sandbox::shown_from_host(dir.path()));
    dir
}

#[tokio::test]
async fn hidden_paths_are_covered_wherever_a_sandbox_would_show_them() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let host = outside_tmp();
    let h = host.path();
    // The platform's data directory, its configuration and a link to it,
    // a private file inside a data volume, a secret inside an exposed
    // tool directory under /tmp.
    std::fs::create_dir_all(h.join("data/labs")).unwrap();
    std::fs::write(h.join("data/insitu.db"), "SECRET-DATABASE").unwrap();
    std::fs::write(h.join("data/labs/lab.log"), "SECRET-LOG").unwrap();
    std::fs::write(h.join("insitu.toml"), "admin_password = 'SECRET-CONFIG'").unwrap();
    std::os::unix::fs::symlink(h.join("insitu.toml"), h.join("config-link.toml")).unwrap();
    let volume = h.join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join("data.txt"), "PUBLIC-ARCHIVE").unwrap();
    std::fs::write(volume.join("private.txt"), "SECRET-VOLUME").unwrap();
    let tools = f.root.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(tools.join("hello.sh"), "echo PUBLIC-TOOL").unwrap();
    std::fs::write(tools.join("token"), "SECRET-TOOL").unwrap();
    let mut s = spec(
        &f,
        &format!(
            "cd {h}; cat data/insitu.db data/labs/lab.log insitu.toml config-link.toml \
             volume/private.txt; ls data | wc -l; \
             touch data/new 2>/dev/null || echo COVER_READ_ONLY; \
             cat volume/data.txt; echo; \
             cat /media/data/demo/private.txt /media/data/demo/data.txt; echo; \
             cat {t}/token; sh {t}/hello.sh; echo END",
            h = h.display(),
            t = tools.display()
        ),
    );
    s.volumes = vec![VolumeMount {
        source: volume.clone(),
        target: "/media/data/demo".into(),
    }];
    s.expose = vec![tools.clone()];
    s.hidden = vec![
        h.join("data"),
        // Inside a hidden directory: no cover of its own needed.
        h.join("data/insitu.db"),
        // Only the link is named: what it points to is hidden.
        h.join("config-link.toml"),
        volume.join("private.txt"),
        tools.join("token"),
        h.join("not-there-yet"),
    ];
    let (code, log) = run_to_end(&bwrap, &s, &f.root.join("lab.log")).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("SECRET"), "a hidden path was readable: {log}");
    assert!(
        log.contains("\n0\n"),
        "the data directory looks empty: {log}"
    );
    assert!(log.contains("COVER_READ_ONLY"), "{log}");
    assert_eq!(
        log.matches("PUBLIC-ARCHIVE").count(),
        2,
        "the rest of the volume shows, at its mount and at its own place: {log}"
    );
    assert!(
        log.contains("PUBLIC-TOOL") && log.ends_with("END\n"),
        "{log}"
    );
}

#[tokio::test]
async fn a_sandbox_has_its_own_var_tmp_default_signals_and_no_host_control_groups() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let marker = PathBuf::from(format!("/var/tmp/insitu-test-{}", std::process::id()));
    std::fs::write(&marker, "host").unwrap();
    let script = format!(
        "ls /var/tmp; touch /var/tmp/mine && echo VAR_TMP_WRITABLE; \
         grep SigIgn /proc/self/status; \
         ls /sys/fs/cgroup | wc -l; cat /proc/self/cgroup | grep -vc ':/$'; \
         test -e {} || echo MARKER_UNSEEN",
        marker.display()
    );
    let result = run_to_end(&bwrap, &spec(&f, &script), &f.root.join("lab.log")).await;
    std::fs::remove_file(&marker).unwrap();
    let (code, log) = result;
    assert_eq!(code, Some(0), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0], "VAR_TMP_WRITABLE",
        "an empty private /var/tmp: {log}"
    );
    assert!(!Path::new("/var/tmp/mine").exists());
    // A tool that ignores SIGINT cannot be interrupted (a notebook's
    // kernel): none of the standard signals is ignored (the C library's
    // own, above them, are the test runner's business).
    let ignored = u64::from_str_radix(lines[1].trim_start_matches("SigIgn:\t"), 16).unwrap();
    assert_eq!(ignored & 0x7fff_ffff, 0, "{log}");
    assert_eq!(lines[2], "0", "no host control group tree: {log}");
    assert_eq!(lines[3], "0", "every group is the namespace's root: {log}");
    assert_eq!(lines[4], "MARKER_UNSEEN", "{log}");
}

/// Runs `script` as an unprivileged user (the workspace handed to it).
async fn run_unprivileged(bwrap: &Path, f: &Fixture, script: &str) -> (Option<i32>, String) {
    std::os::unix::fs::chown(f.root.join("ws"), Some(65534), Some(65534)).unwrap();
    let mut s = spec(f, script);
    s.run_as = Some((65534, 65534));
    run_to_end(bwrap, &s, &f.root.join("lab.log")).await
}

#[tokio::test]
async fn escape_calls_fail_with_eperm_while_threads_and_processes_work() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    // Calls that an unprivileged process could make without the filter
    // (or that fail differently without it), with harmless arguments.
    let checks = [
        ("keyctl", libc::SYS_keyctl, "0, -3, 0"),
        ("unshare", libc::SYS_unshare, "0x10000000"),
        ("userfaultfd", libc::SYS_userfaultfd, "1"),
        ("io_uring_setup", libc::SYS_io_uring_setup, "1, 0"),
        (
            "perf_event_open",
            libc::SYS_perf_event_open,
            "0, 0, -1, -1, 0",
        ),
        (
            "name_to_handle_at",
            libc::SYS_name_to_handle_at,
            "-100, 0, 0, 0, 0",
        ),
        ("bpf", libc::SYS_bpf, "5, 0, 0"),
        ("mount", libc::SYS_mount, "0, 0, 0, 0, 0"),
        ("clone3", libc::SYS_clone3, "0, 0"),
    ];
    let calls: String = checks
        .iter()
        .map(|(name, nr, args)| format!("call({name:?}, {nr}, {args})\n"))
        .collect();
    let script = format!(
        r#"python3 - <<'PY'
import ctypes, os, subprocess, threading, concurrent.futures
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    print(name, ctypes.get_errno() if r == -1 else "ALLOWED")
{calls}
r = libc.syscall(ctypes.c_long({clone}), ctypes.c_long(0x10000000 | 17), 0, 0, 0, 0)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
print("clone_newuser", ctypes.get_errno() if r == -1 else "ALLOWED")
# What a notebook does: threads, subprocesses, forks.
out = []
ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    squares = sum(ex.map(lambda x: x * x, range(10)))
sub = subprocess.run(["sh", "-c", "echo from-a-subprocess"], capture_output=True, text=True).stdout.strip()
pid = os.fork()
if pid == 0:
    os._exit(7)
forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print("WORKLOAD", len(out), squares, sub, forked)
PY"#,
        clone = libc::SYS_clone
    );
    let (code, log) = run_unprivileged(&bwrap, &f, &script).await;
    assert_eq!(code, Some(0), "{log}");
    for (name, _, _) in checks.iter().filter(|(n, _, _)| *n != "clone3") {
        assert!(
            log.contains(&format!("\n{name} 1\n")) || log.starts_with(&format!("{name} 1\n")),
            "{name} is refused with EPERM: {log}"
        );
    }
    assert!(
        log.contains("\nclone3 38\n"),
        "clone3 is ENOSYS, so C libraries fall back: {log}"
    );
    assert!(log.contains("\nclone_newuser 1\n"), "{log}");
    assert!(
        log.contains("WORKLOAD 8 285 from-a-subprocess 7"),
        "ordinary work still runs: {log}"
    );
}

#[tokio::test]
async fn a_recorded_sandbox_can_be_killed_from_its_log_alone() {
    let Some(bwrap) = bwrap() else { return };
    let f = fixture();
    let log = f.root.join("lab.log");
    // A duration of its own, so that other tests' sleepers do not count.
    let mut s = spec(&f, "echo started; exec sleep 299");
    s.die_with_parent = true;
    let mut p = SandboxProcess::start(&bwrap, &s, &log).unwrap();
    let sleepers = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("cmdline"))
                    .is_ok_and(|c| c == "sleep\u{0}299\u{0}")
            })
            .count()
    };
    for _ in 0..100 {
        if sleepers() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sleepers(), 1);
    insitu_launcher::process::kill_recorded(&log);
    for _ in 0..100 {
        if p.status() != ExitStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.status(), ExitStatus::Exited(Some(137)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sleepers(), 0, "the tool went with it");
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
