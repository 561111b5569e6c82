//! Input format checking: exact match without `$schemas`, ontology
//! reasoning (subclasses, equivalent classes) with them.

use super::Scratch;

/// A small EDAM-like ontology: FASTA ⊑ sequence format ⊑ textual format,
/// BAM ⊑ binary format.
const MINI_EDAM: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
    <!ENTITY edam "http://edamontology.org/" >
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
     xmlns:owl="http://www.w3.org/2002/07/owl#"
     xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
    <owl:Class rdf:about="&edam;format_2330">
        <rdfs:label>Textual format</rdfs:label>
    </owl:Class>
    <owl:Class rdf:about="&edam;format_2200">
        <rdfs:label>Sequence format</rdfs:label>
        <rdfs:subClassOf rdf:resource="&edam;format_2330"/>
    </owl:Class>
    <owl:Class rdf:about="&edam;format_1929">
        <rdfs:label>FASTA</rdfs:label>
        <rdfs:subClassOf rdf:resource="&edam;format_2200"/>
    </owl:Class>
    <owl:Class rdf:about="&edam;format_2333">
        <rdfs:label>Binary format</rdfs:label>
    </owl:Class>
    <owl:Class rdf:about="&edam;format_2572">
        <rdfs:label>BAM</rdfs:label>
        <rdfs:subClassOf rdf:resource="&edam;format_2333"/>
    </owl:Class>
</rdf:RDF>
"#;

const GX_TTL: &str = "@prefix gx: <http://galaxyproject.org/formats/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix edam: <http://edamontology.org/> .

gx:fasta a owl:Class ; owl:equivalentClass edam:format_1929 .
";

/// A tool that cats its input, with `format: FORMAT` and `$schemas: SCHEMAS`.
fn tool(format: &str, schemas: &str) -> String {
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
$namespaces:
  edam: http://edamontology.org/
  gx: http://galaxyproject.org/formats/
{schemas}
inputs:
  want: string?
  input:
    type: File
    format: {format}
    inputBinding: {{position: 1}}
baseCommand: cat
outputs:
  out: stdout
stdout: out.txt
"
    )
}

const SCHEMAS: &str = "$schemas: [mini-edam.owl, gx.ttl]";

fn scratch() -> Scratch {
    let s = Scratch::new();
    s.file("mini-edam.owl", MINI_EDAM);
    s.file("gx.ttl", GX_TTL);
    s.file("seq.txt", ">a\nACGT\n");
    s
}

/// A job giving `seq.txt` with format `fmt` (and `want` if not empty).
fn job(s: &Scratch, fmt: &str, want: &str) -> String {
    let want = if want.is_empty() {
        String::new()
    } else {
        format!(", \"want\": \"{want}\"")
    };
    s.file(
        "job.json",
        &format!(
            "{{\"input\": {{\"class\": \"File\", \"location\": \"seq.txt\", \"format\": \"{fmt}\"}}{want}}}"
        ),
    );
    "job.json".into()
}

