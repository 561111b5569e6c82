//! A confined run (`--allow-root DIR... --run-as UID:GID`), as the platform
//! makes for its users: documents, job orders and inputs only from under
//! the allowed roots (links resolved), tools as an unprivileged user
//! without capabilities, container builds with the network only when the
//! tool has `NetworkAccess`.

use super::{IMAGE, Scratch, bwrap_works, podman_ready};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An allowed root (the scratch directory, readable by the tools' user)
/// and, outside it, a directory with a secret.
struct Places {
    s: Scratch,
    outside: tempfile::TempDir,
    secret: String,
}

impl Places {
    fn new() -> Places {
        let s = Scratch::new();
        std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let outside = tempfile::Builder::new()
            .prefix("outside-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let secret = format!("SECRET-{}", outside.path().display());
        std::fs::write(outside.path().join("secret.txt"), &secret).unwrap();
        Places { s, outside, secret }
    }

    fn root(&self) -> String {
        self.s.path().display().to_string()
    }

    fn out(&self, name: &str) -> PathBuf {
        self.outside.path().join(name)
    }

    /// Run confined to the scratch directory; the run must fail naming
    /// what lies outside, and the secret must appear nowhere.
    fn refused(&self, args: &[&str], why: &str) {
        let _ = std::fs::remove_dir_all(self.s.path().join("out"));
        let root = self.root();
        let mut all = vec!["--quiet", "--allow-root", &root];
        all.extend(args);
        let r = self.s.run(&all);
        let err = r.stderr();
        assert_eq!(r.code(), 1, "{why}: {err}\n{}", r.stdout());
        assert!(
            err.contains("outside the directories this run may read"),
            "{why}: {err}"
        );
        assert!(!err.contains(&self.secret), "{why}: {err}");
        assert!(!r.stdout().contains(&self.secret), "{why}");
        assert!(
            !super::outputs_hold(&self.s.path().join("out"), &self.secret),
            "{why}: the secret reached the outputs"
        );
    }

    /// The same run, unconfined, works: the limit is what refuses it.
    fn works_unconfined(&self, args: &[&str], why: &str) {
        let mut all = vec!["--quiet"];
        all.extend(args);
        let r = self.s.run(&all);
        assert_eq!(r.code(), 0, "{why}: {}", r.stderr());
    }
}

const CAT: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: {f: {type: File, inputBinding: {}}}
outputs: {out: stdout}
stdout: out.txt
";

#[test]
fn documents_come_only_from_the_allowed_roots() {
    let p = Places::new();
    let s = &p.s;
    s.file("cat.cwl", CAT);
    s.file("in.txt", "mine\n");
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    let root = p.root();
    let r = s.run(&["--quiet", "--allow-root", &root, "cat.cwl", "job.json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    // The document itself, and through a link.
    std::fs::write(p.out("tool.cwl"), CAT).unwrap();
    let outside_tool = p.out("tool.cwl").display().to_string();
    p.refused(&[&outside_tool, "job.json"], "a document outside");
    std::os::unix::fs::symlink(p.out("tool.cwl"), s.path().join("link.cwl")).unwrap();
    p.refused(&["link.cwl", "job.json"], "a document linked from outside");
    p.works_unconfined(&["link.cwl", "job.json"], "a document linked from outside");
    // $include and $import.
    s.file(
        "include.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
arguments: [{{$include: {}}}]
inputs: []
outputs: {{out: stdout}}
",
            p.out("secret.txt").display()
        ),
    );
    p.refused(&["include.cwl"], "$include from outside");
    std::fs::write(p.out("inputs.yml"), "f: File\n").unwrap();
    s.file(
        "import.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: {{$import: {}}}
outputs: {{out: stdout}}
",
            p.out("inputs.yml").display()
        ),
    );
    p.refused(&["import.cwl", "job.json"], "$import from outside");
    // A step's run, and the job order.
    s.file(
        "wf.cwl",
        &super::one_step(&outside_tool, &[("f", "File")], &[("out", "File")]),
    );
    p.refused(&["wf.cwl", "job.json"], "run: from outside");
    p.works_unconfined(&["wf.cwl", "job.json"], "run: from outside");
    std::fs::write(
        p.out("job.json"),
        r#"{"f": {"class": "File", "path": "x"}}"#,
    )
    .unwrap();
    let outside_job = p.out("job.json").display().to_string();
    p.refused(&["cat.cwl", &outside_job], "a job order outside");
    // A format's schema file.
    s.file(
        "format.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
$schemas: [{}]
baseCommand: cat
inputs: {{f: {{type: File, format: 'http://example.org/x', inputBinding: {{}}}}}}
outputs: {{out: stdout}}
",
            p.out("secret.txt").display()
        ),
    );
    p.refused(&["format.cwl", "job.json"], "$schemas from outside");
}

#[test]
fn inputs_come_only_from_the_allowed_roots() {
    let p = Places::new();
    let s = &p.s;
    s.file("cat.cwl", CAT);
    let secret = p.out("secret.txt").display().to_string();
    // A job order's File, directly and through a link.
    s.file(
        "direct.json",
        &serde_json::json!({"f": {"class": "File", "location": format!("file://{secret}")}})
            .to_string(),
    );
    p.refused(&["cat.cwl", "direct.json"], "an input outside");
    p.works_unconfined(&["cat.cwl", "direct.json"], "an input outside");
    std::os::unix::fs::symlink(&secret, s.path().join("link.txt")).unwrap();
    s.file(
        "link.json",
        r#"{"f": {"class": "File", "path": "link.txt"}}"#,
    );
    p.refused(&["cat.cwl", "link.json"], "an input linked from outside");
    // A Directory.
    s.file(
        "ls.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [ls, -R]
inputs: {d: {type: Directory, inputBinding: {}}}
outputs: {out: stdout}
",
    );
    s.file(
        "dir.json",
        &serde_json::json!({"d": {"class": "Directory", "path": p.outside.path()}}).to_string(),
    );
    p.refused(&["ls.cwl", "dir.json"], "a directory outside");
    // A default in the document.
    s.file(
        "default.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: {{f: {{type: File, default: {{class: File, location: 'file://{secret}'}}, inputBinding: {{}}}}}}
outputs: {{out: stdout}}
"
        ),
    );
    p.refused(&["default.cwl"], "a default outside");
    // A secondary file found beside an input.
    s.file("in.txt", "mine\n");
    let rel = pathdiff(&p.out("secret.txt"), s.path());
    s.file(
        "secondary.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
requirements: {{InlineJavascriptRequirement: {{}}}}
baseCommand: cat
inputs:
  f:
    type: File
    secondaryFiles: [{{pattern: '${{return \"{rel}\";}}', required: false}}]
    inputBinding: {{}}
outputs: {{out: stdout}}
"
        ),
    );
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    p.refused(&["secondary.cwl", "job.json"], "a secondary file outside");
    // An InitialWorkDir entry naming a location.
    s.file(
        "iwd.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InitialWorkDirRequirement:
    listing: [{{class: File, location: 'file://{secret}', basename: copied.txt}}]
baseCommand: [cat, copied.txt]
inputs: []
outputs: {{out: stdout}}
"
        ),
    );
    p.refused(&["iwd.cwl"], "an InitialWorkDir entry outside");
    // A step input's default read by loadContents.
    s.file(
        "echo.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs: {text: {type: string, inputBinding: {}}}
outputs: {out: stdout}
",
    );
    s.file(
        "contents.cwl",
        &format!(
            "cwlVersion: v1.2
class: Workflow
requirements: {{StepInputExpressionRequirement: {{}}}}
inputs: []
outputs: {{out: {{type: File, outputSource: s/out}}}}
steps:
  s:
    run: echo.cwl
    in:
      text:
        default: {{class: File, location: 'file://{secret}'}}
        loadContents: true
        valueFrom: $(self.contents)
    out: [out]
"
        ),
    );
    p.refused(&["contents.cwl"], "a step default outside, loaded");
    p.works_unconfined(&["contents.cwl"], "a step default outside, loaded");
    // An ExpressionTool's output.
    s.file(
        "expr.cwl",
        &format!(
            "cwlVersion: v1.2
class: ExpressionTool
requirements: {{InlineJavascriptRequirement: {{}}}}
inputs: []
outputs: {{out: File}}
expression: '${{return {{\"out\": {{\"class\": \"File\", \"location\": \"file://{secret}\"}}}};}}'
"
        ),
    );
    p.refused(&["expr.cwl"], "an expression's output outside");
    // Files a run makes itself pass between its steps.
    s.file(
        "two.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: {f: File}
outputs: {out: {type: File, outputSource: b/out}}
steps:
  a: {run: cat.cwl, in: {f: f}, out: [out]}
  b: {run: cat.cwl, in: {f: a/out}, out: [out]}
",
    );
    let root = p.root();
    let r = s.run(&["--quiet", "--allow-root", &root, "two.cwl", "job.json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.json();
    assert_eq!(
        std::fs::read_to_string(out["out"]["path"].as_str().unwrap()).unwrap(),
        "mine\n"
    );
}

/// `to` relative to the directory `from`.
fn pathdiff(to: &Path, from: &Path) -> String {
    let up = from.components().count() - 1;
    format!(
        "{}{}",
        "../".repeat(up),
        to.strip_prefix("/").unwrap().display()
    )
}

/// Whether this test runs as root (only root can switch tools' users).
fn root() -> bool {
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    if uid != 0 {
        eprintln!("skipping: --run-as needs the engine to run as root");
    }
    uid == 0
}

const PROBE: &str = "cwlVersion: v1.2
class: CommandLineTool
requirements:
  ShellCommandRequirement: {}
  InitialWorkDirRequirement:
    listing: [{entryname: w.txt, entry: \"start\\n\", writable: true}]
inputs: {f: File}
arguments:
  - shellQuote: false
    valueFrom: >-
      echo ids=`id -u`:`id -g`:`id -G`;
      grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status | tr -d '\\t';
      cat $(inputs.f.path);
      echo more >> w.txt && echo IWD_WRITABLE;
      echo x > $HOME/h && echo HOME_WRITABLE;
      echo y > $TMPDIR/t && echo TMP_WRITABLE
outputs:
  log: stdout
  w: {type: File, outputBinding: {glob: w.txt}}
stdout: log.txt
";

#[test]
fn tools_run_as_the_given_user_without_capabilities() {
    if !root() || !bwrap_works() {
        return;
    }
    let p = Places::new();
    let s = &p.s;
    s.file("probe.cwl", PROBE);
    s.file(
        "wf.cwl",
        &super::one_step(
            "probe.cwl",
            &[("f", "File")],
            &[("log", "File"), ("w", "File")],
        ),
    );
    s.file("in.txt", "mine\n");
    std::fs::set_permissions(
        s.path().join("in.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    // A lone tool (its own sandbox), a workflow's job (the shared
    // sandbox), a sandbox per job, and plain processes.
    for (doc, mode) in [
        ("probe.cwl", None),
        ("wf.cwl", None),
        ("wf.cwl", Some("--sandbox-per-step")),
        ("probe.cwl", Some("--no-sandbox")),
    ] {
        let mut args = vec!["--quiet", "--run-as", "65534:65534"];
        args.extend(mode);
        args.extend([doc, "job.json"]);
        let r = s.run(&args);
        assert_eq!(r.code(), 0, "{args:?}: {}", r.stderr());
        let out = r.json();
        let log = std::fs::read_to_string(out["log"]["path"].as_str().unwrap()).unwrap();
        for want in [
            "ids=65534:65534:65534\n",
            "CapPrm:0000000000000000\n",
            "CapEff:0000000000000000\n",
            "CapAmb:0000000000000000\n",
            "mine\n",
            "IWD_WRITABLE",
            "HOME_WRITABLE",
            "TMP_WRITABLE",
        ] {
            assert!(log.contains(want), "{args:?}: {want}: {log}");
        }
    }
    for bad in ["0:0", "65534:0", "nobody"] {
        let r = s.run(&["--quiet", "--run-as", bad, "probe.cwl", "job.json"]);
        assert!(r.code() == 1 || r.code() == 2, "{bad}: {}", r.stderr());
        assert!(r.stderr().contains("--run-as"), "{bad}: {}", r.stderr());
    }
}

#[test]
fn a_finished_jobs_results_stay_read_only_for_the_tools_user() {
    if !root() || !bwrap_works() {
        return;
    }
    let p = Places::new();
    let s = &p.s;
    s.file(
        "make.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [echo, made]
inputs: []
outputs: {out: stdout}
",
    );
    s.file(
        "change.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs: {f: File}
arguments: [{shellQuote: false, valueFrom: '(echo changed >> $(inputs.f.path)) 2>/dev/null && echo CHANGED || echo READ_ONLY'}]
outputs: {out: stdout}
",
    );
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: []
outputs: {out: {type: File, outputSource: b/out}}
steps:
  a: {run: make.cwl, in: {}, out: [out]}
  b: {run: change.cwl, in: {f: a/out}, out: [out]}
",
    );
    for mode in [None, Some("--sandbox-per-step")] {
        let mut args = vec!["--quiet", "--run-as", "65534:65534", "wf.cwl"];
        args.extend(mode);
        let r = s.run(&args);
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        assert!(
            !r.stderr().contains("cannot make"),
            "{mode:?}: {}",
            r.stderr()
        );
        let out = r.json();
        let log = std::fs::read_to_string(out["out"]["path"].as_str().unwrap()).unwrap();
        assert_eq!(log, "READ_ONLY\n", "{mode:?}");
    }
}

/// A tool with `DockerRequirement` `docker` (YAML flow mapping fields),
/// `NetworkAccess: net`, printing its user, capabilities and `/built`.
fn container_tool(docker: &str, net: bool) -> String {
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement: {{{docker}}}
  NetworkAccess: {{networkAccess: {net}}}
  ShellCommandRequirement: {{}}
inputs: []
arguments:
  - shellQuote: false
    valueFrom: >-
      echo ids=`id -u`:`id -g`;
      grep -E '^CapEff' /proc/self/status | tr -d '\\t';
      cat /built 2>/dev/null || true
outputs: {{log: stdout}}
stdout: log.txt
"
    )
}

fn log_of(r: &super::Run) -> String {
    std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap()
}

#[test]
fn containers_run_as_the_given_user() {
    if !root() || !podman_ready() {
        return;
    }
    let s = Scratch::new();
    s.file(
        "c.cwl",
        &container_tool(&format!("dockerPull: {IMAGE}"), false),
    );
    let r = s.run(&["--quiet", "--run-as", "65534:65534", "c.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let log = log_of(&r);
    assert!(log.contains("ids=65534:65534\n"), "{log}");
    assert!(log.contains("CapEff:0000000000000000\n"), "{log}");
}

#[test]
fn confined_container_builds_have_the_network_only_with_network_access() {
    if !podman_ready() {
        return;
    }
    let s = Scratch::new();
    let root = s.path().display().to_string();
    // A build that records how many network interfaces it saw; each image
    // gets a name of its own, removed afterwards.
    let name = |k: &str| format!("localhost/insitu-cwl-test-build-{}-{k}", std::process::id());
    let dockerfile = |k: &str| {
        format!(
            "dockerImageId: {}, dockerFile: \"FROM {IMAGE}\\nRUN grep -c : /proc/net/dev > /built\\n\"",
            name(k)
        )
    };
    let built = |args: &[&str], k: &str, net: bool| {
        s.file("b.cwl", &container_tool(&dockerfile(k), net));
        let mut all = vec!["--quiet"];
        all.extend(args);
        all.push("b.cwl");
        let r = s.run(&all);
        let _ = std::process::Command::new("podman")
            .args(["rmi", "--force", &name(k)])
            .output();
        assert_eq!(r.code(), 0, "{args:?} {k}: {}", r.stderr());
        let log = log_of(&r);
        log.lines()
            .last()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{args:?} {k}: {log}"))
    };
    assert_eq!(built(&["--allow-root", &root], "confined", false), 1);
    assert!(built(&["--allow-root", &root], "confined-net", true) > 1);
    assert!(
        built(&[], "free", false) > 1,
        "unconfined builds are unchanged"
    );
    // An image fetched from a URL needs NetworkAccess in a confined run.
    s.file(
        "i.cwl",
        &container_tool(
            "dockerImageId: localhost/insitu-cwl-test-never, dockerImport: 'http://127.0.0.1:9/image.tar'",
            false,
        ),
    );
    let r = s.run(&["--quiet", "--allow-root", &root, "i.cwl"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("needs NetworkAccess"), "{}", r.stderr());
}

/// The platform's layout: the jobs' directories and the inputs below a
/// directory no sandbox shows (the data directory, hidden), the inputs two
/// levels down: the tools' user passes through the directories the run's
/// shared sandbox makes above them, as through those of a sandbox per job.
#[test]
fn the_tools_user_reaches_inputs_and_job_directories_below_hidden_ones() {
    if !root() || !bwrap_works() {
        return;
    }
    let data = tempfile::Builder::new()
        .prefix("data-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = data.path();
    std::fs::create_dir_all(d.join("workspaces/ann/fields")).unwrap();
    std::fs::write(d.join("workspaces/ann/fields/in.txt"), "deep inside\n").unwrap();
    for p in [
        d.to_path_buf(),
        d.join("workspaces"),
        d.join("workspaces/ann"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let s = Scratch::new();
    s.file("probe.cwl", PROBE);
    s.file(
        "wf.cwl",
        &super::one_step("probe.cwl", &[("f", "File")], &[("log", "File")]),
    );
    s.file(
        "job.json",
        &format!(
            r#"{{"f": {{"class": "File", "path": "{}/workspaces/ann/fields/in.txt"}}}}"#,
            d.display()
        ),
    );
    let hidden = d.display().to_string();
    let work = d.join("runs/r1/work").display().to_string();
    for mode in [None, Some("--sandbox-per-step")] {
        let mut args = vec![
            "--quiet",
            "--run-as",
            "65534:65534",
            "--hide",
            &hidden,
            "--workdir",
            &work,
        ];
        args.extend(mode);
        args.extend(["wf.cwl", "job.json"]);
        let r = s.run(&args);
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        let log = std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap();
        assert!(log.contains("deep inside"), "{mode:?}: {log}");
        assert!(log.contains("HOME_WRITABLE"), "{mode:?}: {log}");
    }
}
