//! Labs as Slurm jobs on a real single-node cluster (`scripts/slurm.sh`;
//! they run where `INSITU_TEST_SLURM_CONF` says a cluster can, each on a
//! cluster of its own, see [`OwnCluster`]): JupyterLab and a desktop
//! datalab started by `sbatch` in their sandbox on the node and reached
//! through the proxy; a job cancelled outside the platform shows as
//! stopped with Slurm's reason; with `slurmctld` down the lab is unknown,
//! never stopped, and running again once it is back (on a cluster of the
//! test's own); work goes to the zone holding its volumes; the datazones'
//! API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use insitu_domain::volume::VolumeConfig;
use insitu_domain::zone::{ZoneConfig, ZoneKind};
use insitu_web::ServerConfig;
use serde_json::{Value, json};

use crate::harness::*;
use crate::lifecycle::{get_lab, id_of, open_lab, stop, wait_for};

/// The zone of the test cluster in the test servers.
pub(crate) const CLUSTER: &str = "cluster";
/// A volume the cluster holds (and this machine does not).
pub(crate) const CLUSTER_VOLUME: &str = "cluster-archive";

/// The shared test cluster's `slurm.conf`, or `None` to skip (failing
/// instead when `INSITU_REQUIRE_SLURM=1`).
pub(crate) fn slurm_conf() -> Option<PathBuf> {
    let conf = std::env::var_os("INSITU_TEST_SLURM_CONF").map(PathBuf::from);
    let ok = conf.as_ref().is_some_and(|c| c.exists())
        && Path::new("/usr/bin/sbatch").exists()
        && Path::new("/usr/bin/bwrap").exists()
        && repo_root().join(".venv/bin/jupyter-lab").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_SLURM").as_deref() != Ok("1"),
            "INSITU_REQUIRE_SLURM=1 but INSITU_TEST_SLURM_CONF, Slurm, bubblewrap or JupyterLab is missing"
        );
        eprintln!("skipping: no Slurm cluster (INSITU_TEST_SLURM_CONF), bubblewrap or JupyterLab");
        return None;
    }
    conf
}

/// Light datalabs for the cluster: JupyterLab asking one CPU, a desktop
/// session showing xmessage, and a small tool that demands the lab's secret.
fn add_cluster_datalabs(catalogue: &Path) {
    let jupyter = std::fs::read_to_string(repo_root().join("catalogue/datalabs/jupyterlab.toml"))
        .unwrap()
        .replace("cpu = 2\nmemory = \"4GiB\"", "cpu = 1\nmemory = \"1GiB\"");
    assert!(
        jupyter.contains("cpu = 1"),
        "the JupyterLab definition changed"
    );
    std::fs::write(catalogue.join("jupyter-small.toml"), jupyter).unwrap();
    let desktop = "title = \"Desktop on a node\"\ndescription = \"xmessage\"\nversion = \"1\"\n\
        kind = \"desktop\"\nlicense = \"MIT\"\n[launch]\ncredential = \"basic\"\n\
        command = [\"xmessage\", \"-geometry\", \"320x60+0+0\", \"on a node\"]\n\
        [resources]\nmemory = \"512MiB\"\ncpu = 1\n";
    std::fs::write(catalogue.join("desktop-node.toml"), desktop).unwrap();
    let app = repo_root().join("crates/insitu/tests/it/fixtures/secretapp.py");
    let secretapp = format!(
        "title = \"Secret app\"\ndescription = \"Demands the lab's secret\"\nversion = \"1\"\n\
         kind = \"web\"\nlicense = \"MIT\"\n[launch]\ncredential = \"bearer\"\n\
         command = [\"python3\", \"{}\", \"{{listen}}\", \"{{port}}\", \"{{base_url}}\"]\n\
         readiness_path = \"/\"\n[resources]\nmemory = \"256MiB\"\ncpu = 1\n",
        app.display()
    );
    std::fs::write(catalogue.join("secretapp.toml"), secretapp).unwrap();
    // One that needs every CPU of the test node, to wait in the queue.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let big = std::fs::read_to_string(catalogue.join("secretapp.toml"))
        .unwrap()
        .replace("cpu = 1", &format!("cpu = {cpus}"));
    std::fs::write(catalogue.join("secretapp-big.toml"), big).unwrap();
}

