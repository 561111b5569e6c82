//! A fuzz harness for the loader without libFuzzer (stable Rust only):
//! random and mutated YAML/JSON documents — mutations of the CWL
//! conformance documents when the suite is present, of built-in seeds
//! otherwise, plus documents generated from CWL vocabulary — go through
//! `loader::load` and the workflow graph check. Each must return `Ok` or
//! `Err` within the time limit: a panic or a hang fails the test and leaves
//! the input in `target/fuzz-failures/`.
//!
//! Runs 3 seconds in `cargo test`; longer with
//! `INSITU_FUZZ_SECS=300 cargo test --release --test it fuzz -- --nocapture`
//! (`INSITU_FUZZ_SEED` replays a run, `INSITU_CWL_SUITE` points at the
//! conformance suite, default `/work/shared/cwl-v1.2`).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const TOKENS: &[&str] = &[
    "\n",
    " ",
    "  ",
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "<<: *a\n",
    "? ",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "\t",
    "$(",
    "${",
    ")",
    "}",
    "$(inputs.x)",
    "${ return 1; }",
    "$import: ",
    "$include: ",
    "$graph:\n",
    "$namespaces: {e: http://x/}\n",
    "$schemas: [x]\n",
    "class: Workflow\n",
    "class: CommandLineTool\n",
    "class: ExpressionTool\n",
    "class: Operation\n",
    "cwlVersion: v1.0\n",
    "cwlVersion: v1.2\n",
    "cwlVersion: draft-2\n",
    "run: ",
    "run: #main\n",
    "id: main\n",
    "id: '#x'\n",
    "steps:\n",
    "inputs:\n",
    "outputs:\n",
    "in: ",
    "out: [o]\n",
    "source: ",
    "outputSource: ",
    "scatter: ",
    "scatterMethod: nested_crossproduct\n",
    "type: ",
    "File",
    "File[]?",
    "string[][]",
    "type: {type: array, items: {type: array, items: File}}\n",
    "type: record\n",
    "fields: ",
    "symbols: [a, b]\n",
    "type: enum\n",
    "secondaryFiles: [^.bai, .fai?]\n",
    "requirements:\n",
    "hints:\n",
    "- class: SchemaDefRequirement\n  types:\n",
    "name: ",
    "default: ",
    "inputBinding: {position: 1}\n",
    "when: $(false)\n",
    "pickValue: first_non_null\n",
    "linkMerge: merge_flattened\n",
    "/dev/zero",
    "/dev/urandom",
    "/proc/self/fd/0",
    "..",
    "../../",
    "file:///etc/passwd",
    "http://example.com/x.cwl",
    "99999999999999999999999999999999",
    "-0",
    "1e999",
    "NaN",
    ".inf",
    "~",
    "null",
    "true",
    "y",
    "0x1F",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
];

const KEYS: &[&str] = &[
    "class",
    "id",
    "cwlVersion",
    "inputs",
    "outputs",
    "steps",
    "run",
    "in",
    "out",
    "source",
    "outputSource",
    "type",
    "items",
    "fields",
    "symbols",
    "default",
    "baseCommand",
    "arguments",
    "requirements",
    "hints",
    "scatter",
    "scatterMethod",
    "when",
    "valueFrom",
    "inputBinding",
    "outputBinding",
    "glob",
    "secondaryFiles",
    "format",
    "$graph",
    "$import",
    "$include",
    "expression",
    "label",
    "doc",
    "stdin",
    "stdout",
    "linkMerge",
    "pickValue",
    "loadContents",
    "position",
    "prefix",
];

const SEEDS: &[&str] = &[
    "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: echo\ninputs:\n  m: {type: string, inputBinding: {position: 1}}\noutputs:\n  o: stdout\n",
    "cwlVersion: v1.2\nclass: Workflow\nrequirements: {ScatterFeatureRequirement: {}}\ninputs: {x: 'int[]'}\noutputs: {y: {type: 'int[]', outputSource: s/o}}\nsteps:\n  s:\n    run:\n      class: ExpressionTool\n      requirements: {InlineJavascriptRequirement: {}}\n      inputs: {x: int}\n      outputs: {o: int}\n      expression: $({o: inputs.x})\n    scatter: x\n    in: {x: x}\n    out: [o]\n",
    "{\"cwlVersion\": \"v1.2\", \"$graph\": [{\"id\": \"main\", \"class\": \"Workflow\", \"inputs\": [], \"outputs\": [], \"steps\": [{\"id\": \"a\", \"run\": \"#t\", \"in\": [], \"out\": []}]}, {\"id\": \"t\", \"class\": \"CommandLineTool\", \"inputs\": [], \"outputs\": [], \"baseCommand\": \"true\"}]}",
    "cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n  SchemaDefRequirement:\n    types:\n      - {name: R, type: record, fields: {a: 'File?', b: {type: enum, symbols: [x, y]}}}\ninputs: {r: R}\noutputs: []\n",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let suite = std::env::var_os("INSITU_CWL_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/cwl-v1.2"));
    let mut stack = vec![suite.join("tests")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "cwl" || x == "yml" || x == "json")
                && let Ok(b) = std::fs::read(&p)
                && b.len() < 64 * 1024
            {
                v.push(b);
            }
        }
    }
    v
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(d.len() + 1);
        match rng.below(8) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let end = (at + rng.below(64)).min(d.len());
                d.drain(at.min(end)..end);
            }
            2 => {
                let end = (at + rng.below(128)).min(d.len());
                let chunk = d[at.min(end)..end].to_vec();
                let to = rng.below(d.len() + 1);
                d.splice(to..to, chunk);
            }
            3 => {
                let other = rng.pick(seeds);
                let s = rng.below(other.len() + 1);
                let e = (s + rng.below(256)).min(other.len());
                d.splice(at..at, other[s..e].iter().copied());
            }
            4 => {
                // Re-indent a line: YAML structure changes shape.
                let ind = " ".repeat(rng.below(6));
                d.splice(at..at, ind.bytes());
            }
            _ => {
                let t = rng.pick(TOKENS);
                d.splice(at..at, t.bytes());
            }
        }
    }
    d
}

