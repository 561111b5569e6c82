//! `--provenance DIR` writes a Workflow Run RO-Crate: the workflow files,
//! inputs and outputs as data entities, a CreateAction for the run and for
//! every step job (times, status), ControlActions and an OrganizeAction.

use super::Scratch;
use serde_json::Value;

const TOOL: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ['cat \"$0\" && echo \"$1\"']
inputs:
  f: {type: File, inputBinding: {position: 1}}
  word: {type: string, inputBinding: {position: 2}}
outputs:
  out: stdout
stdout: out.txt
";

const WF: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs:
  f: File
  words: string[]
outputs:
  outs: {type: 'File[]', outputSource: say/out}
steps:
  say:
    run: tool.cwl
    scatter: word
    in: {f: f, word: words}
    out: [out]
";

fn entities(dir: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("ro-crate-metadata.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["@context"]
            .to_string()
            .contains("https://w3id.org/ro/crate/1.1/context")
    );
    doc["@graph"].as_array().unwrap().clone()
}

fn by_id<'a>(g: &'a [Value], id: &str) -> &'a Value {
    g.iter()
        .find(|e| e["@id"] == id)
        .unwrap_or_else(|| panic!("no entity {id}"))
}

fn has_type(e: &Value, t: &str) -> bool {
    e["@type"] == t
        || e["@type"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == t))
}