/// Adds the cluster at `conf` as zone [`CLUSTER`], holding
/// [`CLUSTER_VOLUME`], to a test server's configuration.
pub(crate) fn with_cluster(config: &mut ServerConfig, conf: &Path) {
    add_cluster_datalabs(&config.catalogue_dir);
    let root = config.data_dir.parent().unwrap().to_owned();
    let source = root.join("cluster-volume");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("README.txt"), "data held by the cluster\n").unwrap();
    config.volumes.push(VolumeConfig {
        name: CLUSTER_VOLUME.to_owned(),
        title: "Archive on the cluster".to_owned(),
        description: String::new(),
        source,
        mount_path: None,
        zone: Some(CLUSTER.to_owned()),
        metadata: Default::default(),
        visible_to: None,
    });
    config.zones.push(ZoneConfig {
        name: CLUSTER.to_owned(),
        title: "Test cluster".to_owned(),
        kind: ZoneKind::Slurm,
        slurm_conf: Some(conf.to_owned()),
        partition: Some("main".to_owned()),
        default_memory: Some("512MiB".to_owned()),
        ..ZoneConfig::default()
    });
}

/// A test server on `db` with the cluster at `conf` as zone [`CLUSTER`],
/// and the guard that cancels its labs' jobs when the test ends.
pub(crate) async fn cluster_app(db: Db, conf: &Path) -> (TestApp, Jobs) {
    let app = spawn_configured(
        Options {
            db,
            ..Options::default()
        },
        |c| with_cluster(c, conf),
    )
    .await;
    let jobs = Jobs {
        conf: conf.to_owned(),
        data_dir: app.config().data_dir.clone(),
    };
    (app, jobs)
}

/// Cancels, on drop, every job the labs of a test server left on the
/// cluster (the server's own stops cancel theirs; a failed test may not
/// get there).
pub(crate) struct Jobs {
    pub(crate) conf: PathBuf,
    pub(crate) data_dir: PathBuf,
}

impl Drop for Jobs {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(self.data_dir.join("labs")) else {
            return;
        };
        for lab in rd.flatten() {
            let name = format!("--name=insitu-lab-{}", lab.file_name().to_string_lossy());
            let _ = std::process::Command::new("scancel")
                .arg(name)
                .env("SLURM_CONF", &self.conf)
                .status();
        }
    }
}

pub(crate) fn scontrol_job(conf: &Path, job: &str) -> String {
    let out = std::process::Command::new("scontrol")
        .args(["show", "job", "-o", job])
        .env("SLURM_CONF", conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) async fn launch_in(app: &impl Server, token: &str, body: Value) -> (u16, Value) {
    post_json(app, token, "/api/v1/labs", &body).await
}

/// Launches `datalab` in the cluster's zone and waits until it runs.
pub(crate) async fn running_on_cluster(app: &impl Server, token: &str, datalab: &str) -> Value {
    let (status, lab) = launch_in(app, token, json!({"datalab": datalab, "zone": CLUSTER})).await;
    assert_eq!(status, 202, "{lab}");
    assert_eq!(lab["zone"], CLUSTER);
    let id = id_of(&lab);
    wait_for(app, token, &id, Duration::from_secs(240), |l| {
        let s = l["state"].as_str().unwrap();
        assert!(
            ["pending", "starting", "running"].contains(&s),
            "the lab did not start: {l}"
        );
        s == "running"
    })
    .await
}

/// The lab's Slurm job id, from the store.
pub(crate) async fn job_of(app: &impl Server, id: &str) -> String {
    let url = app.config().platform().database_url();
    let store = insitu_store::Store::connect(url.expose()).await.unwrap();
    let lab = store.lab(&id.parse().unwrap()).await.unwrap().unwrap();
    store.close().await;
    lab.job.expect("a Slurm lab records its job")
}

#[tokio::test]
async fn jupyterlab_and_a_desktop_lab_run_as_slurm_jobs_behind_the_proxy() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    for db in backends() {
        let (app, _jobs) = cluster_app(db, &conf).await;
        let token = app.user_with_role("carol", "user").await;

        let lab = running_on_cluster(&app, &token, "jupyter-small").await;
        let id = id_of(&lab);
        let job = job_of(&app, &id).await;
        let shown = scontrol_job(&conf, &job);
        assert!(shown.contains("JobState=RUNNING"), "{shown}");
        assert!(
            shown.contains(&format!("JobName=insitu-lab-{id}")),
            "{shown}"
        );
        let (client, base) = open_lab(&app, &token, &id).await;
        let r = client
            .get(format!("{base}api/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "JupyterLab on the node answers through the proxy"
        );
        let status: Value = r.json().await.unwrap();
        assert!(status.get("started").is_some(), "{status}");

        let desktop = running_on_cluster(&app, &token, "desktop-node").await;
        let did = id_of(&desktop);
        let (client, base) = open_lab(&app, &token, &did).await;
        let r = client.get(format!("{base}vnc.html")).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "noVNC of the desktop on the node, through the proxy"
        );

        // A stop cancels the job.
        let stopped = stop(&app, &token, &id).await;
        assert_eq!(stopped["state"], "stopped", "{stopped}");
        let shown = scontrol_job(&conf, &job);
        assert!(
            shown.is_empty() || !shown.contains("JobState=RUNNING"),
            "the job is cancelled: {shown}"
        );
        stop(&app, &token, &did).await;
    }
}

