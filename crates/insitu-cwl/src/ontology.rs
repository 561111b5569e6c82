//! Format checking of input Files, with ontology reasoning when the
//! document lists `$schemas`.
//!
//! Without `$schemas` a File's `format` must match one of the declared
//! formats exactly (as an IRI, or by its local name). With `$schemas` (RDF
//! files relative to the document: RDF/XML such as EDAM.owl, Turtle,
//! N-Triples) it must be one of the declared formats, or reach one of them
//! through `rdfs:subClassOf` (upwards, transitively) and `owl:equivalentClass`
//! (both directions) in any combination, across all the listed files. A File
//! without a format is accepted either way.
//!
//! Schema files are read only when a check cannot be settled by an exact
//! match, and each one once per process: [`Ontology::load`] caches the parsed
//! index by canonical path (reloading it if the file's size or modification
//! time changed). Only `subClassOf` / `equivalentClass` triples between IRIs
//! are kept. Remote schemas (`http:` and other non-file IRIs) cannot be read
//! here: they are skipped, and when they are all a check has to go on the
//! format is accepted (undecidable, as the check used to be skipped).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use oxrdf::{NamedOrBlankNode, Term, Triple};
use serde_json::{Map, Value};

use crate::error::{CwlError, Result};

const SUBCLASS_OF: &str = "http://www.w3.org/2000/01/rdf-schema#subClassOf";
const EQUIVALENT_CLASS: &str = "http://www.w3.org/2002/07/owl#equivalentClass";

/// Serialisation of a schema file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// RDF/XML (`.owl`, `.rdf`, `.xml`, `.rdfs`).
    RdfXml,
    /// Turtle (`.ttl`).
    Turtle,
    /// N-Triples (`.nt`).
    NTriples,
}

impl Syntax {
    /// By file extension, else by the first bytes (XML starts with `<?`,
    /// `<!` or `<rdf:`; anything else is read as Turtle).
    pub fn guess(path: &Path, text: &[u8]) -> Syntax {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("owl" | "rdf" | "rdfs" | "xml") => Syntax::RdfXml,
            Some("ttl" | "turtle") => Syntax::Turtle,
            Some("nt") => Syntax::NTriples,
            _ => {
                let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
                let start = text.iter().position(|b| !b.is_ascii_whitespace());
                let head = &text[start.unwrap_or(text.len())..];
                if head.starts_with(b"<?") || head.starts_with(b"<!") || head.starts_with(b"<rdf:")
                {
                    Syntax::RdfXml
                } else {
                    Syntax::Turtle
                }
            }
        }
    }
}

/// The class hierarchy of one schema file: for each class, the classes it
/// is a direct subclass of or equivalent to.
#[derive(Debug, Default)]
pub struct Ontology {
    up: HashMap<Box<str>, Vec<Box<str>>>,
    edges: usize,
}

/// Cache of parsed schema files: canonical path → (size, mtime, index).
type CacheEntry = (u64, Option<SystemTime>, Arc<Ontology>);
static CACHE: Mutex<BTreeMap<PathBuf, CacheEntry>> = Mutex::new(BTreeMap::new());

impl Ontology {
    /// Parse `text` (named `name` in errors). `base` resolves relative IRIs.
    pub fn parse(text: &[u8], syntax: Syntax, base: Option<&str>, name: &str) -> Result<Ontology> {
        let mut o = Ontology::default();
        let bad_base = |e: oxrdf::IriParseError| {
            CwlError::Validation(format!("$schemas: {name}: bad base IRI: {e}"))
        };
        match syntax {
            Syntax::RdfXml => {
                let mut p = oxrdfxml::RdfXmlParser::new().lenient();
                if let Some(b) = base {
                    p = p.with_base_iri(b).map_err(bad_base)?;
                }
                let mut it = p.for_slice(text);
                loop {
                    match it.next() {
                        None => break,
                        Some(Ok(t)) => o.add(t),
                        Some(Err(e)) => {
                            let pos = usize::try_from(it.buffer_position()).unwrap_or(usize::MAX);
                            let line = line_of(text, pos);
                            return Err(CwlError::Validation(format!(
                                "$schemas: {name}:{line}: malformed RDF/XML: {e}"
                            )));
                        }
                    }
                }
            }
            Syntax::Turtle | Syntax::NTriples => {
                let triples: Box<dyn Iterator<Item = _>> = if syntax == Syntax::Turtle {
                    let mut p = oxttl::TurtleParser::new().lenient();
                    if let Some(b) = base {
                        p = p.with_base_iri(b).map_err(bad_base)?;
                    }
                    Box::new(p.for_slice(text))
                } else {
                    Box::new(oxttl::NTriplesParser::new().lenient().for_slice(text))
                };
                let what = if syntax == Syntax::Turtle {
                    "Turtle"
                } else {
                    "N-Triples"
                };
                for t in triples {
                    match t {
                        Ok(t) => o.add(t),
                        Err(e) => {
                            let at = e.location().start;
                            return Err(CwlError::Validation(format!(
                                "$schemas: {name}:{}:{}: malformed {what}: {}",
                                at.line + 1,
                                at.column + 1,
                                e.message()
                            )));
                        }
                    }
                }
            }
        }
        Ok(o)
    }