fn ok(s: &Scratch, cwl: &str, job: &str) {
    let r = s.run(&["--no-sandbox", cwl, job]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(
        std::fs::read_to_string(s.path().join("out/out.txt")).unwrap(),
        ">a\nACGT\n"
    );
}

fn fails(s: &Scratch, cwl: &str, job: &str, needles: &[&str]) {
    let r = s.run(&["--no-sandbox", cwl, job]);
    let err = r.stderr();
    assert_eq!(r.code(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention '{n}': {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn subclass_accepted() {
    let s = scratch();
    s.file("t.cwl", &tool("edam:format_2330", SCHEMAS));
    let j = job(&s, "edam:format_1929", "");
    ok(&s, "t.cwl", &j);
    let j = job(&s, "http://edamontology.org/format_2200", "");
    ok(&s, "t.cwl", &j);
    let j = job(&s, "edam:format_2330", "");
    ok(&s, "t.cwl", &j);
}

#[test]
fn equivalent_class_accepted() {
    let s = scratch();
    // gx:fasta ≡ FASTA ⊑ … ⊑ textual format
    s.file("t.cwl", &tool("edam:format_2330", SCHEMAS));
    let j = job(&s, "gx:fasta", "");
    ok(&s, "t.cwl", &j);
    // the other way round: FASTA given, gx:fasta declared
    s.file("t2.cwl", &tool("gx:fasta", SCHEMAS));
    let j = job(&s, "edam:format_1929", "");
    ok(&s, "t2.cwl", &j);
}

#[test]
fn unrelated_format_rejected() {
    let s = scratch();
    s.file("t.cwl", &tool("edam:format_2330", SCHEMAS));
    let j = job(&s, "edam:format_2572", "");
    fails(
        &s,
        "t.cwl",
        &j,
        &[
            "input error",
            "seq.txt",
            "http://edamontology.org/format_2572",
            "http://edamontology.org/format_2330",
            "mini-edam.owl",
        ],
    );
    // a superclass is not a subclass
    s.file("t2.cwl", &tool("edam:format_1929", SCHEMAS));
    let j = job(&s, "edam:format_2330", "");
    fails(&s, "t2.cwl", &j, &["format_2330", "format_1929"]);
}

#[test]
fn lists_and_expressions() {
    let s = scratch();
    s.file(
        "t.cwl",
        &tool("[edam:format_2333, edam:format_2330]", SCHEMAS),
    );
    let j = job(&s, "edam:format_1929", "");
    ok(&s, "t.cwl", &j);
    let j = job(&s, "edam:format_2572", "");
    ok(&s, "t.cwl", &j);
    s.file("t2.cwl", &tool("$(inputs.want)", SCHEMAS));
    let j = job(
        &s,
        "edam:format_1929",
        "http://edamontology.org/format_2330",
    );
    ok(&s, "t2.cwl", &j);
    let j = job(
        &s,
        "edam:format_1929",
        "http://edamontology.org/format_2333",
    );
    fails(&s, "t2.cwl", &j, &["format_1929", "format_2333"]);
}

#[test]
fn without_schemas_exact_match() {
    let s = scratch();
    s.file("t.cwl", &tool("edam:format_2330", ""));
    let j = job(&s, "edam:format_2330", "");
    ok(&s, "t.cwl", &j);
    let j = job(&s, "edam:format_1929", "");
    fails(
        &s,
        "t.cwl",
        &j,
        &["input error", "format_1929", "format_2330"],
    );
}

#[test]
fn bad_schema_files() {
    let s = scratch();
    s.file(
        "t.cwl",
        &tool("edam:format_2330", "$schemas: [nowhere.owl]"),
    );
    // not read when an exact match settles the check, nor for a File without format
    let j = job(&s, "edam:format_2330", "");
    ok(&s, "t.cwl", &j);
    s.file(
        "nofmt.json",
        "{\"input\": {\"class\": \"File\", \"location\": \"seq.txt\"}}",
    );
    ok(&s, "t.cwl", "nofmt.json");
    let j = job(&s, "edam:format_1929", "");
    fails(&s, "t.cwl", &j, &["validation error", "nowhere.owl"]);
    s.file(
        "broken.ttl",
        "@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:d ex:e .\n",
    );
    s.file(
        "t2.cwl",
        &tool("edam:format_2330", "$schemas: [broken.ttl]"),
    );
    fails(&s, "t2.cwl", &j, &["validation error", "broken.ttl:3:11:"]);
    s.file(
        "broken.owl",
        "<?xml version=\"1.0\"?>\n<rdf:RDF>\n<x></y>\n",
    );
    s.file(
        "t3.cwl",
        &tool("edam:format_2330", "$schemas: [broken.owl]"),
    );
    fails(&s, "t3.cwl", &j, &["validation error", "broken.owl:"]);
}