#[tokio::test]
async fn a_job_cancelled_outside_the_platform_shows_the_lab_stopped_with_slurm_s_reason() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    for db in backends() {
        let (app, _jobs) = cluster_app(db, &conf).await;
        let token = app.user_with_role("dave", "user").await;
        let lab = running_on_cluster(&app, &token, "secretapp").await;
        let id = id_of(&lab);
        let job = job_of(&app, &id).await;
        let ok = std::process::Command::new("scancel")
            .arg(&job)
            .env("SLURM_CONF", &conf)
            .status()
            .unwrap();
        assert!(ok.success());
        let lab = wait_for(&app, &token, &id, Duration::from_secs(30), |l| {
            l["state"] != "running"
        })
        .await;
        assert_eq!(lab["state"], "stopped", "{lab}");
        let reason = lab["reason"].as_str().unwrap();
        assert!(
            reason.contains(&job) && reason.contains("CANCELLED"),
            "Slurm's word in the reason: {reason}"
        );
    }
}

/// A cluster of the test's own (its own directory, ports and node name),
/// stopped on drop. Tests that run labs take one: the shared cluster of
/// `INSITU_TEST_SLURM_CONF` also runs the pipeline tests' jobs, which may
/// hold its node for minutes while a lab waits in the queue; and a test that
/// stops slurmctld must not stop anyone else's.
pub(crate) struct OwnCluster {
    dir: tempfile::TempDir,
    pub(crate) conf: PathBuf,
}

impl OwnCluster {
    pub(crate) fn start() -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        let node = format!("insitu-own-{}", std::process::id());
        let out = std::process::Command::new(repo_root().join("scripts/slurm.sh"))
            .args(["start", dir.path().to_str().unwrap(), &node])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        OwnCluster { dir, conf }
    }

    fn ctld_pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.path().join("slurmctld.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn stop_ctld(&self) {
        let pid = self.ctld_pid();
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("slurmctld did not stop");
    }

    /// Starts slurmctld again, recovering its state (the jobs).
    fn start_ctld(&self) {
        let ok = std::process::Command::new("/usr/sbin/slurmctld")
            .env("SLURM_CONF", &self.conf)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/slurm.sh"))
            .args(["stop", self.dir.path().to_str().unwrap()])
            .status();
    }
}

