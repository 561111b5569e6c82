//! Pipelines run for real through the platform: a user's pipeline pushed
//! over the API, its runs executed by the CWL engine with every tool in a
//! bubblewrap sandbox, followed step by step, their logs, outputs in the
//! workspace, cancel, resume after a failure, the queue's limits and bad
//! input.

use std::time::{Duration, Instant};

use insitu_domain::RunState;
use serde_json::{Value, json};

use crate::harness::*;

/// The engine is built (`cargo build --manifest-path crates/insitu-cwl/…`)
/// and bubblewrap is here; else the test is skipped (or fails where the
/// test command requires them).
pub(crate) fn engine_available() -> bool {
    if !crate::labs::sandbox_available() {
        return false;
    }
    if insitu::cwl::find_engine().is_some() {
        return true;
    }
    assert!(
        std::env::var("INSITU_REQUIRE_CWL").as_deref() != Ok("1"),
        "the CWL engine is required but not built"
    );
    eprintln!("skipping: the CWL engine is not built");
    false
}

/// Options that give the platform the checkout's system pipelines and
/// engine.
pub(crate) fn with_pipelines(db: Db, configure: fn(&mut insitu_web::ServerConfig)) -> Options {
    Options {
        db,
        configure,
        ..Options::default()
    }
}

pub(crate) fn pipelines_config(config: &mut insitu_web::ServerConfig) {
    config.pipelines.catalogue_dir = repo_root().join("catalogue/pipelines");
    config.pipelines.engine = insitu::cwl::find_engine();
    config.pipelines.parallel = Some(2);
}

/// A two-step pipeline: `shout` upper-cases every line given (scattered),
/// `join` concatenates the results, unless the `flag` file says `fail`:
/// then it fails, after writing to its log.
pub(crate) const SHOUT: &str = r#"cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: string[]
  flag: File
outputs:
  joined: {type: File, outputSource: join/out}
steps:
  shout:
    run: shout.cwl
    scatter: word
    in: {word: words}
    out: [out]
  join:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'if grep -q fail "$0"; then echo joining failed on purpose >&2; exit 7; fi; cat "$@"']
      inputs:
        flag: {type: File, inputBinding: {position: 1}}
        parts: {type: 'File[]', inputBinding: {position: 2}}
      stdout: joined.txt
      outputs: {out: {type: stdout}}
    in: {parts: shout/out, flag: flag}
    out: [out]
"#;

pub(crate) const SHOUT_TOOL: &str = r#"cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, 'echo "shouting $0" >&2; echo "$0" | tr a-z A-Z']
inputs:
  word: {type: string, inputBinding: {position: 1}}
stdout: out.txt
outputs:
  out: {type: stdout}
"#;