    /// Read and index a schema file, once per process (cached by canonical
    /// path; read again only if its size or modification time changed).
    pub fn load(path: &Path) -> Result<Arc<Ontology>> {
        let cannot =
            |e: std::io::Error| CwlError::Validation(format!("$schemas: {}: {e}", path.display()));
        let canon = std::fs::canonicalize(path).map_err(cannot)?;
        let meta = std::fs::metadata(&canon).map_err(cannot)?;
        let stamp = (meta.len(), meta.modified().ok());
        // Held while parsing, so that parallel jobs wait for one load.
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((len, mtime, o)) = cache.get(&canon)
            && (*len, *mtime) == stamp
        {
            return Ok(o.clone());
        }
        let text = std::fs::read(&canon).map_err(cannot)?;
        let base = url::Url::from_file_path(&canon).ok().map(String::from);
        let syntax = Syntax::guess(&canon, &text);
        let o = Arc::new(Ontology::parse(
            &text,
            syntax,
            base.as_deref(),
            &path.display().to_string(),
        )?);
        cache.insert(canon, (stamp.0, stamp.1, o.clone()));
        Ok(o)
    }

    /// Number of subclass / equivalence links kept.
    pub fn len(&self) -> usize {
        self.edges
    }

    /// Whether no links were found.
    pub fn is_empty(&self) -> bool {
        self.edges == 0
    }

    fn add(&mut self, t: Triple) {
        let p = t.predicate.as_str();
        let sub = p == SUBCLASS_OF;
        if !sub && p != EQUIVALENT_CLASS {
            return;
        }
        let (NamedOrBlankNode::NamedNode(s), Term::NamedNode(o)) = (t.subject, t.object) else {
            return;
        };
        let (s, o) = (s.into_string(), o.into_string());
        if s == o {
            return;
        }
        if !sub {
            self.link(o.clone(), s.clone());
        }
        self.link(s, o);
    }

    fn link(&mut self, from: String, to: String) {
        let v = self.up.entry(from.into_boxed_str()).or_default();
        if !v.iter().any(|x| **x == *to) {
            v.push(to.into_boxed_str());
            self.edges += 1;
        }
    }