#[tokio::test]
async fn a_lab_is_unknown_while_slurmctld_is_down_and_running_again_once_it_is_back() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    for db in backends() {
        let conf = cluster.conf.clone();
        let (app, _jobs) = cluster_app(db, &conf).await;
        let token = app.user_with_role("erin", "user").await;
        let lab = running_on_cluster(&app, &token, "secretapp").await;
        let id = id_of(&lab);

        cluster.stop_ctld();
        let lab = wait_for(&app, &token, &id, Duration::from_secs(60), |l| {
            assert!(
                ["running", "unknown"].contains(&l["state"].as_str().unwrap()),
                "never taken as ended while Slurm cannot be asked: {l}"
            );
            l["state"] == "unknown"
        })
        .await;
        assert!(lab["reason"].as_str().unwrap().contains("Slurm"), "{lab}");
        // It stays unknown while the scheduler is away, and its users keep it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(get_lab(&app, &token, &id).await["state"], "unknown");
        let (client, base) = open_lab(&app, &token, &id).await;
        let r = client.get(&base).send().await.unwrap();
        assert_eq!(r.status(), 200, "the tool still answers through the proxy");

        cluster.start_ctld();
        let lab = wait_for(&app, &token, &id, Duration::from_secs(90), |l| {
            assert_ne!(l["state"], "stopped", "{l}");
            assert_ne!(l["state"], "failed", "{l}");
            l["state"] == "running"
        })
        .await;
        assert!(lab["reason"].is_null(), "{lab}");
        let stopped = stop(&app, &token, &id).await;
        assert_eq!(stopped["state"], "stopped");
    }
}

#[tokio::test]
async fn work_goes_to_the_zone_holding_its_volumes() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    for db in backends() {
        let (app, _jobs) = cluster_app(db, &conf).await;
        let token = app.user_with_role("frank", "user").await;

        // The zones and what they hold.
        let (status, zones) = get_json(&plain(), &app.u("/api/v1/zones"), &token).await;
        assert_eq!(status, 200, "{zones}");
        let items = zones["items"].as_array().unwrap();
        assert_eq!(items[0]["name"], "local");
        assert_eq!(items[0]["default"], true);
        assert!(
            items[0]["volumes"]
                .as_array()
                .unwrap()
                .contains(&json!("deep-fields"))
        );
        let cluster = items.iter().find(|z| z["name"] == CLUSTER).unwrap();
        assert_eq!(cluster["kind"], "slurm");
        assert_eq!(cluster["volumes"], json!([CLUSTER_VOLUME]));
        assert_eq!(cluster["capacity"]["gpu"], 2, "the node's GRES: {cluster}");
        assert!(cluster["capacity"]["cpu"].as_f64().unwrap() >= 1.0);
        assert!(cluster["free"]["memory_bytes"].as_u64().is_some());

        // The cluster's volume takes the work there; the local one here.
        let (status, lab) = launch_in(
            &app,
            &token,
            json!({"datalab": "secretapp", "volumes": [CLUSTER_VOLUME]}),
        )
        .await;
        assert_eq!(status, 202, "{lab}");
        assert_eq!(lab["zone"], CLUSTER);
        let on_cluster = id_of(&lab);
        let (status, lab) = launch_in(
            &app,
            &token,
            json!({"datalab": "secretapp", "volumes": ["deep-fields"]}),
        )
        .await;
        assert_eq!(status, 202, "{lab}");
        assert_eq!(lab["zone"], "local");
        let local = id_of(&lab);
        let lab = wait_for(&app, &token, &on_cluster, Duration::from_secs(240), |l| {
            l["state"] != "pending" && l["state"] != "starting"
        })
        .await;
        assert_eq!(lab["state"], "running", "{lab}");
        let job = job_of(&app, &on_cluster).await;
        assert!(scontrol_job(&conf, &job).contains("JobState=RUNNING"));
        // The volume is in the lab on the node, read-only.
        let (client, base) = open_lab(&app, &token, &on_cluster).await;
        assert_eq!(client.get(&base).send().await.unwrap().status(), 200);

        // Volumes in two zones: refused, saying which is where.
        let (status, e) = launch_in(
            &app,
            &token,
            json!({"datalab": "secretapp", "volumes": [CLUSTER_VOLUME, "deep-fields"]}),
        )
        .await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(e["code"], "volumes_in_other_zones");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("{CLUSTER_VOLUME} is in {CLUSTER}"))
                && msg.contains("deep-fields is in local"),
            "{msg}"
        );
        // A zone chosen that lacks the volume; a zone that does not exist.
        let (status, e) = launch_in(
            &app,
            &token,
            json!({"datalab": "secretapp", "volumes": [CLUSTER_VOLUME], "zone": "local"}),
        )
        .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (409, Some("volumes_in_other_zones"))
        );
        let (status, e) = launch_in(
            &app,
            &token,
            json!({"datalab": "secretapp", "zone": "moon"}),
        )
        .await;
        assert_eq!((status, e["code"].as_str()), (404, Some("zone_not_found")));

        stop(&app, &token, &on_cluster).await;
        stop(&app, &token, &local).await;
    }
}