/// Pushes a pipeline of the user's own; returns the status and body.
pub(crate) async fn push(
    app: &impl Server,
    token: &str,
    name: &str,
    version: &str,
    files: &[(&str, &str)],
) -> (u16, Value) {
    let files: serde_json::Map<String, Value> = files
        .iter()
        .map(|(n, t)| ((*n).to_owned(), Value::String((*t).to_owned())))
        .collect();
    let r = plain()
        .post(app.u("/api/v1/pipelines"))
        .bearer_auth(token)
        .json(&json!({
            "name": name, "version": version, "description": "Shouts words",
            "keywords": ["test"], "author": "A. Tester", "licence": "MIT",
            "main": files.keys().next().unwrap(), "files": files,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn push_shout(app: &impl Server, token: &str) {
    let (status, body) = push(
        app,
        token,
        "shout",
        "1.0.0",
        &[("main.cwl", SHOUT), ("shout.cwl", SHOUT_TOOL)],
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

pub(crate) async fn submit(
    app: &impl Server,
    token: &str,
    pipeline: &str,
    job: Value,
) -> (u16, Value) {
    submit_body(app, token, json!({"pipeline": pipeline, "job": job})).await
}

/// Sends a run request as it is.
pub(crate) async fn submit_body(app: &impl Server, token: &str, body: Value) -> (u16, Value) {
    post_json(app, token, "/api/v1/runs", &body).await
}

pub(crate) async fn post(app: &impl Server, token: &str, path: &str) -> (u16, Value) {
    let r = plain()
        .post(app.u(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Follows a run (long-polling) until it ends; returns its last view.
pub(crate) async fn finish(app: &impl Server, token: &str, id: &str, within: Duration) -> Value {
    let start = Instant::now();
    let mut seen = 0;
    loop {
        let (status, run) = get_json(
            &plain(),
            &app.u(&format!("/api/v1/runs/{id}?since={seen}&wait=5")),
            token,
        )
        .await;
        assert_eq!(status, 200, "{run}");
        if ["succeeded", "failed", "cancelled"].contains(&run["state"].as_str().unwrap()) {
            return run;
        }
        seen = run["events_seen"].as_u64().unwrap();
        assert!(start.elapsed() < within, "run still {run}");
    }
}

/// Writes `flag.txt` in the user's workspace; returns it as a job names
/// it (as labs see it).
pub(crate) fn write_flag(app: &TestApp, user: &str, text: &str) -> Value {
    let ws = workspace(app, user);
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("flag.txt"), text).unwrap();
    json!({"class": "File", "path": "/home/user/flag.txt"})
}

pub(crate) fn workspace(app: &TestApp, user: &str) -> std::path::PathBuf {
    app.dir.path().join("data/workspaces").join(user)
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

async fn job_log(app: &impl Server, token: &str, id: &str, job: u64) -> String {
    let (status, log) = get_json(
        &plain(),
        &app.u(&format!("/api/v1/runs/{id}/logs?job={job}")),
        token,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    log["text"].as_str().unwrap().to_owned()
}

/// A run from submission to its outputs in the workspace: per-step
/// progress with the scatter's count, each job's log, and the outputs
/// where the user's labs see them.
#[tokio::test]
async fn a_run_goes_from_the_queue_to_outputs_in_the_workspace() {
    if !engine_available() {
        return;
    }
    for db in backends() {
        let app = spawn_with(with_pipelines(db, pipelines_config)).await;
        let token = app.user_with_role("ada", "user").await;
        push_shout(&app, &token).await;
        let flag = write_flag(&app, "ada", "ok");
        let (status, run) = submit(
            &app,
            &token,
            "ada/shout",
            json!({"words": ["alpha", "beta", "gamma"], "flag": flag}),
        )
        .await;
        assert_eq!(status, 202, "{run}");
        assert!(
            ["queued", "running"].contains(&run["state"].as_str().unwrap()),
            "{run}"
        );
        let id = run["id"].as_str().unwrap().to_owned();
        let run = finish(&app, &token, &id, Duration::from_secs(120)).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        let shout = step(&run, "shout");
        assert_eq!(shout["scatter"], true);
        assert_eq!(
            (shout["jobs"].as_u64(), shout["done"].as_u64()),
            (Some(3), Some(3)),
            "{shout}"
        );
        assert_eq!(shout["phase"], "succeeded", "{shout}");
        assert_eq!(step(&run, "join")["phase"], "succeeded", "{run}");

        // Every job's log, by step and scatter position.
        let (status, jobs) = get_json(
            &plain(),
            &app.u(&format!("/api/v1/runs/{id}/jobs?step=shout")),
            &token,
        )
        .await;
        assert_eq!(status, 200, "{jobs}");
        let jobs = jobs["items"].as_array().unwrap().clone();
        assert_eq!(jobs.len(), 3, "{jobs:?}");
        for j in &jobs {
            assert_eq!(j["exit_code"], 0, "{j}");
            let word = ["alpha", "beta", "gamma"][j["index"].as_u64().unwrap() as usize];
            let log = job_log(&app, &token, &id, j["job"].as_u64().unwrap()).await;
            assert!(log.contains(&format!("shouting {word}")), "{log}");
        }

        // The outputs, in the workspace under runs/<id>/.
        let ws = workspace(&app, "ada").join("runs").join(&id);
        let joined = std::fs::read_to_string(ws.join("joined.txt")).unwrap();
        assert_eq!(joined, "ALPHA\nBETA\nGAMMA\n");
        assert_eq!(run["output_dir"], format!("/home/user/runs/{id}"));
        let out = &run["outputs"]["joined"];
        assert_eq!(
            out["path"],
            format!("/home/user/runs/{id}/joined.txt"),
            "{run}"
        );

        // The list has it; the provenance crate downloads as a zip.
        let (_, list) = get_json(&plain(), &app.u("/api/v1/runs"), &token).await;
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == id.as_str())
        );
        let r = plain()
            .get(app.u(&format!("/api/v1/runs/{id}/provenance")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let zip = r.bytes().await.unwrap();
        assert_eq!(&zip[..4], b"PK\x03\x04");
        let text = String::from_utf8_lossy(&zip);
        assert!(text.contains("ro-crate-metadata.json"), "a crate");
    }
}

/// A run goes to the zone holding the volume its job names: there, on the
/// Slurm cluster, the scatter's outputs are the same, every job names the
/// Slurm job that ran it, and the jobs of the run have all ended; a run
/// naming only workspace files stays here; a zone chosen that lacks the
/// volume, or that does not exist, is refused with its code.
#[tokio::test]
async fn a_scatter_pipeline_runs_on_slurm_in_the_zone_holding_its_volume() {
    use crate::slurm_labs::{CLUSTER, CLUSTER_VOLUME, slurm_conf, with_cluster};
    let Some(conf) = slurm_conf() else { return };
    if !engine_available() {
        return;
    }
    for db in backends() {
        let app = spawn_configured(with_pipelines(db, pipelines_config), |c| {
            with_cluster(c, &conf)
        })
        .await;
        let token = app.user_with_role("ada", "user").await;
        push_shout(&app, &token).await;
        // The flag read from the cluster's volume (it does not say "fail").
        let on_cluster =
            json!({"class": "File", "path": format!("/media/data/{CLUSTER_VOLUME}/README.txt")});
        let words = json!(["alpha", "beta", "gamma"]);
        let (status, run) = submit(
            &app,
            &token,
            "ada/shout",
            json!({"words": words, "flag": on_cluster}),
        )
        .await;
        assert_eq!(status, 202, "{run}");
        assert_eq!(run["zone"], CLUSTER, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let run = finish(&app, &token, &id, Duration::from_secs(120)).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        assert_eq!(step(&run, "shout")["done"], 3, "{run}");
        let ws = workspace(&app, "ada").join("runs").join(&id);
        let joined = std::fs::read_to_string(ws.join("joined.txt")).unwrap();
        assert_eq!(joined, "ALPHA\nBETA\nGAMMA\n");

        // The engine's events name the Slurm job of each of the 4 jobs.
        let placed = placed_jobs(&app, &id);
        assert_eq!(placed.len(), 4, "{placed:?}");
        for p in &placed {
            let job = p["slurm_job"].as_str().unwrap();
            let state = || {
                let out = std::process::Command::new("scontrol")
                    .args(["show", "job", "-o", job])
                    .env("SLURM_CONF", &conf)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            // An allocation given back may show COMPLETING for a moment.
            wait_until(
                "the Slurm job completed",
                Duration::from_secs(20),
                async || state().contains("JobState=COMPLETED"),
            )
            .await;
        }

        // Only workspace files: this machine runs it, no Slurm job.
        let flag = write_flag(&app, "ada", "ok");
        let (status, run) = submit(
            &app,
            &token,
            "ada/shout",
            json!({"words": ["x"], "flag": flag}),
        )
        .await;
        assert_eq!(status, 202, "{run}");
        assert_eq!(run["zone"], "local", "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let run = finish(&app, &token, &id, Duration::from_secs(60)).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        assert!(placed_jobs(&app, &id).is_empty());
        let (status, list) = get_json(&plain(), &app.u("/api/v1/runs"), &token).await;
        assert_eq!(status, 200);
        let zones: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["zone"].as_str().unwrap())
            .collect();
        assert_eq!(zones, ["local", CLUSTER]);

        // A zone chosen that lacks the volume; a zone that does not exist.
        let (status, e) = submit_body(
            &app,
            &token,
            json!({"pipeline": "ada/shout", "zone": "local",
                   "job": {"words": ["x"], "flag": on_cluster}}),
        )
        .await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(e["code"], "volumes_in_other_zones");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("{CLUSTER_VOLUME} is in {CLUSTER}")),
            "{msg}"
        );
        let (status, e) = submit_body(
            &app,
            &token,
            json!({"pipeline": "ada/shout", "zone": "moon",
                   "job": {"words": ["x"], "flag": flag}}),
        )
        .await;
        assert_eq!((status, e["code"].as_str()), (404, Some("zone_not_found")));
    }
}

/// The `job_placed` events of a run's engine (one per job on Slurm).
fn placed_jobs(app: &TestApp, id: &str) -> Vec<Value> {
    let events = std::fs::read_to_string(
        app.dir
            .path()
            .join("data/runs")
            .join(id)
            .join("events.jsonl"),
    )
    .unwrap();
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "job_placed")
        .collect()
}

/// A run that fails says which step failed, with its exit code and log;
/// resumed, it reuses the steps that finished and runs the rest.
#[tokio::test]
async fn a_failed_run_resumes_reusing_the_steps_that_finished() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    push_shout(&app, &token).await;
    let flag = write_flag(&app, "ada", "fail");
    let (status, run) = submit(
        &app,
        &token,
        "ada/shout",
        json!({"words": ["x", "y"], "flag": flag}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &token, &id, Duration::from_secs(120)).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(step(&run, "shout")["phase"], "succeeded", "{run}");
    let join = step(&run, "join");
    assert_eq!(join["phase"], "failed", "{run}");
    let (_, jobs) = get_json(
        &plain(),
        &app.u(&format!("/api/v1/runs/{id}/jobs?step=join")),
        &token,
    )
    .await;
    let failed = &jobs["items"][0];
    assert_eq!(failed["exit_code"], 7, "{jobs}");
    let log = job_log(&app, &token, &id, failed["job"].as_u64().unwrap()).await;
    assert!(log.contains("joining failed on purpose"), "{log}");
    // A failed run cannot be resumed by another user, nor a running one at all.
    let other = app.user_with_role("bob", "user").await;
    let (status, body) = post(&app, &other, &format!("/api/v1/runs/{id}/resume")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("run_not_found"))
    );

    // The user mends the cause and resumes: the shouts are reused.
    write_flag(&app, "ada", "ok");
    let (status, resumed) = post(&app, &token, &format!("/api/v1/runs/{id}/resume")).await;
    assert_eq!(status, 202, "{resumed}");
    assert_eq!(resumed["resumed_from"], id.as_str());
    let rid = resumed["id"].as_str().unwrap().to_owned();
    let resumed = finish(&app, &token, &rid, Duration::from_secs(120)).await;
    assert_eq!(resumed["state"], "succeeded", "{resumed}");
    let shout = step(&resumed, "shout");
    assert_eq!(shout["reused"], 2, "{resumed}");
    let joined = std::fs::read_to_string(
        workspace(&app, "ada")
            .join("runs")
            .join(&rid)
            .join("joined.txt"),
    )
    .unwrap();
    assert_eq!(joined, "X\nY\n");
    // A succeeded run does not resume.
    let (status, body) = post(&app, &token, &format!("/api/v1/runs/{rid}/resume")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("run_not_resumable"))
    );
}

/// The operator's console lists every user's queued and running runs and
/// cancels one with a reason its user reads; nobody else sees them or
/// cancels them there.
#[tokio::test]
async fn an_operator_cancels_a_users_run_with_a_reason() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, |c| {
        pipelines_config(c);
        c.pipelines.slots = 1;
    }))
    .await;
    let admin = app.user_with_role("olga", "admin").await;
    let ada = app.user_with_role("ada", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    let mut ids = Vec::new();
    for (who, token) in [("ada", &ada), ("bob", &bob)] {
        let (status, body) = push(&app, token, "sleepy", "1", &[("main.cwl", &sleepy(4716))]).await;
        assert_eq!(status, 201, "{body}");
        let (status, run) = submit(&app, token, &format!("{who}/sleepy"), json!({})).await;
        assert_eq!(status, 202, "{run}");
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    wait_until("ada's run sleeps", Duration::from_secs(60), async || {
        !sleepers(4716).is_empty()
    })
    .await;
    let (status, all) = get_json(&plain(), &app.u("/api/v1/admin/runs"), &admin).await;
    assert_eq!(status, 200, "{all}");
    let seen: Vec<(&str, &str, &str)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["owner"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (ids[0].as_str(), "ada", "running"),
            (ids[1].as_str(), "bob", "queued")
        ],
        "{all}"
    );
    for token in [&ada, &bob] {
        let (status, body) = get_json(&plain(), &app.u("/api/v1/admin/runs"), token).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
        let (status, _) = post(
            &app,
            token,
            &format!("/api/v1/admin/runs/{}/cancel", ids[0]),
        )
        .await;
        assert_eq!(status, 403);
    }
    let cancel = |id: String, body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let r = plain()
                .post(app.u(&format!("/api/v1/admin/runs/{id}/cancel")))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, e) = cancel(ids[0].clone(), json!({"reason": ""})).await;
    assert_eq!((status, e["code"].as_str()), (422, Some("reason_required")));
    let (status, e) = cancel("nosuchrun".into(), json!({"reason": "x"})).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("run_not_found")));
    let (status, run) = cancel(
        ids[0].clone(),
        json!({"reason": "the slot is needed for a deadline"}),
    )
    .await;
    assert_eq!(
        (status, run["state"].as_str()),
        (200, Some("cancelled")),
        "{run}"
    );
    // Its user reads who and why; its step ended; bob's run gets the slot.
    let (_, mine) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{}", ids[0])), &ada).await;
    assert_eq!(mine["state"], "cancelled");
    assert!(
        mine["reason"]
            .as_str()
            .unwrap()
            .contains("cancelled by the operator olga: the slot is needed for a deadline"),
        "{mine}"
    );
    wait_until("bob's run runs", Duration::from_secs(60), async || {
        get_json(&plain(), &app.u(&format!("/api/v1/runs/{}", ids[1])), &bob)
            .await
            .1["state"]
            == "running"
    })
    .await;
    // The CLI lists it for an administrator only.
    let work = tempfile::tempdir().unwrap();
    let (code, out, err) = insitu(&app, &admin, work.path(), &["runs", "all"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&ids[1]) && out.contains("bob") && !out.contains(&ids[0]),
        "{out}"
    );
    let (code, _, err) = insitu(&app, &bob, work.path(), &["runs", "all"]).await;
    assert!(code != 0 && err.contains("forbidden"), "{code}: {err}");
    // The console's page shows bob's run and cancels it too.
    let console = app.login("olga", PASSWORD).await;
    let page = console
        .client
        .get(app.u("/admin/labs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("run-{}", ids[1])), "{page}");
    assert!(!page.contains(&format!("run-{}", ids[0])), "{page}");
    let r = console
        .client
        .post(app.u(&format!("/admin/runs/{}/cancel", ids[1])))
        .form(&[("csrf", console.csrf.as_str()), ("reason", "maintenance")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, his) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{}", ids[1])), &bob).await;
    assert_eq!(his["state"], "cancelled", "{his}");
    // And from the CLI.
    let (status, run) = submit(&app, &ada, "ada/sleepy", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap();
    let (code, out, err) = insitu(
        &app,
        &admin,
        work.path(),
        &["runs", "cancel", id, "--reason", "quota"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("run {id} of ada cancelled"))
            && out.contains("cancelled by the operator olga: quota"),
        "{out}"
    );
    wait_until("no step sleeps", Duration::from_secs(30), async || {
        sleepers(4716).is_empty()
    })
    .await;
}

/// A team member names a file in the team workspace as their labs see it
/// (`/home/user/team_workspaces/<team>/…`) and the run's step reads it;
/// someone only invited, someone outside the team, and a member who left
/// cannot name it.
#[tokio::test]
async fn a_run_reads_its_team_workspace_and_only_members_name_it() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let ada = app.user_with_role("ada", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    let cid = app.user_with_role("cid", "user").await;
    let eve = app.user_with_role("eve", "user").await;
    let (status, team) = crate::devlabs::call(
        &app,
        "POST",
        "/api/v1/teams",
        &ada,
        Some(json!({"name": "optics"})),
    )
    .await;
    assert_eq!(status, 201, "{team}");
    for who in ["bob", "cid"] {
        let (status, body) = crate::devlabs::call(
            &app,
            "POST",
            "/api/v1/teams/optics/members",
            &ada,
            Some(json!({"username": who})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) =
        crate::devlabs::call(&app, "POST", "/api/v1/teams/optics/accept", &bob, None).await;
    assert_eq!(status, 200, "{body}");
    // The team's file says "fail": the join step fails, exit 7, only if it
    // read this very file.
    let team_dir = app.dir.path().join("data/teams/optics/bench");
    std::fs::create_dir_all(&team_dir).unwrap();
    std::fs::write(team_dir.join("flag.txt"), "fail").unwrap();
    let flag = json!({"class": "File", "path": "/home/user/team_workspaces/optics/bench/flag.txt"});
    for token in [&bob, &cid, &eve] {
        push_shout(&app, token).await;
    }
    let (status, run) = submit(
        &app,
        &bob,
        "bob/shout",
        json!({"words": ["x"], "flag": flag}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &bob, &id, Duration::from_secs(120)).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(step(&run, "join")["phase"], "failed", "{run}");
    let (_, jobs) = get_json(
        &plain(),
        &app.u(&format!("/api/v1/runs/{id}/jobs?step=join")),
        &bob,
    )
    .await;
    assert_eq!(jobs["items"][0]["exit_code"], 7, "{jobs}");
    // The member mends the team's file; the run resumes and succeeds.
    std::fs::write(team_dir.join("flag.txt"), "ok").unwrap();
    let (status, resumed) = post(&app, &bob, &format!("/api/v1/runs/{id}/resume")).await;
    assert_eq!(status, 202, "{resumed}");
    let rid = resumed["id"].as_str().unwrap().to_owned();
    let resumed = finish(&app, &bob, &rid, Duration::from_secs(120)).await;
    assert_eq!(resumed["state"], "succeeded", "{resumed}");

    // Invited only, outside the team: refused, the team named.
    for (who, token) in [("cid", &cid), ("eve", &eve)] {
        let (status, body) = submit(
            &app,
            token,
            &format!("{who}/shout"),
            json!({"words": ["x"], "flag": flag}),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_job")),
            "{who}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("not the workspace of a team you are a member of"),
            "{who}: {body}"
        );
    }
    // Bob leaves: the team workspace is no longer his to name.
    let (status, body) = crate::devlabs::call(
        &app,
        "DELETE",
        "/api/v1/teams/optics/members/bob",
        &bob,
        None,
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    let (status, body) = submit(
        &app,
        &bob,
        "bob/shout",
        json!({"words": ["x"], "flag": flag}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_job")),
        "{body}"
    );
}

/// A pipeline whose one step sleeps for `seconds` (a number no other test
/// uses, so its processes are found by their command line).
pub(crate) fn sleepy(seconds: u32) -> String {
    format!(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [sleep, '{seconds}']\n\
         inputs: {{}}\noutputs: {{}}\n"
    )
}

/// The processes whose command line is `sleep <seconds>`.
pub(crate) fn sleepers(seconds: u32) -> Vec<u32> {
    let want = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

pub(crate) async fn wait_until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "still not: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancel ends the whole process tree, and the run ends `cancelled`; a
/// queued run is cancelled before it starts.
#[tokio::test]
async fn cancel_ends_the_runs_whole_process_tree() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, |c| {
        pipelines_config(c);
        c.pipelines.max_running_per_user = 1;
    }))
    .await;
    let token = app.user_with_role("ada", "user").await;
    let (status, body) = push(&app, &token, "sleepy", "1", &[("main.cwl", &sleepy(4711))]).await;
    assert_eq!(status, 201, "{body}");
    let (_, first) = submit(&app, &token, "ada/sleepy", json!({})).await;
    let (_, second) = submit(&app, &token, "ada/sleepy", json!({})).await;
    let (first, second) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    wait_until("the step sleeps", Duration::from_secs(60), async || {
        !sleepers(4711).is_empty()
    })
    .await;
    // The run shows its step running once the engine's event that the
    // job started has been read (just after the process exists).
    wait_until(
        "the run shows its step running",
        Duration::from_secs(10),
        async || {
            let (_, run) =
                get_json(&plain(), &app.u(&format!("/api/v1/runs/{first}")), &token).await;
            run["steps"][0]["phase"] == "running"
        },
    )
    .await;
    let (_, run) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{first}")), &token).await;
    assert_eq!(run["state"], "running");
    assert_eq!(run["steps"][0]["phase"], "running", "{run}");
    let (_, queued) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{second}")), &token).await;
    assert_eq!(queued["state"], "queued", "one run of a user at a time");
    // The queued one first: it never starts.
    let (status, body) = post(&app, &token, &format!("/api/v1/runs/{second}/cancel")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    let (status, body) = post(&app, &token, &format!("/api/v1/runs/{first}/cancel")).await;
    assert_eq!(status, 200, "{body}");
    let run = finish(&app, &token, first, Duration::from_secs(30)).await;
    assert_eq!(run["state"], "cancelled", "{run}");
    wait_until(
        "the step's process is gone",
        Duration::from_secs(10),
        async || sleepers(4711).is_empty(),
    )
    .await;
    let (_, run) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{second}")), &token).await;
    assert_eq!(run["state"], "cancelled");
    assert!(run["started_at"].is_null(), "{run}");
}

/// Slots are shared round robin between users: one user's queue of runs
/// does not hold back another's run; a user's queue has a limit.
#[tokio::test]
async fn the_queue_serves_users_in_turn_within_their_limits() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, |c| {
        pipelines_config(c);
        c.pipelines.slots = 2;
        c.pipelines.max_running_per_user = 2;
        c.pipelines.max_queued_per_user = 3;
    }))
    .await;
    let ada = app.user_with_role("ada", "user").await;
    let bob = app.user_with_role("bob", "user").await;
    for t in [&ada, &bob] {
        let (status, body) = push(&app, t, "sleepy", "1", &[("main.cwl", &sleepy(4712))]).await;
        assert_eq!(status, 201, "{body}");
    }
    // Ada fills the slots and her queue; the next is refused.
    let mut ada_runs = Vec::new();
    for _ in 0..5 {
        let (status, run) = submit(&app, &ada, "ada/sleepy", json!({})).await;
        assert_eq!(status, 202, "{run}");
        ada_runs.push(run["id"].as_str().unwrap().to_owned());
        // Each waits to be started, so the queue fills in order.
        if ada_runs.len() <= 2 {
            let n = ada_runs.len();
            wait_until("ada's runs start", Duration::from_secs(60), async || {
                sleepers(4712).len() >= n
            })
            .await;
        }
    }
    let (status, body) = submit(&app, &ada, "ada/sleepy", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("run_quota_exceeded")),
        "{body}"
    );
    // Bob's run is next when a slot frees, before ada's three waiting.
    let (status, bobs) = submit(&app, &bob, "bob/sleepy", json!({})).await;
    assert_eq!(status, 202, "{bobs}");
    let bobs = bobs["id"].as_str().unwrap().to_owned();
    let (status, _) = post(&app, &ada, &format!("/api/v1/runs/{}/cancel", ada_runs[0])).await;
    assert_eq!(status, 200);
    wait_until("bob's run starts", Duration::from_secs(60), async || {
        get_json(&plain(), &app.u(&format!("/api/v1/runs/{bobs}")), &bob)
            .await
            .1["state"]
            == "running"
    })
    .await;
    for id in &ada_runs[2..] {
        let (_, run) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{id}")), &ada).await;
        assert_eq!(run["state"], "queued", "{run}");
    }
    for id in &ada_runs[1..] {
        post(&app, &ada, &format!("/api/v1/runs/{id}/cancel")).await;
    }
    post(&app, &bob, &format!("/api/v1/runs/{bobs}/cancel")).await;
    wait_until("every step ended", Duration::from_secs(30), async || {
        sleepers(4712).is_empty()
    })
    .await;
}

/// The processes whose command line names `text` (a run's id names its
/// directory, in its engine's and its sandboxes' arguments).
fn processes_naming(text: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.windows(text.len()).any(|w| w == text.as_bytes()))
        })
        .collect()
}

/// A run cancelled the moment the scheduler starts it (the slot another
/// cancel freed going to it) is cancelled for good: nothing of it runs
/// once the cancel answered, it does not come back as running and hold
/// the slot, and the next run gets the slot.
#[tokio::test]
async fn a_run_cancelled_while_it_starts_ends_and_frees_its_slot() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, |c| {
        pipelines_config(c);
        c.pipelines.slots = 1;
    }))
    .await;
    let token = app.user_with_role("ada", "user").await;
    for (name, seconds) in [("sleepy", 4713), ("sleepier", 4714)] {
        let (status, body) = push(&app, &token, name, "1", &[("main.cwl", &sleepy(seconds))]).await;
        assert_eq!(status, 201, "{body}");
    }
    let mut ids = Vec::new();
    for pipeline in ["ada/sleepy", "ada/sleepy", "ada/sleepier"] {
        let (status, run) = submit(&app, &token, pipeline, json!({})).await;
        assert_eq!(status, 202, "{run}");
        ids.push(
            run["id"]
                .as_str()
                .unwrap()
                .parse::<insitu_domain::RunId>()
                .unwrap(),
        );
        if ids.len() == 1 {
            wait_until(
                "the first run's step sleeps",
                Duration::from_secs(60),
                async || !sleepers(4713).is_empty(),
            )
            .await;
        }
    }
    let (first, second, third) = (&ids[0], &ids[1], &ids[2]);
    let platform = app.handle.platform();
    let runs = platform.runs();
    let username: insitu_domain::Username = "ada".parse().unwrap();
    let viewer = insitu_core::pipelines::Viewer {
        user_id: platform.accounts().user(&username).await.unwrap().id,
        username,
    };
    // The first ends; the scheduler gives its slot to the second, which is
    // cancelled as soon as it is running, while its engine starts.
    let run = runs.cancel(&viewer, first).await.unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    let start = Instant::now();
    loop {
        let run = runs.own(&viewer, second).await.unwrap();
        if run.state == RunState::Running {
            break;
        }
        assert_eq!(run.state, RunState::Queued, "{run:?}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still not: the second runs"
        );
    }
    let run = runs.cancel(&viewer, second).await.unwrap();
    assert_eq!(run.state, RunState::Cancelled, "{run:?}");
    // Once the third run's step sleeps, the second's engine would have
    // been long started: nothing of the second runs, and it stayed
    // cancelled.
    wait_until(
        "the third run's step sleeps",
        Duration::from_secs(60),
        async || !sleepers(4714).is_empty(),
    )
    .await;
    let left = processes_naming(second.as_str());
    assert!(
        left.is_empty(),
        "the cancelled run's processes live on: {left:?}"
    );
    assert_eq!(
        runs.own(&viewer, second).await.unwrap().state,
        RunState::Cancelled
    );
    runs.cancel(&viewer, third).await.unwrap();
    assert!(sleepers(4713).is_empty() && sleepers(4714).is_empty());
}