    fn up(&self, class: &str) -> &[Box<str>] {
        self.up.get(class).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Whether `have` is `want`, or a subclass of it or equivalent to it
/// (transitively) in the union of `onts`.
pub fn derives_from(have: &str, want: &str, onts: &[Arc<Ontology>]) -> bool {
    let mut seen: HashSet<&str> = HashSet::from([have]);
    let mut todo: VecDeque<&str> = VecDeque::from([have]);
    while let Some(c) = todo.pop_front() {
        if c == want {
            return true;
        }
        for o in onts {
            for n in o.up(c) {
                if seen.insert(n) {
                    todo.push_back(n);
                }
            }
        }
    }
    false
}

/// Line (1-based) of byte offset `pos` in `text`.
fn line_of(text: &[u8], pos: usize) -> usize {
    let end = pos.min(text.len());
    text[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// How a process checks input formats: exact match, or ontology reasoning
/// over its `$schemas`.
pub struct Formats {
    mode: Mode,
}

enum Mode {
    Exact,
    Ontology {
        /// `$namespaces` in force, to expand CURIEs such as `edam:format_1929`.
        ns: Map<String, Value>,
        /// Local schema files, resolved against the document's directory.
        files: Vec<PathBuf>,
        /// Entries that cannot be read here (remote IRIs).
        remote: Vec<String>,
        /// `$schemas` entries that are not strings.
        bad: Option<String>,
    },
}

impl Formats {
    /// The format rules of a normalised process (cheap: no file is read).
    pub fn of(p: &Value) -> Formats {
        let Some(s) = p.get("$schemas") else {
            return Formats { mode: Mode::Exact };
        };
        let base = Path::new(p.get("__base").and_then(Value::as_str).unwrap_or("."));
        let ns = p
            .get("__ns")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let entries: Vec<&Value> = match s {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        let (mut files, mut remote, mut bad) = (Vec::new(), Vec::new(), None);
        for e in entries {
            let Some(e) = e.as_str() else {
                bad = Some(format!("$schemas: entries must be strings, found {e}"));
                continue;
            };
            if e.starts_with("file:") {
                match url::Url::parse(e).ok().and_then(|u| u.to_file_path().ok()) {
                    Some(p) => files.push(p),
                    None => bad = Some(format!("$schemas: bad file IRI '{e}'")),
                }
            } else if e.contains("://") {
                remote.push(e.to_string());
            } else {
                files.push(base.join(e));
            }
        }
        Formats {
            mode: Mode::Ontology {
                ns,
                files,
                remote,
                bad,
            },
        }
    }

    /// The local schema files the process lists.
    pub fn schema_files(&self) -> &[PathBuf] {
        match &self.mode {
            Mode::Ontology { files, .. } => files,
            Mode::Exact => &[],
        }
    }

    /// Whether the process reasons with `$schemas`.
    pub fn uses_ontology(&self) -> bool {
        matches!(self.mode, Mode::Ontology { .. })
    }

    /// Check one value (a File, or arrays of them; anything else passes)
    /// of input `id` against the declared format(s) `want`.
    pub fn check(&self, v: &Value, want: &Value, id: &str) -> Result<()> {
        match v {
            Value::Array(a) => a.iter().try_for_each(|x| self.check(x, want, id)),
            Value::Object(m) if m.get("class").and_then(Value::as_str) == Some("File") => {
                let Some(have) = m.get("format").and_then(Value::as_str) else {
                    return Ok(());
                };
                let wants: Vec<&str> = match want {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Ok(()),
                };
                if wants.is_empty() || self.accepts(have, &wants)? {
                    return Ok(());
                }
                let file = ["basename", "path", "location"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(Value::as_str))
                    .unwrap_or("?");
                Err(CwlError::Input(self.mismatch(id, file, have, &wants)))
            }
            _ => Ok(()),
        }
    }

    fn accepts(&self, have: &str, wants: &[&str]) -> Result<bool> {
        match &self.mode {
            Mode::Exact => {
                let short = |s: &str| s.rsplit(['/', '#', ':']).next().unwrap_or(s).to_string();
                Ok(wants.iter().any(|w| *w == have || short(w) == short(have)))
            }
            Mode::Ontology {
                ns,
                files,
                remote,
                bad,
            } => {
                let have = crate::loader::expand_ns(have, ns);
                let wants: Vec<String> = wants
                    .iter()
                    .map(|w| crate::loader::expand_ns(w, ns))
                    .collect();
                if wants.contains(&have) {
                    return Ok(true);
                }
                if let Some(b) = bad {
                    return Err(CwlError::Validation(b.clone()));
                }
                let onts = files
                    .iter()
                    .map(|f| Ontology::load(f))
                    .collect::<Result<Vec<_>>>()?;
                Ok(wants.iter().any(|w| derives_from(&have, w, &onts)) || !remote.is_empty())
            }
        }
    }

    fn mismatch(&self, id: &str, file: &str, have: &str, wants: &[&str]) -> String {
        let list = |ws: &[String]| match ws {
            [w] => format!("'{w}'"),
            ws => format!(
                "one of {}",
                ws.iter()
                    .map(|w| format!("'{w}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match &self.mode {
            Mode::Exact => {
                let ws: Vec<String> = wants.iter().map(|w| w.to_string()).collect();
                format!(
                    "input '{id}': file '{file}' has format '{have}', expected {}",
                    list(&ws)
                )
            }
            Mode::Ontology { ns, files, .. } => {
                let have = crate::loader::expand_ns(have, ns);
                let ws: Vec<String> = wants
                    .iter()
                    .map(|w| crate::loader::expand_ns(w, ns))
                    .collect();
                let names: Vec<String> = files
                    .iter()
                    .map(|f| {
                        f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| f.display().to_string())
                    })
                    .collect();
                format!(
                    "input '{id}': file '{file}' has format '{have}', which is not {} nor a \
                     subclass of or equivalent to {} in $schemas ({})",
                    list(&ws),
                    if ws.len() == 1 { "it" } else { "any of them" },
                    names.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    const XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
    <!ENTITY ex "http://example.org/fmt/" >
]>
<rdf:RDF xmlns="http://example.org/fmt/"
     xml:base="http://example.org/fmt/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
     xmlns:owl="http://www.w3.org/2002/07/owl#"
     xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">
    <owl:Class rdf:about="&ex;text">
        <rdfs:label>Text</rdfs:label>
    </owl:Class>
    <owl:Class rdf:about="&ex;sequence">
        <rdfs:subClassOf rdf:resource="&ex;text"/>
        <rdfs:subClassOf>
            <owl:Restriction>
                <owl:onProperty rdf:resource="&ex;has"/>
                <owl:someValuesFrom rdf:resource="&ex;thing"/>
            </owl:Restriction>
        </rdfs:subClassOf>
    </owl:Class>
    <owl:Class rdf:about="fasta">
        <rdfs:subClassOf rdf:resource="&ex;sequence"/>
    </owl:Class>
    <owl:Class rdf:about="&ex;binary"/>
    <owl:Class rdf:about="&ex;bam">
        <rdfs:subClassOf rdf:resource="&ex;binary"/>
    </owl:Class>
</rdf:RDF>
"#;

    const TTL: &str = "@prefix ex: <http://example.org/fmt/> .
@prefix other: <http://example.org/other/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .

other:fa a owl:Class ; owl:equivalentClass ex:fasta .
ex:plain owl:equivalentClass other:txt .
other:txt rdfs:subClassOf ex:text .
ex:weird rdfs:subClassOf [ a owl:Restriction ] .
";

    const EX: &str = "http://example.org/fmt/";
    const OT: &str = "http://example.org/other/";

    fn xml() -> Arc<Ontology> {
        Arc::new(Ontology::parse(XML.as_bytes(), Syntax::RdfXml, None, "t.owl").unwrap())
    }

    fn ttl() -> Arc<Ontology> {
        Arc::new(Ontology::parse(TTL.as_bytes(), Syntax::Turtle, None, "t.ttl").unwrap())
    }

    fn d(have: &str, want: &str, o: &[Arc<Ontology>]) -> bool {
        derives_from(have, want, o)
    }

    #[test]
    fn subclass_chain() {
        let o = [xml()];
        assert_eq!(o[0].len(), 3, "{:?}", o[0]);
        assert!(d(&format!("{EX}fasta"), &format!("{EX}text"), &o));
        assert!(d(&format!("{EX}fasta"), &format!("{EX}sequence"), &o));
        assert!(d(&format!("{EX}fasta"), &format!("{EX}fasta"), &o));
        // not downwards
        assert!(!d(&format!("{EX}text"), &format!("{EX}fasta"), &o));
    }

    #[test]
    fn unrelated_rejected() {
        let o = [xml(), ttl()];
        assert!(!d(&format!("{EX}bam"), &format!("{EX}text"), &o));
        assert!(!d(&format!("{EX}fasta"), &format!("{EX}binary"), &o));
        assert!(!d(&format!("{EX}unknown"), &format!("{EX}text"), &o));
    }

    #[test]
    fn equivalence_both_ways_and_with_subclasses() {
        let o = [xml(), ttl()];
        // other:fa ≡ ex:fasta, stated one way
        assert!(d(&format!("{OT}fa"), &format!("{EX}fasta"), &o));
        assert!(d(&format!("{EX}fasta"), &format!("{OT}fa"), &o));
        // via the equivalence, then up the chain of the other file
        assert!(d(&format!("{OT}fa"), &format!("{EX}text"), &o));
        // ex:plain ≡ other:txt ⊑ ex:text
        assert!(d(&format!("{EX}plain"), &format!("{EX}text"), &o));
        // not downwards through an equivalence either
        assert!(!d(&format!("{EX}text"), &format!("{OT}fa"), &o));
        // only with both files
        assert!(!d(&format!("{OT}fa"), &format!("{EX}text"), &[ttl()]));
    }

    #[test]
    fn malformed_files_name_the_file_and_line() {
        let e = Ontology::parse(
            b"@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:d ex:e .\n",
            Syntax::Turtle,
            None,
            "bad.ttl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.ttl:3:11: malformed Turtle"), "{e}");
        let e = Ontology::parse(
            b"<?xml version=\"1.0\"?>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n<a></b>\n</rdf:RDF>\n",
            Syntax::RdfXml,
            None,
            "bad.owl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.owl:3"), "{e}");
        assert!(e.contains("validation error"), "{e}");
    }

    #[test]
    fn syntax_guess() {
        let p = Path::new("x");
        assert_eq!(Syntax::guess(Path::new("a.OWL"), b""), Syntax::RdfXml);
        assert_eq!(Syntax::guess(Path::new("a.ttl"), b""), Syntax::Turtle);
        assert_eq!(Syntax::guess(p, b"\n  <?xml version"), Syntax::RdfXml);
        assert_eq!(
            Syntax::guess(p, b"<http://a> <http://b> <http://c> ."),
            Syntax::Turtle
        );
    }

    #[test]
    fn load_caches_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o.ttl");
        std::fs::write(&f, TTL).unwrap();
        let a = Ontology::load(&f).unwrap();
        let b = Ontology::load(&dir.path().join(".").join("o.ttl")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let e = Ontology::load(&dir.path().join("nope.owl"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.owl"), "{e}");
        std::fs::write(&f, "not turtle at all").unwrap();
        // size changed: read again, and the error names the file
        let e = Ontology::load(&f).unwrap_err().to_string();
        assert!(e.contains("o.ttl:1:"), "{e}");
    }

    fn file(fmt: &str) -> Value {
        json!({"class": "File", "basename": "x.fa", "format": fmt})
    }

    #[test]
    fn formats_of_a_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("o.owl"), XML).unwrap();
        std::fs::write(dir.path().join("o.ttl"), TTL).unwrap();
        let p = json!({
            "$schemas": ["o.owl", "o.ttl"],
            "__base": dir.path().display().to_string(),
            "__ns": {"ex": EX, "ot": OT},
        });
        let f = Formats::of(&p);
        assert!(f.uses_ontology());
        let text = json!(format!("{EX}text"));
        f.check(&file("ex:fasta"), &text, "i").unwrap();
        f.check(&file(&format!("{OT}fa")), &text, "i").unwrap();
        f.check(&json!([file("ex:plain"), {"class": "File"}]), &text, "i")
            .unwrap();
        let e = f
            .check(&file("ex:bam"), &text, "i")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'x.fa'") && e.contains(&format!("'{EX}bam'")),
            "{e}"
        );
        assert!(
            e.contains(&format!("'{EX}text'")) && e.contains("o.owl, o.ttl"),
            "{e}"
        );
        // lists: any of them
        f.check(
            &file("ex:bam"),
            &json!([format!("{EX}text"), "ex:binary"]),
            "i",
        )
        .unwrap();
        // a missing schema is an error only when it is needed
        let p = json!({"$schemas": ["gone.owl"], "__base": dir.path().display().to_string()});
        let f = Formats::of(&p);
        f.check(&file("http://a/b"), &json!("http://a/b"), "i")
            .unwrap();
        let e = f
            .check(&file("http://a/c"), &json!("http://a/b"), "i")
            .unwrap_err();
        assert!(matches!(e, CwlError::Validation(_)) && e.to_string().contains("gone.owl"));
        // remote schemas cannot be consulted: accepted
        let f = Formats::of(&json!({"$schemas": ["https://example.org/EDAM.owl"]}));
        f.check(&file("http://a/c"), &json!("http://a/b"), "i")
            .unwrap();
    }

    #[test]
    fn exact_match_without_schemas() {
        let f = Formats::of(&json!({}));
        assert!(!f.uses_ontology());
        f.check(
            &file("edam:format_1"),
            &json!("http://edamontology.org/format_1"),
            "i",
        )
        .unwrap();
        let e = f
            .check(&file("http://e/format_2"), &json!("http://e/format_1"), "i")
            .unwrap_err()
            .to_string();
        assert!(e.contains("input error") && e.contains("format_2"), "{e}");
    }
}