#[tokio::test]
async fn a_restarted_platform_finds_its_slurm_labs_again_by_their_job() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    for db in backends() {
        let (mut app, _jobs) = cluster_app(db, &conf).await;
        let token = app.user_with_role("grace", "user").await;
        let lab = running_on_cluster(&app, &token, "secretapp").await;
        let id = id_of(&lab);
        let job = job_of(&app, &id).await;

        app.restart().await;
        let lab = get_lab(&app, &token, &id).await;
        assert_eq!(lab["state"], "running", "{lab}");
        assert_eq!(job_of(&app, &id).await, job, "the same job");
        let (client, base) = open_lab(&app, &token, &id).await;
        let r = client.get(&base).send().await.unwrap();
        assert_eq!(r.status(), 200, "reached through the new server's proxy");
        // The new server follows the job: cancelled outside, stopped.
        std::process::Command::new("scancel")
            .arg(&job)
            .env("SLURM_CONF", &conf)
            .status()
            .unwrap();
        let lab = wait_for(&app, &token, &id, Duration::from_secs(30), |l| {
            l["state"] != "running"
        })
        .await;
        assert_eq!(lab["state"], "stopped", "{lab}");
    }
}

#[tokio::test]
async fn the_datazones_page_shows_each_zone_and_keeps_the_current_one() {
    // A cluster whose scheduler cannot be asked: the page says so.
    let app = spawn_configured(Options::default(), |c| {
        with_cluster(c, Path::new("/nonexistent/slurm.conf"));
    })
    .await;
    app.user_with_role("heidi", "user").await;
    let s = app.login("heidi", PASSWORD).await;
    let page = s.client.get(app.u("/zones")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-name=\"local\" class=\"current\""),
        "{html}"
    );
    assert!(html.contains(&format!("data-name=\"{CLUSTER}\"")), "{html}");
    assert!(html.contains(CLUSTER_VOLUME) && html.contains("deep-fields"));
    assert!(
        html.contains("Slurm could not be reached") || html.contains("cannot run Slurm"),
        "{html}"
    );

    let r = s
        .client
        .post(app.u("/zones/current"))
        .form(&[("csrf", s.csrf.as_str()), ("zone", CLUSTER)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = s
        .client
        .get(app.u("/zones"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("data-name=\"{CLUSTER}\" class=\"current\"")),
        "{html}"
    );
    // The launch form offers the current zone first.
    let html = s
        .client
        .get(app.u("/datalabs/secretapp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("<option value=\"{CLUSTER}\" selected>")),
        "{html}"
    );
    // A zone that does not exist is refused.
    let r = s
        .client
        .post(app.u("/zones/current"))
        .form(&[("csrf", s.csrf.as_str()), ("zone", "moon")])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));
}

#[tokio::test]
async fn a_pending_job_shows_slurm_s_reason_and_its_place_and_a_stop_cancels_it() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    let (app, _jobs) = cluster_app(Db::Sqlite, &conf).await;
    let token = app.user_with_role("ivan", "user").await;
    let first = running_on_cluster(&app, &token, "secretapp").await;
    let (status, lab) = launch_in(
        &app,
        &token,
        json!({"datalab": "secretapp-big", "zone": CLUSTER}),
    )
    .await;
    assert_eq!(status, 202, "{lab}");
    let id = id_of(&lab);
    let lab = wait_for(&app, &token, &id, Duration::from_secs(60), |l| {
        assert_eq!(l["state"], "pending", "{l}");
        l["progress"].as_array().unwrap().iter().any(|s| {
            s["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Resources") && d.contains("position 1"))
        })
    })
    .await;
    let job = job_of(&app, &id).await;
    let detail = lab["progress"].as_array().unwrap().last().unwrap()["detail"].clone();
    assert!(detail.as_str().unwrap().contains(&job), "{detail}");
    assert!(scontrol_job(&conf, &job).contains("JobState=PENDING"));

    let stopped = stop(&app, &token, &id).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("while it was pending"),
        "{stopped}"
    );
    let shown = scontrol_job(&conf, &job);
    assert!(shown.contains("JobState=CANCELLED"), "{shown}");
    stop(&app, &token, &id_of(&first)).await;
}
