//! Lab containers with real podman (runtime runc): the same limits,
//! network namespace, workspace and volumes as a sandbox, found again by
//! pid after the launcher forgets them, and stopped with everything in
//! their control group.
//!
//! These need root, podman, writable control groups and the image
//! `docker.io/library/python:3-slim` that `scripts/cwl-images.sh` makes.
//! The test command sets `INSITU_REQUIRE_CONTAINERS=1`, which turns their
//! absence into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use insitu_launcher::limits::Controller;
use insitu_launcher::listen::{PortHolder, port_holder};
use insitu_launcher::{
    Cgroups, ContainerNetwork, ContainerProcess, ContainerSpec, ExitStatus, Limits, NetNs, Podman,
    PrivateEnv, VolumeMount,
};

const IMAGE: &str = "docker.io/library/python:3-slim";

async fn podman() -> Option<Podman> {
    let required = std::env::var("INSITU_REQUIRE_CONTAINERS").as_deref() == Ok("1");
    let p = Podman::new("/usr/bin/podman", "runc");
    let ready = p.version().await.is_ok() && p.image_exists(IMAGE).await.unwrap_or(false);
    let limits = Cgroups::detect("insitu-test");
    if ready && limits.enforces(Controller::Memory) {
        return Some(p);
    }
    assert!(
        !required,
        "podman, the image {IMAGE} and control groups are required"
    );
    eprintln!("skipping: podman, {IMAGE} or control groups are missing");
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

/// A TCP connection from inside the namespace.
async fn answers(ns: &NetNs, port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = ns.connect(addr, Duration::from_secs(2)).await.ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

#[tokio::test]
async fn a_lab_container_is_confined_found_again_and_stopped_for_real() {
    let Some(podman) = podman().await else {
        return;
    };
    let cgroups = Cgroups::detect("insitu-test");
    let ns = NetNs::ensure(&unique("insitu-c")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let workspace = dir.path().join("workspace");
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join("data.txt"), "archive").unwrap();
    std::os::unix::fs::chown(&workspace, Some(65534), Some(65534)).unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mut private_env = PrivateEnv::default();
    private_env.set("INSITU_LAB_SECRET", "not-on-any-command-line");
    // The tool reports what it could do, then serves its workspace.
    let script = "import os, subprocess\n\
        def tried(f):\n    try:\n        f(); return 'yes'\n    except OSError as e:\n        return 'no'\n\
        r = {'volume': tried(lambda: open('/media/data/v/new', 'w')),\n\
             'image': tried(lambda: open('/usr/new', 'w')),\n\
             'home': tried(lambda: open('/home/user/new', 'w').write('x')),\n\
             'secret': os.environ.get('INSITU_LAB_SECRET') == 'not-on-any-command-line',\n\
             'caps': [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0],\n\
             'uid': os.getuid()}\n\
        print(r, flush=True)\n\
        import http.server, functools\n\
        h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='/home/user')\n\
        http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h).serve_forever()\n";
    let name = unique("insitu-test-lab");
    let spec = ContainerSpec {
        name: name.clone(),
        image: IMAGE.to_owned(),
        command: vec!["python3".into(), "-c".into(), script.into()],
        env: vec![("PORT".into(), port.to_string())],
        private_env,
        workspace: workspace.clone(),
        volumes: vec![VolumeMount {
            source: volume.clone(),
            target: "/media/data/v".into(),
        }],
        devices: Vec::new(),
        run_as: (65534, 65534),
        network: ContainerNetwork::Namespace(ns.path().to_path_buf()),
        log_path: dir.path().join("lab.log"),
    };
    let group = unique("lab");
    let limits = Limits {
        memory_bytes: Some(256 << 20),
        cpus: Some(1.0),
        max_pids: Some(256),
    };
    // Whatever happens below, nothing of the test stays on the machine.
    let _cleanup = Cleanup {
        container: name.clone(),
        group: group.clone(),
        cgroups: cgroups.clone(),
        ns: ns.name().to_owned(),
    };
    let lab = ContainerProcess::start(&podman, &spec, Some((&cgroups, &group, limits)))
        .await
        .unwrap();
    let mut served = None;
    for _ in 0..200 {
        if port_holder(lab.pid, port) == PortHolder::Sandbox {
            served = answers(&ns, port).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = insitu_launcher::container::log_tail(&spec.log_path, 5).join("\n");
    assert!(served.is_some_and(|s| s.contains("200")), "{log}");
    assert!(
        log.contains("'volume': 'no', 'image': 'no', 'home': 'yes', 'secret': True, 'caps': '0000000000000000', 'uid': 65534"),
        "{log}"
    );
    assert!(workspace.join("new").exists());
    // The host's loopback is not the lab's: the port is only in the namespace.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // The lab's control group holds the container (podman's groups below it).
    let in_group: String = cgroups
        .dirs(&group)
        .into_iter()
        .filter_map(|d| {
            std::fs::read_to_string(d.join("memory.limit_in_bytes"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.max")))
                .ok()
        })
        .collect();
    assert_eq!(in_group.trim(), (256u64 << 20).to_string());

    // Forgotten (a restart of the platform) and found again by its pid.
    let (pid, start) = (lab.pid, lab.start_ticks);
    drop(lab);
    let mut lab = ContainerProcess::adopt(&podman, &name, pid, start, Some((&cgroups, &group)))
        .expect("the container outlives the launcher");
    assert_eq!(lab.status(), ExitStatus::Running);
    lab.stop(Duration::from_secs(1)).await;
    assert!(matches!(lab.status(), ExitStatus::Exited(_)));
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "its process is gone"
    );
    assert!(
        cgroups.dirs(&group).iter().all(|d| !d.exists()),
        "its group is gone"
    );
    assert!(
        ContainerProcess::adopt(&podman, &name, pid, start, None).is_none(),
        "a stopped container is not found again"
    );
    assert!(
        podman
            .output("container exists", &["container", "exists", &name])
            .await
            .is_err(),
        "podman removed it"
    );
    assert!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" - cgroup"))
            .filter_map(|l| l.split_whitespace().nth(4))
            .all(|m| !std::path::Path::new(m)
                .join("insitu-test")
                .join(&group)
                .exists()),
        "nothing of the group is left in any hierarchy"
    );
}

struct Cleanup {
    container: String,
    group: String,
    cgroups: Cgroups,
    ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("podman")
            .args(["rm", "--force", "--ignore", "--time=0", &self.container])
            .output();
        self.cgroups.kill_and_remove(&self.group);
        self.cgroups.remove_elsewhere(&self.group);
        let _ = NetNs::delete(&self.ns);
    }
}