fn value(rng: &mut Rng, depth: usize, out: &mut String) {
    match if depth > 5 {
        4 + rng.below(4)
    } else {
        rng.below(8)
    } {
        0 | 1 => {
            out.push('{');
            for k in 0..rng.below(5) {
                if k > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!("\"{}\": ", rng.pick(KEYS)));
                value(rng, depth + 1, out);
            }
            out.push('}');
        }
        2 | 3 => {
            out.push('[');
            for k in 0..rng.below(5) {
                if k > 0 {
                    out.push_str(", ");
                }
                value(rng, depth + 1, out);
            }
            out.push(']');
        }
        4 => out.push_str(&format!("\"{}\"", rng.pick(TOKENS).escape_default())),
        5 => out.push_str(&format!("\"{}\"", rng.pick(KEYS))),
        6 => out.push_str(&format!("{}", rng.next() as i64 >> rng.below(64))),
        _ => out.push_str(rng.pick::<&str>(&[
            "true",
            "null",
            "1.5",
            "\"File\"",
            "\"#main\"",
            "\"$(inputs)\"",
        ])),
    }
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut s = format!(
        "{{\"cwlVersion\": \"v1.2\", \"class\": \"{}\"",
        rng.pick::<&str>(&["Workflow", "CommandLineTool", "ExpressionTool", "Operation"])
    );
    for _ in 0..rng.below(8) {
        s.push_str(&format!(", \"{}\": ", rng.pick(KEYS)));
        value(rng, 0, &mut s);
    }
    s.push('}');
    s.into_bytes()
}

/// Load one document; `Err` carries a panic message.
fn check(path: &Path) -> Result<(), String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        if let Ok(l) = insitu_cwl::loader::load(&path.display().to_string())
            && l.process.get("class").and_then(|c| c.as_str()) == Some("Workflow")
        {
            let _ = insitu_cwl::workflow::check_workflow(&l.process);
        }
        if let Ok(text) = std::fs::read_to_string(path) {
            let _ = insitu_cwl::loader::parse_text(&text, "fuzz");
        }
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn keep_failure(doc: &[u8], what: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{what}-{}.cwl", std::process::id()));
    std::fs::write(&p, doc).unwrap();
    p
}

#[test]
fn loader_survives_random_and_mutated_documents() {
    let secs: f64 = std::env::var("INSITU_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let seed: u64 = std::env::var("INSITU_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    let seeds = seeds();
    let mut rng = Rng(seed);
    let work = tempfile::tempdir().unwrap();
    // Documents may `run:`/`$import` neighbours: give them some.
    for (k, s) in seeds.iter().take(4).enumerate() {
        std::fs::write(work.path().join(format!("n{k}.cwl")), s).unwrap();
    }
    let (to_worker, jobs) = mpsc::channel::<PathBuf>();
    let (to_main, results) = mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        for p in jobs {
            if to_main.send(check(&p)).is_err() {
                break;
            }
        }
    });
    let limit = Duration::from_secs(10);
    let (start, mut cases, mut slowest) = (Instant::now(), 0u64, Duration::ZERO);
    while start.elapsed().as_secs_f64() < secs {
        let doc = if rng.below(4) == 0 {
            generate(&mut rng)
        } else {
            mutate(&mut rng, &seeds)
        };
        let path = work.path().join(format!("case{}.cwl", cases % 2));
        std::fs::write(&path, &doc).unwrap();
        let t = Instant::now();
        to_worker.send(path).unwrap();
        match results.recv_timeout(limit) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => {
                let p = keep_failure(&doc, "panic");
                panic!("loader panicked ({msg}) on {} (seed {seed})", p.display());
            }
            Err(_) => {
                let p = keep_failure(&doc, "hang");
                panic!(
                    "loader took over {limit:?} on {} (seed {seed})",
                    p.display()
                );
            }
        }
        slowest = slowest.max(t.elapsed());
        cases += 1;
    }
    eprintln!(
        "fuzz: {cases} documents in {:.1} s from {} seeds (seed {seed}), slowest {:?}",
        start.elapsed().as_secs_f64(),
        seeds.len(),
        slowest
    );
    assert!(cases > 0);
}