fn ids(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(ids).collect(),
        Value::Object(m) => m
            .get("@id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

#[test]
fn a_scatter_run_is_described() {
    let s = Scratch::new();
    s.file("tool.cwl", TOOL);
    s.file("wf.cwl", WF);
    s.file("greeting.txt", "hello\n");
    s.file(
        "job.json",
        r#"{"f": {"class": "File", "path": "greeting.txt"}, "words": ["a", "b", "c"]}"#,
    );
    let crate_dir = s.path().join("crate");
    let r = s.run(&[
        "--quiet",
        "--provenance",
        crate_dir.to_str().unwrap(),
        "wf.cwl",
        "job.json",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let g = entities(&crate_dir);

    let root = by_id(&g, "./");
    let conforms = ids(&root["conformsTo"]);
    for p in ["process/0.5", "workflow/0.5", "provenance/0.5"] {
        assert!(conforms.iter().any(|c| c.ends_with(p)), "{conforms:?}");
    }
    assert_eq!(root["mainEntity"]["@id"], "workflow/wf.cwl");
    let parts = ids(&root["hasPart"]);
    assert!(parts.contains(&"workflow/wf.cwl".to_string()));
    assert!(parts.contains(&"workflow/tool.cwl".to_string()));
    for p in &parts {
        assert!(crate_dir.join(p).exists(), "{p} is in the crate");
    }
    let wf = by_id(&g, "workflow/wf.cwl");
    assert!(has_type(wf, "ComputationalWorkflow") && has_type(wf, "File"));
    assert_eq!(ids(&wf["input"]).len(), 2);
    assert_eq!(ids(&wf["step"]), vec!["workflow/wf.cwl#say".to_string()]);
    assert!(has_type(by_id(&g, "workflow/wf.cwl#say"), "HowToStep"));

    let actions: Vec<&Value> = g.iter().filter(|e| has_type(e, "CreateAction")).collect();
    assert_eq!(actions.len(), 4, "the run and three scatter jobs");
    for a in &actions {
        let (st, en) = (
            a["startTime"].as_str().unwrap(),
            a["endTime"].as_str().unwrap(),
        );
        assert!(st.ends_with('Z') && st <= en, "{a}");
        assert_eq!(
            a["actionStatus"]["@id"],
            "http://schema.org/CompletedActionStatus"
        );
    }
    let run = actions
        .iter()
        .find(|a| a["instrument"]["@id"] == "workflow/wf.cwl")
        .unwrap();
    // The input file, with the parameter it realizes, and the three outputs.
    let objects = ids(&run["object"]);
    let input = objects
        .iter()
        .map(|o| by_id(&g, o))
        .find(|e| has_type(e, "File"))
        .unwrap();
    assert_eq!(input["exampleOfWork"]["@id"], "workflow/wf.cwl#input-f");
    assert_eq!(
        std::fs::read_to_string(crate_dir.join(input["@id"].as_str().unwrap())).unwrap(),
        "hello\n"
    );
    let results = ids(&run["result"]);
    assert_eq!(results.len(), 3);
    let mut texts: Vec<String> = results
        .iter()
        .map(|r| std::fs::read_to_string(crate_dir.join(r)).unwrap())
        .collect();
    texts.sort();
    assert_eq!(texts, ["hello\na\n", "hello\nb\n", "hello\nc\n"]);
    let steps: Vec<&&Value> = actions.iter().filter(|a| a["@id"] != run["@id"]).collect();
    for a in &steps {
        assert_eq!(a["instrument"]["@id"], "workflow/wf.cwl#say/run");
        assert!(
            a["description"]
                .as_str()
                .unwrap()
                .ends_with("(exit code 0)"),
            "{a}"
        );
        assert_eq!(ids(&a["result"]).len(), 1);
        // The job's environment, as PropertyValues.
        let env: Vec<&Value> = ids(&a["environment"])
            .iter()
            .map(|i| by_id(&g, i))
            .collect();
        let home = env.iter().find(|e| e["name"] == "HOME").expect("HOME");
        assert!(has_type(home, "PropertyValue"));
        let home_dir = std::path::Path::new(home["value"].as_str().unwrap());
        assert!(
            home_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("job"),
            "{home}"
        );
    }
    let controls: Vec<&Value> = g.iter().filter(|e| has_type(e, "ControlAction")).collect();
    assert_eq!(controls.len(), 3);
    assert!(
        controls
            .iter()
            .all(|c| c["instrument"]["@id"] == "workflow/wf.cwl#say")
    );
    let org = g.iter().find(|e| has_type(e, "OrganizeAction")).unwrap();
    assert_eq!(org["result"]["@id"], run["@id"]);
    assert_eq!(ids(&org["object"]).len(), 3);
}

#[test]
fn a_failed_run_is_recorded_as_failed() {
    let s = Scratch::new();
    s.file(
        "fail.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: 'false'\ninputs: []\noutputs: []\n",
    );
    let crate_dir = s.path().join("crate");
    let r = s.run(&[
        "--quiet",
        "--provenance",
        crate_dir.to_str().unwrap(),
        "fail.cwl",
    ]);
    assert_eq!(r.code(), 1);
    let g = entities(&crate_dir);
    let run = g.iter().find(|e| has_type(e, "CreateAction")).unwrap();
    assert_eq!(
        run["actionStatus"]["@id"],
        "http://schema.org/FailedActionStatus"
    );
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "{run}"
    );
    assert!(
        run["description"]
            .as_str()
            .unwrap()
            .contains("(exit code 1)"),
        "{run}"
    );
}

#[test]
fn a_container_run_names_its_image() {
    if !super::podman_ready() {
        return;
    }
    let s = Scratch::new();
    s.file(
        "tool.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {DockerRequirement: {dockerPull: docker.io/debian:stable-slim}}
baseCommand: [cat, /etc/debian_version]
inputs: []
outputs: {out: stdout}
",
    );
    let r = s.run(&["--quiet", "--provenance", "crate", "tool.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let g = entities(&s.path().join("crate"));
    let run = g
        .iter()
        .find(|e| has_type(e, "CreateAction") && e.get("containerImage").is_some())
        .expect("a CreateAction with its image");
    let image = by_id(&g, run["containerImage"]["@id"].as_str().unwrap());
    assert!(has_type(image, "ContainerImage"), "{image}");
    assert_eq!(image["registry"], "docker.io");
    assert_eq!(image["name"], "debian");
    assert_eq!(image["tag"], "stable-slim");
    assert_eq!(
        image["additionalType"]["@id"],
        "https://w3id.org/ro/terms/workflow-run#DockerImage"
    );
}