/// Bad input gets a stable error code: invalid CWL (with its line), an
/// unknown pipeline or run, a job of the wrong types or naming a file
/// outside the user's places.
#[tokio::test]
async fn bad_input_gets_a_stable_error_code() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    push_shout(&app, &token).await;
    // Invalid CWL: refused at push, its line named; valid at validate.
    let broken = SHOUT.replace("    scatter: word\n", "    scatter: word\n    bogus: [\n");
    let (status, body) = push(
        &app,
        &token,
        "broken",
        "1",
        &[("main.cwl", &broken), ("shout.cwl", SHOUT_TOOL)],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_cwl")),
        "{body}"
    );
    let r = plain()
        .post(app.u("/api/v1/pipelines/validate"))
        .bearer_auth(&token)
        .json(&json!({"main": "main.cwl", "files": {"main.cwl": broken, "shout.cwl": SHOUT_TOOL}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let check: Value = r.json().await.unwrap();
    assert_eq!(check["valid"], false, "{check}");
    let d = &check["diagnostics"][0];
    assert_eq!(d["file"], "main.cwl", "{check}");
    assert!(d["line"].as_u64().unwrap() >= 16, "{check}");
    // A version never changes; a bad licence or name is refused.
    let (status, body) = push(
        &app,
        &token,
        "shout",
        "1.0.0",
        &[("main.cwl", SHOUT), ("shout.cwl", SHOUT_TOOL)],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("pipeline_version_exists")),
        "{body}"
    );
    let (status, body) = push(&app, &token, "../etc", "1", &[("main.cwl", &sleepy(1))]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_pipeline")),
        "{body}"
    );
    // Unknown pipeline and run.
    let (status, body) = submit(&app, &token, "ada/nothing", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("pipeline_not_found")),
        "{body}"
    );
    let (status, body) = get_json(&plain(), &app.u("/api/v1/runs/0123456789ab"), &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("run_not_found")),
        "{body}"
    );
    let (status, body) = get_json(&plain(), &app.u("/api/v1/runs/..%2f..%2fetc"), &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("run_not_found")),
        "{body}"
    );
    // Jobs that do not fit.
    let flag = write_flag(&app, "ada", "ok");
    for job in [
        json!({"words": "not a list", "flag": flag}),
        json!({"words": [1, 2], "flag": flag}),
        json!({"flag": flag}),
        json!({"words": ["a"], "flag": flag, "surprise": 1}),
        json!({"words": ["a"], "flag": {"class": "File", "path": "/home/user/missing.txt"}}),
        json!({"words": ["a"], "flag": {"class": "File", "path": "/etc/passwd"}}),
        json!({"words": ["a"], "flag": {"class": "File", "location": "file:///etc/passwd"}}),
        json!({"words": ["a"], "flag": {"class": "File", "path": "/home/user/../../../etc/passwd"}}),
        json!(["not", "an", "object"]),
    ] {
        let (status, body) = submit(&app, &token, "ada/shout", job.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_job")),
            "{job}: {body}"
        );
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

/// The system pipelines do real science on the demo volumes: source
/// extraction finds the demo generator's sources on every deep field,
/// where they are, at their magnitudes.
#[tokio::test]
async fn source_extraction_finds_the_demo_sources() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    let (_, list) = get_json(&plain(), &app.u("/api/v1/pipelines"), &token).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"source-extraction") && names.contains(&"allsky-cutouts"),
        "{list}"
    );
    let images: Vec<Value> = ["m31", "m42", "ngc253"]
        .iter()
        .map(|f| json!({"class": "File", "path": format!("/media/data/deep-fields/skysim_{f}_g.fits")}))
        .collect();
    let (status, run) = submit(
        &app,
        &token,
        "source-extraction",
        json!({
            "images": images,
            "truth": {"class": "File", "path": "/media/data/source-catalogue/deepfields_sources.fits"},
        }),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &token, &id, Duration::from_secs(600)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(step(&run, "extract")["done"], 3, "{run}");
    let out = workspace(&app, "ada").join("runs").join(&id);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let fields = report["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 3, "{report}");
    for (field, r) in fields {
        // 45 true sources per field; faint ones near the threshold may
        // be missed, but nearly all are found, few are invented, and
        // those found are where the truth puts them.
        assert_eq!(r["expected"], 45, "{field}: {r}");
        assert!(r["completeness"].as_f64().unwrap() >= 0.8, "{field}: {r}");
        assert!(r["false_detections"].as_u64().unwrap() <= 5, "{field}: {r}");
        assert!(
            r["position_rms_arcsec"].as_f64().unwrap() < 0.5,
            "{field}: {r}"
        );
        assert!(
            r["median_dmag"].as_f64().unwrap().abs() < 0.2,
            "{field}: {r}"
        );
    }
    assert!(out.join("sources.csv").is_file());
}

/// The all-sky cut-outs keep the map's pixels with a WCS that puts each
/// target at its centre.
#[tokio::test]
async fn allsky_cutouts_centre_each_target() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    let (status, run) = submit(
        &app,
        &token,
        "allsky-cutouts",
        json!({"map": {"class": "File", "path": "/media/data/allsky-survey/allsky_skysim_car.fits"}}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &token, &id, Duration::from_secs(600)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let out = workspace(&app, "ada").join("runs").join(&id);
    let targets = [
        ("galactic-centre", 0.0, 0.0),
        ("cygnus", 80.0, 1.0),
        ("anticentre", 180.0, 0.0),
        ("dipole", 264.0, 48.0),
    ];
    let mut stats = std::collections::BTreeMap::new();
    for (name, glon, glat) in targets {
        assert!(out.join(format!("{name}.png")).is_file(), "{name}");
        let s: Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{name}.json"))).unwrap())
                .unwrap();
        // The cut-out's own WCS (a plate carrée, as the map's) puts its
        // middle pixel on the target, to within a pixel.
        let hdus = insitu_fits::read_headers(&out.join(format!("{name}.fits"))).unwrap();
        let h = &hdus[0];
        let world = |axis: u8| {
            let n = h.get_f64(&format!("NAXIS{axis}")).unwrap();
            let crpix = h.get_f64(&format!("CRPIX{axis}")).unwrap();
            let crval = h.get_f64(&format!("CRVAL{axis}")).unwrap();
            let cdelt = h.get_f64(&format!("CDELT{axis}")).unwrap();
            (crval + ((n + 1.0) / 2.0 - crpix) * cdelt, cdelt.abs())
        };
        let ((l, dl), (b, db)) = (world(1), world(2));
        let off = (l - glon + 540.0).rem_euclid(360.0) - 180.0;
        assert!(
            off.abs() <= dl && (b - glat).abs() <= db,
            "{name}: ({l}, {b}) for ({glon}, {glat})"
        );
        stats.insert(name, s);
    }
    // The demo sky's truth: the Galactic centre is the brightest of the
    // four; at the dipole's apex the sky is the dipole's 3.36 mK (the
    // plane is far away there).
    let max = |n: &str| stats[n]["max"].as_f64().unwrap();
    for n in ["cygnus", "anticentre", "dipole"] {
        assert!(max("galactic-centre") > 3.0 * max(n), "{stats:?}");
    }
    let dipole = stats["dipole"]["mean"].as_f64().unwrap();
    assert!((dipole - 3.36).abs() < 0.3, "{dipole}");
    assert!(out.join("mosaic.png").is_file());
}

/// A run goes on while the server's process is killed and started again:
/// its engine is re-adopted, the step runs once, and the run finishes
/// with its outputs.
#[tokio::test]
async fn a_run_survives_the_end_of_the_server_process() {
    if !engine_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &Options::default()).await;
    pipelines_config(&mut config);
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let token = server.user_with_role("ada", "user").await;
    let tool = "cwlVersion: v1.2\nclass: CommandLineTool\n\
        baseCommand: [sh, -c, 'sleep 3.713; echo slept']\ninputs: {}\n\
        stdout: slept.txt\noutputs: {slept: {type: stdout}}\n";
    let (status, body) = push(&server, &token, "slow", "1", &[("main.cwl", tool)]).await;
    assert_eq!(status, 201, "{body}");
    let (status, run) = submit(&server, &token, "ada/slow", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let sleeps = || {
        let want = b"sleep\x003.713\x00";
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
            .collect::<Vec<_>>()
    };
    wait_until("the step runs", Duration::from_secs(60), async || {
        !sleeps().is_empty()
    })
    .await;
    let before = sleeps();
    server.end("KILL");
    assert_eq!(sleeps(), before, "the step goes on without the server");
    server.start_again().await;
    let run = finish(&server, &token, &id, Duration::from_secs(60)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert!(run["notice"].is_null(), "nothing ran twice: {run}");
    assert_eq!(run["steps"][0]["jobs"], 1, "{run}");
    let out = server
        .config
        .data_dir
        .join("workspaces/ada/runs")
        .join(&id)
        .join("slept.txt");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "slept\n");
}

/// The real `insitu` binary against a real server, as a script or a lab's
/// terminal uses it (`INSITU_URL`, `INSITU_TOKEN`).
pub(crate) async fn insitu(
    app: &TestApp,
    token: &str,
    cwd: &std::path::Path,
    args: &[&str],
) -> (i32, String, String) {
    let (url, token, cwd) = (app.url.clone(), token.to_owned(), cwd.to_owned());
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_insitu"))
            .args(&args)
            .current_dir(cwd)
            .env("INSITU_URL", url)
            .env("INSITU_TOKEN", token)
            .env("INSITU_CONFIG_DIR", "/nonexistent")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// `insitu runs logs --follow` prints a job's log as the job writes it and
/// returns once the job has ended and everything was printed.
#[tokio::test]
async fn the_cli_follows_a_jobs_log_until_it_ends() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    let slow = "cwlVersion: v1.2\nclass: CommandLineTool\n\
        baseCommand: [sh, -c, 'echo first line >&2; sleep 3; echo second line >&2']\n\
        inputs: {}\noutputs: {}\n";
    let (status, body) = push(&app, &token, "talker", "1", &[("main.cwl", slow)]).await;
    assert_eq!(status, 201, "{body}");
    let (status, run) = submit(&app, &token, "ada/talker", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let mut job = None;
    wait_until("the job runs", Duration::from_secs(60), async || {
        let (_, jobs) =
            get_json(&plain(), &app.u(&format!("/api/v1/runs/{id}/jobs")), &token).await;
        job = jobs["items"][0]["job"].as_u64();
        job.is_some()
    })
    .await;
    let job = job.unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["runs", "logs", &id, "--job", &job, "--follow"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (first, second) = (out.find("first line"), out.find("second line"));
    assert!(first.is_some() && first < second, "{out}");
    // It returned because the job ended, not because it gave up.
    let (_, jobs) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{id}/jobs")), &token).await;
    assert_eq!(jobs["items"][0]["exit_code"], 0, "{jobs}");
}

/// `insitu pipelines validate|push|list` and `insitu runs
/// submit --wait|ls|logs|download`, end to end.
#[tokio::test]
async fn the_cli_pushes_a_pipeline_and_follows_its_run() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let token = app.user_with_role("ada", "user").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("shout");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shout.cwl"), SHOUT_TOOL).unwrap();
    std::fs::write(
        dir.join("main.cwl"),
        SHOUT.replace("in: {word: words}", "in: {word: wrods}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline.toml"),
        "description = \"Shouts\"\nversion = \"2.0.0\"\nkeywords = [\"test\"]\nauthor = \"Ada\"\nlicence = \"MIT\"\nmain = \"main.cwl\"\n",
    )
    .unwrap();
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["pipelines", "validate", "shout/main.cwl"],
    )
    .await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("source 'wrods' does not exist"), "{out}{err}");
    std::fs::write(dir.join("main.cwl"), SHOUT).unwrap();
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["pipelines", "validate", "shout/main.cwl"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = insitu(&app, &token, work.path(), &["pipelines", "push", "shout"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        insitu(&app, &token, work.path(), &["pipelines", "list", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["reference"] == "ada/shout" && p["version"] == "2.0.0"),
        "{list}"
    );

    write_flag(&app, "ada", "ok");
    std::fs::write(
        work.path().join("job.yml"),
        "words: [one, two]\nflag: {class: File, path: /home/user/flag.txt}\n",
    )
    .unwrap();
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["runs", "submit", "ada/shout", "job.yml", "--wait", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    let (code, out, _) = insitu(&app, &token, work.path(), &["runs", "ls"]).await;
    assert_eq!(code, 0);
    assert!(out.contains(id) && out.contains("succeeded"), "{out}");
    let (_, jobs) = get_json(
        &plain(),
        &app.u(&format!("/api/v1/runs/{id}/jobs?step=shout")),
        &token,
    )
    .await;
    let job = jobs["items"][0]["job"].as_u64().unwrap().to_string();
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["runs", "logs", id, "--job", &job],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shouting "), "{out}");
    let (code, _, err) = insitu(
        &app,
        &token,
        work.path(),
        &["runs", "download", id, "-o", "prov.zip"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        &std::fs::read(work.path().join("prov.zip")).unwrap()[..2],
        b"PK"
    );
    // A failing run fails the command, and names why.
    write_flag(&app, "ada", "fail");
    let (code, out, err) = insitu(
        &app,
        &token,
        work.path(),
        &["runs", "submit", "ada/shout", "job.yml", "--wait"],
    )
    .await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("failed"), "{out}{err}");
}

/// A pipeline counting a file's bytes or lines, as a scientist writes it
/// in the development page.
const COUNT: &str = "cwlVersion: v1.2
class: Workflow
label: Count
inputs:
  text: File
  unit: {type: string, default: c}
outputs:
  count: {type: File, outputSource: count/out}
steps:
  count:
    run:
      class: CommandLineTool
      baseCommand: [wc]
      inputs:
        unit: {type: string, inputBinding: {prefix: \"-\", separate: false, position: 1}}
        text: {type: File, inputBinding: {position: 2}}
      stdout: count.txt
      outputs: {out: {type: stdout}}
    in: {text: text, unit: unit}
    out: [out]
";

/// In a real browser: the development page's editor shows a validation
/// error at its line, the fix makes it valid and draws the graph; the
/// pipeline is saved, run from the form made from its inputs, and its
/// page follows the run to its end.
#[tokio::test]
async fn a_scientist_develops_a_pipeline_and_runs_it_in_the_browser() {
    if !engine_available() {
        return;
    }
    let Some(d) = crate::browser::Driver::start().await else {
        return;
    };
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    app.user_with_role("lena", "user").await;
    d.go(&app.u("/pipelines/develop")).await;
    d.wait_for("location.pathname === '/login'").await;
    d.type_into("#username", "lena").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/pipelines/develop'")
        .await;
    d.wait_for("document.querySelector('.CodeMirror') !== null")
        .await;
    // Line 17 indented one space short.
    let broken = COUNT.replace("      stdout: count.txt", "     stdout: count.txt");
    d.script(&format!(
        "document.querySelector('.CodeMirror').CodeMirror.setValue({});",
        serde_json::to_string(&broken).unwrap()
    ))
    .await;
    d.click("#validate").await;
    d.wait_for("document.getElementById('status').textContent.startsWith('CWL invalid')")
        .await;
    let marked = d
        .script(
            "const cm = document.querySelector('.CodeMirror').CodeMirror; \
             const lines = []; cm.eachLine(l => { const i = cm.lineInfo(l); \
             if ((i.bgClass || '').includes('cwl-error-line')) lines.push(i.line + 1); }); return lines;",
        )
        .await;
    assert_eq!(marked, json!([17]), "the error is marked at its line");
    let listed = d
        .script("return document.getElementById('diagnostics').textContent;")
        .await;
    assert!(listed.as_str().unwrap().contains("main.cwl:17"), "{listed}");
    d.screenshot("pipeline-invalid.png").await;

    // The fix, typed at the start of line 17.
    d.script("const cm = document.querySelector('.CodeMirror').CodeMirror; cm.focus(); cm.setCursor({line: 16, ch: 0});").await;
    let input = d.find(".CodeMirror textarea").await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{input}/value"),
        json!({"text": " "}),
    )
    .await;
    let text = d
        .script("return document.querySelector('.CodeMirror').CodeMirror.getValue();")
        .await;
    assert_eq!(text.as_str().unwrap(), COUNT);
    d.click("#validate").await;
    d.wait_for("document.getElementById('status').textContent.startsWith('CWL valid')")
        .await;
    assert_eq!(
        d.script("return document.querySelectorAll('.cwl-error-line').length;")
            .await,
        0
    );
    let graph = d
        .script("return document.querySelector('#graph svg')?.textContent ?? '';")
        .await;
    let graph = graph.as_str().unwrap();
    for node in ["text", "unit", "count"] {
        assert!(graph.contains(node), "{node} in the graph: {graph}");
    }
    d.screenshot("pipeline-valid.png").await;

    d.type_into("#meta-name", "count").await;
    d.type_into("#meta-description", "Counts bytes or lines")
        .await;
    d.type_into("#meta-keywords", "text, count").await;
    d.click("#push").await;
    d.wait_for("location.pathname === '/pipelines/lena/count'")
        .await;
    // The form made from its inputs: a file from a volume, a string.
    d.find("label.field[data-input=text][data-kind=file]").await;
    d.find("label.field[data-input=unit][data-kind=text]").await;
    // The files it offers: the workspace's and the volumes'.
    let offered = d
        .script("return [...document.querySelectorAll('#places option')].map(o => o.value);")
        .await;
    let offered: Vec<&str> = offered
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for place in [
        "/home/user/",
        "/media/data/deep-fields/skysim_m31_g.fits",
        "/media/data/source-catalogue/deepfields_sources.fits",
    ] {
        assert!(offered.contains(&place), "{place} in {offered:?}");
    }
    d.type_into(
        "label.field[data-input=text] input",
        "/media/data/deep-fields/skysim_m31_g.fits",
    )
    .await;
    d.screenshot("pipeline-form.png").await;
    d.click("#submit-run").await;
    d.wait_for("location.pathname.startsWith('/runs/')").await;
    let id = d.script("return location.pathname.split('/')[2];").await;
    let id = id.as_str().unwrap().to_owned();
    let start = Instant::now();
    while d
        .script("return document.getElementById('run-state').textContent;")
        .await
        != "succeeded"
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the page never showed the end"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let step = d
        .script("return document.querySelector('#steps tr[data-step=count] .phase').textContent;")
        .await;
    assert_eq!(step, "succeeded");
    // A job's log, from the jobs' table.
    d.click("#jobs tr[data-job] button.show-log").await;
    d.wait_for("document.getElementById('log-of').textContent.startsWith('of job')")
        .await;
    d.screenshot("run-succeeded.png").await;
    let size = std::fs::metadata(app.dir.path().join("volumes/deep-fields/skysim_m31_g.fits"))
        .unwrap()
        .len();
    let count = std::fs::read_to_string(
        workspace(&app, "lena")
            .join("runs")
            .join(&id)
            .join("count.txt"),
    )
    .unwrap();
    assert!(
        count.starts_with(&size.to_string()),
        "{count} for {size} bytes"
    );
}

/// The retention rule: once `pipelines.keep_intermediate` has passed
/// since a run ended, its job directories and cache go; its outputs,
/// logs and provenance stay.
#[tokio::test]
async fn intermediate_files_go_after_the_retention_time_and_outputs_stay() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, |c| {
        pipelines_config(c);
        c.pipelines.keep_intermediate = "1s".to_owned();
    }))
    .await;
    let token = app.user_with_role("ada", "user").await;
    push_shout(&app, &token).await;
    let flag = write_flag(&app, "ada", "ok");
    let (_, run) = submit(
        &app,
        &token,
        "ada/shout",
        json!({"words": ["a"], "flag": flag}),
    )
    .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &token, &id, Duration::from_secs(120)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let runs = app.handle.platform().runs();
    let dir = runs.run_dir(&id.parse().unwrap());
    let cache = app.dir.path().join("data/run-cache");
    let cached = || walk(&cache);
    assert!(dir.join("work").is_dir(), "job directories while kept");
    assert!(cached() > 0, "a cache while kept");
    // Not yet: it ended less than the time ago.
    assert_eq!(runs.sweep().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(runs.sweep().await.unwrap(), 1);
    assert!(!dir.join("work").exists());
    assert_eq!(cached(), 0, "the cache is gone");
    let out = workspace(&app, "ada")
        .join("runs")
        .join(&id)
        .join("joined.txt");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "A\n");
    let (status, log) = get_json(
        &plain(),
        &app.u(&format!("/api/v1/runs/{id}/logs?job=1")),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let r = plain()
        .get(app.u(&format!("/api/v1/runs/{id}/provenance")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Swept once only.
    assert_eq!(runs.sweep().await.unwrap(), 0);
}

/// Files below a directory, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

/// A developer pushes a version of their own pipeline to the system
/// catalogue; every user then runs it by its bare name. A user may not.
#[tokio::test]
async fn a_developer_pushes_their_pipeline_to_the_system_catalogue() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let dev = app.user_with_role("dev", "developer").await;
    let user = app.user_with_role("ada", "user").await;
    push_shout(&app, &user).await;
    let (status, body) = post(
        &app,
        &user,
        "/api/v1/pipelines/ada/shout/versions/1.0.0/push-to-system",
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    push_shout(&app, &dev).await;
    let (status, body) = post(
        &app,
        &dev,
        "/api/v1/pipelines/dev/shout/versions/1.0.0/push-to-system",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reference"], "shout", "{body}");
    let (_, list) = get_json(&plain(), &app.u("/api/v1/pipelines"), &user).await;
    let shout = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["reference"] == "shout")
        .cloned();
    let shout = shout.unwrap();
    assert_eq!(
        (shout["owner"].as_str(), shout["origin"].as_str()),
        (Some("system"), Some("pushed")),
        "{list}"
    );
    let flag = write_flag(&app, "ada", "ok");
    let (status, run) = submit(
        &app,
        &user,
        "shout",
        json!({"words": ["sys"], "flag": flag}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let run = finish(
        &app,
        &user,
        run["id"].as_str().unwrap(),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
}

/// When the engine is gone too (the machine rebooted, say), the run is
/// queued again and resumes from its cache: the step that finished is
/// reused, the one cut short runs again, and the user is told.
#[tokio::test]
async fn a_run_whose_engine_died_with_the_server_resumes_and_says_so() {
    if !engine_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &Options::default()).await;
    pipelines_config(&mut config);
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let token = server.user_with_role("ada", "user").await;
    let workflow = "cwlVersion: v1.2\nclass: Workflow\ninputs: {}\n\
        outputs: {out: {type: File, outputSource: second/out}}\nsteps:\n\
        \x20 first:\n    run:\n      class: CommandLineTool\n      baseCommand: [echo, first]\n\
        \x20     inputs: {}\n      stdout: first.txt\n      outputs: {out: {type: stdout}}\n\
        \x20   in: {}\n    out: [out]\n\
        \x20 second:\n    run:\n      class: CommandLineTool\n\
        \x20     baseCommand: [sh, -c, 'sleep 2.717; cat \"$0\"']\n\
        \x20     inputs: {f: {type: File, inputBinding: {position: 1}}}\n\
        \x20     stdout: second.txt\n      outputs: {out: {type: stdout}}\n\
        \x20   in: {f: first/out}\n    out: [out]\n";
    let (status, body) = push(&server, &token, "two", "1", &[("main.cwl", workflow)]).await;
    assert_eq!(status, 201, "{body}");
    let (_, run) = submit(&server, &token, "ada/two", json!({})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let sleeps = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c == b"sleep\x002.717\x00")
            })
            .count()
    };
    wait_until(
        "the second step runs",
        Duration::from_secs(60),
        async || sleeps() > 0,
    )
    .await;
    server.end("KILL");
    // The engine and its tools go too, as in a reboot.
    let groups = insitu_launcher::Cgroups::detect("insitu-runs");
    assert!(groups.kill_and_remove(&id), "the run had a control group");
    wait_until("the step is gone", Duration::from_secs(10), async || {
        sleeps() == 0
    })
    .await;
    server.start_again().await;
    let run = finish(&server, &token, &id, Duration::from_secs(60)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let notice = run["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("queued again"), "the user is told: {run}");
    assert_eq!(run["steps"][0]["step"], "first", "{run}");
    assert_eq!(
        run["steps"][0]["reused"], 1,
        "the finished step is reused: {run}"
    );
    assert_eq!(run["steps"][1]["reused"], 0, "{run}");
    let out = server
        .config
        .data_dir
        .join("workspaces/ada/runs")
        .join(&id)
        .join("second.txt");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "first\n");
}
