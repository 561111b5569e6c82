//! The CLI as a script uses it: the real `insitu` binary against a real
//! server, JSON output, exit codes and the credentials file.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::*;

struct Cli {
    config_dir: tempfile::TempDir,
}

fn run(dir: &std::path::Path, args: &[String], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(args)
        .env("INSITU_CONFIG_DIR", dir)
        .env_remove("INSITU_URL")
        .env_remove("INSITU_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Cli {
    fn new() -> Cli {
        Cli {
            config_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Logs in to the platform at `url` as `who` (with the tests' password).
    async fn login(&self, url: &str, who: &str) {
        let (code, _, err) = self
            .run_async(
                &["login", url, "--username", who, "--password-stdin"],
                Some(&format!("{PASSWORD}\n")),
            )
            .await;
        assert_eq!(code, 0, "{err}");
    }

    /// Runs the binary off the async threads, so the in-process server answers.
    async fn run_async(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let dir = self.config_dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || run(&dir, &args, stdin.as_deref()))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn login_whoami_listings_and_exit_codes() {
    let app = spawn_app().await;
    app.user_with_role("jane", "developer").await;
    let cli = Cli::new();

    let (code, _, err) = cli.run_async(&["whoami"], None).await;
    assert_eq!(code, 3, "not logged in: {err}");

    let (code, _, err) = cli
        .run_async(
            &["login", &app.url, "--username", "jane", "--password-stdin"],
            Some("wrong\n"),
        )
        .await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("invalid_credentials"), "{err}");

    let (code, out, err) = cli
        .run_async(
            &["login", &app.url, "--username", "jane", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("logged in"), "{out}");
    let creds = cli.config_dir.path().join("credentials.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&creds).unwrap().contains("insitu_"));

    let (code, out, _) = cli.run_async(&["whoami", "--json"], None).await;
    assert_eq!(code, 0);
    let me: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("jane"), Some("developer"))
    );

    let (code, out, _) = cli
        .run_async(&["datalabs", "list", "--json", "--kind", "desktop"], None)
        .await;
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    let (code, out, _) = cli.run_async(&["datalabs", "list"], None).await;
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(out.contains("jupyterlab") && out.contains("web"));

    let (code, out, _) = cli
        .run_async(&["volumes", "add", "allsky-survey"], None)
        .await;
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = cli
        .run_async(&["volumes", "list", "--mine", "--json"], None)
        .await;
    assert_eq!(code, 0);
    let mine: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(mine[0]["name"], "allsky-survey");
    let (code, _, _) = cli
        .run_async(&["volumes", "remove", "allsky-survey"], None)
        .await;
    assert_eq!(code, 0);
    let (code, _, err) = cli
        .run_async(&["volumes", "add", "no-such-volume"], None)
        .await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("volume_not_found"));

    let (code, _, _) = cli.run_async(&["volumes", "frobnicate"], None).await;
    assert_eq!(code, 2, "usage errors");

    let (code, out, _) = cli.run_async(&["logout"], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(!creds.exists());
    let (code, _, _) = cli.run_async(&["whoami"], None).await;
    assert_eq!(code, 3);

    let (code, _, _) = cli
        .run_async(
            &[
                "login",
                "http://127.0.0.1:9",
                "--username",
                "x",
                "--password-stdin",
            ],
            Some("y\n"),
        )
        .await;
    assert_eq!(code, 6, "unreachable server");
}

#[tokio::test]
async fn labs_launch_wait_logs_and_stop() {
    if !std::path::Path::new("/usr/bin/bwrap").exists() {
        assert!(std::env::var("INSITU_REQUIRE_SANDBOX").as_deref() != Ok("1"));
        return;
    }
    let app = spawn_app().await;
    app.user_with_role("rosa", "user").await;
    let cli = Cli::new();
    cli.login(&app.url, "rosa").await;

    let (code, out, err) = cli
        .run_async(
            &[
                "labs",
                "launch",
                "testapp",
                "--volume",
                "deep-fields",
                "--wait",
            ],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("[#####] ready"),
        "a progress bar up to ready: {err}"
    );
    assert!(err.contains("is running"), "{err}");
    let _ = out;
    let (code, out, _) = cli.run_async(&["labs", "ls", "--json"], None).await;
    assert_eq!(code, 0);
    let labs: Value = serde_json::from_str(&out).unwrap();
    let id = labs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(labs[0]["state"], "running");
    let (code, out, _) = cli.run_async(&["labs", "logs", &id], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("webapp listening"), "{out}");
    let (code, out, err) = cli
        .run_async(&["labs", "launch", "testapp", "--open"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let link = out.lines().last().unwrap_or_default().to_owned();
    assert!(
        link.contains("/_insitu/auth?ticket="),
        "a single-use link to the proxy: {out}"
    );
    let r = browser().get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303, "the link opens the lab");
    let opened = link
        .split("/labs/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (code, _, _) = cli.run_async(&["labs", "stop", &opened], None).await;
    assert_eq!(code, 0);
    let (code, out, _) = cli.run_async(&["labs", "stop", &id], None).await;
    assert_eq!(
        (code, out.trim()),
        (0, format!("lab {id} stopped").as_str())
    );

    let (code, _, err) = cli
        .run_async(&["labs", "launch", "crashes", "--wait"], None)
        .await;
    assert_eq!(code, 1, "a failed launch is a failure: {err}");
    assert!(err.contains("fatal: no licence server"), "{err}");
    let (code, _, _) = cli.run_async(&["labs", "stop", "nope"], None).await;
    assert_eq!(code, 5);
}

/// `insitu cwl` hands over to the CWL engine: the output object on stdout,
/// the engine's exit codes (33: unsupported), validation messages.
#[test]
fn cwl_pipelines_run_through_insitu() {
    let bin = env!("CARGO_BIN_EXE_insitu");
    let probe = Command::new(bin)
        .args(["cwl", "validate", "/nonexistent.cwl"])
        .output()
        .unwrap();
    let missing = String::from_utf8_lossy(&probe.stderr).contains("is not installed");
    if missing {
        assert!(
            std::env::var("INSITU_REQUIRE_CWL").as_deref() != Ok("1"),
            "the CWL engine is required but not built"
        );
        eprintln!("skipping: the CWL engine is not built");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("count.cwl");
    std::fs::write(
        &tool,
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [wc, -c]\n\
         inputs:\n  text: {type: File, inputBinding: {position: 1}}\n\
         stdout: count.txt\noutputs:\n  count: {type: stdout}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("in.txt"), "twelve bytes").unwrap();
    let job = dir.path().join("job.yml");
    std::fs::write(&job, "text: {class: File, path: in.txt}\n").unwrap();
    let out = dir.path().join("out");
    let run = Command::new(bin)
        .args(["cwl", "run", "--quiet", "--outdir"])
        .arg(&out)
        .arg(&tool)
        .arg(&job)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(result["count"]["basename"], "count.txt");
    let counted = std::fs::read_to_string(out.join("count.txt")).unwrap();
    assert!(counted.trim_start().starts_with("12 "), "{counted}");

    let bad = dir.path().join("bad.cwl");
    std::fs::write(
        &bad,
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputz: []\noutputs: []\n",
    )
    .unwrap();
    let v = Command::new(bin)
        .args(["cwl", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!v.status.success());
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("inputz"),
        "names the unknown field"
    );

    let op = dir.path().join("op.cwl");
    std::fs::write(
        &op,
        "cwlVersion: v1.2\nclass: Operation\ninputs: []\noutputs: []\n",
    )
    .unwrap();
    let u = Command::new(bin)
        .args(["cwl", "run"])
        .arg(&op)
        .output()
        .unwrap();
    assert_eq!(
        u.status.code(),
        Some(33),
        "unsupported is 33, as cwl-runners say"
    );
}

#[tokio::test]
async fn search_and_harvest_from_the_command_line() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    crate::discovery::harvested(&app, &admin).await;
    let cli = Cli::new();
    let (code, _, err) = cli
        .run_async(
            &["login", &app.url, "--username", "admin", "--password-stdin"],
            Some(ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli
        .run_async(
            &[
                "search",
                "object:m31",
                "--facet",
                "type=dataset",
                "--facet",
                "filter=g",
                "--json",
            ],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["items"][0]["id"], "dataset:deep-fields/skysim_m31_g.fits");
    let (code, out, err) = cli
        .run_async(
            &["search", "--cone", "83.82", "-5.39", "0.05", "--counts"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("skysim_m42_g.fits") && out.contains("type: "),
        "{out}"
    );
    assert!(!out.contains("skysim_m31_g.fits"), "{out}");
    let (code, _, err) = cli
        .run_async(&["search", "--facet", "colour=red"], None)
        .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown_facet"), "{err}");
    let (code, out, err) = cli.run_async(&["harvest", "--wait"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("harvest done") && out.contains("0 read"),
        "{out}"
    );
}

#[tokio::test]
async fn teams_from_the_command_line() {
    let app = spawn_app().await;
    app.user_with_role("tara", "user").await;
    app.user_with_role("tom", "user").await;
    let (tara, tom) = (Cli::new(), Cli::new());
    for (cli, who) in [(&tara, "tara"), (&tom, "tom")] {
        cli.login(&app.url, who).await;
    }
    let (code, out, err) = tara.run_async(&["teams", "create", "optics"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/home/user/team_workspaces/optics"), "{out}");
    let (code, _, err) = tara.run_async(&["teams", "create", "Optics!"], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invalid_team_name"), "{err}");
    let (code, _, err) = tara
        .run_async(&["teams", "invite", "optics", "tom"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tom
        .run_async(&["teams", "invite", "optics", "tara"], None)
        .await;
    assert_eq!(code, 4, "an invitee is no owner: {err}");
    let (code, _, err) = tom.run_async(&["teams", "accept", "optics"], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = tom.run_async(&["teams", "list", "--json"], None).await;
    assert_eq!(code, 0, "{err}");
    let teams: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(teams[0]["name"], "optics");
    assert_eq!(teams[0]["accepted"], true);
    let (code, _, err) = tara.run_async(&["teams", "leave", "optics"], None).await;
    assert_eq!(code, 1, "the last owner stays: {err}");
    assert!(err.contains("last_owner"), "{err}");
    let (code, _, err) = tara
        .run_async(&["teams", "role", "optics", "tom", "owner"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tara.run_async(&["teams", "leave", "optics"], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = tom.run_async(&["teams", "show", "optics"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tom") && !out.contains("tara"), "{out}");
    let (code, _, err) = tara.run_async(&["teams", "show", "optics"], None).await;
    assert_eq!(code, 5, "{err}");
}

#[tokio::test]
async fn sharing_a_lab_from_the_command_line() {
    if !std::path::Path::new("/usr/bin/bwrap").exists() {
        assert!(std::env::var("INSITU_REQUIRE_SANDBOX").as_deref() != Ok("1"));
        return;
    }
    let app = spawn_app().await;
    app.user_with_role("rosa", "user").await;
    app.user_with_role("tom", "user").await;
    let (rosa, tom) = (Cli::new(), Cli::new());
    for (cli, who) in [(&rosa, "rosa"), (&tom, "tom")] {
        cli.login(&app.url, who).await;
    }
    let (code, _, err) = rosa
        .run_async(&["labs", "launch", "testapp", "--wait"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = rosa.run_async(&["labs", "ls", "--json"], None).await;
    let labs: Value = serde_json::from_str(&out).unwrap();
    let id = labs[0]["id"].as_str().unwrap().to_owned();
    let (code, _, err) = tom.run_async(&["labs", "open", &id], None).await;
    assert_eq!(code, 5, "not shared yet: {err}");
    let (code, _, err) = rosa.run_async(&["labs", "share", &id, "rosa"], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invalid_share"), "{err}");
    let (code, _, err) = rosa.run_async(&["labs", "share", &id, "tom"], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = tom.run_async(&["labs", "shared", "--json"], None).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()[0]["id"],
        id.as_str()
    );
    let (code, out, err) = tom.run_async(&["labs", "open", &id], None).await;
    assert_eq!(code, 0, "{err}");
    let r = browser().get(out.trim()).send().await.unwrap();
    assert_eq!(r.status(), 303, "tom's link opens the lab");
    let (code, out, _) = rosa
        .run_async(&["labs", "shares", &id, "--json"], None)
        .await;
    assert_eq!(code, 0);
    let sharing: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sharing["shared_with"], serde_json::json!(["tom"]));
    assert_eq!(sharing["connected"][0]["username"], "tom", "{sharing}");
    let (code, _, _) = tom.run_async(&["labs", "stop", &id], None).await;
    assert_eq!(code, 5, "a shared user does not stop the lab");
    let (code, _, err) = rosa.run_async(&["labs", "unshare", &id, "tom"], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = tom.run_async(&["labs", "open", &id], None).await;
    assert_eq!(code, 5);
    let (code, _, _) = rosa.run_async(&["labs", "stop", &id], None).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_developer_creates_builds_and_follows_a_datalab_from_the_cli() {
    if !crate::devlabs::containers_available() {
        return;
    }
    let app = spawn_app().await;
    app.user_with_role("dev", "developer").await;
    let cli = Cli::new();
    cli.login(&app.url, "dev").await;
    let (code, out, err) = cli.run_async(&["devlabs", "templates"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web-tool") && out.contains("python"), "{out}");
    let (code, out, err) = cli
        .run_async(
            &["devlabs", "create", "clitool", "--template", "web-tool"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("clitool"), "{out}");
    let (code, _, err) = cli
        .run_async(&["devlabs", "create", "Bad Name"], None)
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("invalid_devlab_name"), "{err}");
    // The log comes as the build runs, and the command ends with it.
    let (code, out, err) = cli
        .run_async(&["devlabs", "build", "clitool", "--follow"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("COPY app.py"), "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (code, out, _) = cli.run_async(&["devlabs", "ls", "--json"], None).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"][0]["builds"][0]["state"], "succeeded", "{v}");
    let (code, out, err) = cli
        .run_async(&["devlabs", "submit", "clitool", "0"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("submitted"), "{out}");
}

#[tokio::test]
async fn moderators_list_approve_and_deny_access_requests() {
    let app = spawn_app().await;
    app.user_with_role("mona", "moderator").await;
    let ada = crate::access::applied(&app, "ada").await;
    let bob = crate::access::applied(&app, "bobby").await;
    let cli = Cli::new();
    cli.login(&app.url, "mona").await;

    let (code, out, err) = cli.run_async(&["access", "ls"], None).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PLACE"),
        "{out}"
    );
    assert!(
        lines[1].contains("ada") && lines[2].contains("bobby"),
        "{out}"
    );
    let (code, out, _) = cli.run_async(&["access", "ls", "--json"], None).await;
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let id = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["username"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ada_id, bob_id) = (id("ada"), id("bobby"));

    let (code, out, err) = cli
        .run_async(
            &["access", "approve", &ada_id, "--message", "Welcome"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved ada"), "{out}");
    let (code, _, err) = cli.run_async(&["access", "approve", &ada_id], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("access_request_decided"), "{err}");
    let (code, out, err) = cli
        .run_async(&["access", "deny", &bob_id, "--message", "Not now"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("denied bobby"), "{out}");

    let (_, s) = crate::access::status_of(&app, &ada).await;
    assert_eq!(
        (s["state"].as_str(), s["message"].as_str()),
        (Some("approved"), Some("Welcome"))
    );
    let (_, s) = crate::access::status_of(&app, &bob).await;
    assert_eq!(
        (s["state"].as_str(), s["message"].as_str()),
        (Some("denied"), Some("Not now"))
    );
    let (code, out, _) = cli.run_async(&["access", "ls"], None).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "none waits: {out}");
    let (code, out, _) = cli
        .run_async(&["access", "ls", "--state", "all", "--json"], None)
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn owners_rename_and_delete_teams_from_the_cli() {
    let app = spawn_app().await;
    app.user_with_role("rita", "user").await;
    let cli = Cli::new();
    cli.login(&app.url, "rita").await;
    let (code, _, err) = cli.run_async(&["teams", "create", "optics"], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli
        .run_async(&["teams", "rename", "optics", "photonics"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("renamed optics to photonics"), "{out}");
    let (code, out, _) = cli.run_async(&["teams", "list", "--json"], None).await;
    assert_eq!(code, 0);
    let teams: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(teams[0]["name"], "photonics");
    let (code, out, err) = cli.run_async(&["teams", "delete", "photonics"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted team photonics"), "{out}");
    let (code, _, err) = cli.run_async(&["teams", "show", "photonics"], None).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("team_not_found"), "{err}");
}

/// `insitu zones` lists every datazone with its kind and volumes, the
/// default marked, and says when a cluster's scheduler cannot be asked.
#[tokio::test]
async fn zones_from_the_command_line() {
    let app = spawn_configured(Options::default(), |c| {
        crate::slurm_labs::with_cluster(c, std::path::Path::new("/nonexistent/slurm.conf"));
    })
    .await;
    app.user_with_role("zoe", "user").await;
    let cli = Cli::new();
    cli.login(&app.url, "zoe").await;
    let (code, out, err) = cli.run_async(&["zones"], None).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert!(
        lines[1].starts_with("local (default)") && lines[1].contains("deep-fields"),
        "{out}"
    );
    let cluster = lines
        .iter()
        .find(|l| l.starts_with(crate::slurm_labs::CLUSTER))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        cluster.contains("slurm")
            && cluster.contains(crate::slurm_labs::CLUSTER_VOLUME)
            && cluster.contains("unavailable"),
        "{out}"
    );
    let (code, out, _) = cli.run_async(&["zones", "--json"], None).await;
    assert_eq!(code, 0);
    let zones: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(zones[0]["name"], "local");
    assert_eq!(zones[1]["name"], crate::slurm_labs::CLUSTER);
}
