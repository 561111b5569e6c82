//! The index itself: a tantivy index on disk (a cache: rebuilt when it is
//! missing, corrupt or of an older layout) holding every asset, and the
//! zones spatial index over the datasets that have a place on the sky.
//!
//! Every search — text, facets, cone — is one tantivy query that includes
//! the viewer's audience keys as a required clause, so nothing a viewer may
//! not see is found, counted or paged through.
//!
//! Each word of an asset is indexed once (building the index is mostly
//! tokenizing and term dictionaries): in a field of its own or in `text`,
//! and free text searches every one of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tantivy::collector::{Count, DocSetCollector, FacetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, QueryParser, RangeQuery,
    TermQuery,
};
use tantivy::schema::{
    FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    Term,
};

use crate::asset::{Asset, AssetKind, FacetName};
use crate::request::{RequestError, SearchRequest};
use crate::sky::{Cone, Shape};
use crate::zones::ZoneIndex;

/// Bump when the schema or the meaning of a field changes: an index of
/// another version is rebuilt.
const LAYOUT_VERSION: &str = "2";
const VERSION_FILE: &str = "insitu-index-version";

/// What can go wrong with the index (not the caller's input).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index: a stored record does not read back: {0}")]
    Record(#[from] serde_json::Error),
    #[error("search index: a lock was poisoned")]
    Poisoned,
}

/// A search that failed: the caller's request, or the index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.into())
    }
}

/// How the index writes.
#[derive(Debug, Clone, Copy)]
pub struct IndexOptions {
    /// Indexing threads.
    pub threads: usize,
    /// Memory for buffered documents, in all.
    pub memory_bytes: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            threads: 1,
            memory_bytes: 64 << 20,
        }
    }
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    audience: Field,
    text: Field,
    title: Field,
    name: Field,
    object: Field,
    mission: Field,
    instrument: Field,
    filter: Field,
    facets: Field,
    date: Field,
    sort: Field,
    doc: Field,
}

/// The fields users may name in a query (`mission:gaia`).
pub const QUERY_FIELDS: [&str; 6] = ["title", "name", "object", "mission", "instrument", "filter"];

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        key: b.add_u64_field("key", INDEXED),
        audience: b.add_text_field("audience", STRING),
        text: b.add_text_field("text", TEXT),
        title: b.add_text_field("title", TEXT),
        name: b.add_text_field("name", TEXT),
        object: b.add_text_field("object", TEXT),
        mission: b.add_text_field("mission", TEXT),
        instrument: b.add_text_field("instrument", TEXT),
        filter: b.add_text_field("filter", TEXT),
        facets: b.add_facet_field("facets", FacetOptions::default()),
        // Date ranges read the fast column; terms would go unused.
        date: b.add_i64_field("date", tantivy::schema::FAST),
        sort: b.add_text_field("sort", STRING | tantivy::schema::FAST),
        doc: b.add_text_field("doc", STORED),
    };
    (b.build(), f)
}

/// Matches documents holding any of the terms, without scoring. Built of
/// term queries rather than a term set, so that intersected with a
/// selective clause it skips through the postings instead of reading all
/// of them (`public` is on nearly every document).
fn any_of(terms: impl IntoIterator<Item = Term>) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = terms
        .into_iter()
        .map(|t| {
            (
                Occur::Should,
                Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
            )
        })
        .collect();
    let inner: Box<dyn Query> = match clauses.len() {
        0 => return Box::new(EmptyQuery),
        1 => clauses.remove(0).1,
        _ => Box::new(BooleanQuery::new(clauses)),
    };
    Box::new(ConstScoreQuery::new(inner, 0.0))
}

/// The term of one facet value: it also selects the assets of a kind
/// (`type`) or the datasets of a volume (`volume`), which have no field of
/// their own.
fn facet_term(field: Field, facet: FacetName, value: &str) -> Term {
    Term::from_facet(
        field,
        &tantivy::schema::Facet::from_path([facet.as_str(), value]),
    )
}

/// The stable 64-bit key of an asset id: what replaces and removes an
/// asset in the index, and what the spatial index holds.
pub fn key_of(id: &str) -> u64 {
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// One found asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub asset: Asset,
    /// Degrees from the cone's centre to the dataset's centre, for cone
    /// searches.
    pub distance: Option<f64>,
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResults {
    /// Everything that matched (not only this page).
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Per facet, its values and how many matches carry each, most first.
    /// A facet's counts ignore that facet's own selection, so choosing one
    /// mission still shows how many the others have.
    pub facets: BTreeMap<FacetName, Vec<(String, u64)>>,
}

/// Where the index lives and why it was rebuilt, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The index on disk was taken as it was.
    Reused,
    /// A new, empty index was made (the reason says why).
    Rebuilt(String),
    /// No index could be made on disk; this one lives in memory.
    InMemory(String),
}

/// Every placed asset by key: its volume and shape.
type Placed = HashMap<u64, (Option<String>, Shape)>;
type Clauses = Vec<(Occur, Box<dyn Query>)>;

/// The discovery index.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
    parser: QueryParser,
    /// Every placed asset by key: its volume and shape; the spatial index
    /// is rebuilt from it at each commit.
    shapes: Mutex<Placed>,
    zones: RwLock<Arc<ZoneIndex>>,
}

impl SearchIndex {
    /// Opens the index in `dir`, or makes a new one there when it is
    /// missing, unreadable or of another layout; with no usable directory,
    /// an index in memory. It never fails to give an index.
    pub fn open(dir: &Path, options: IndexOptions) -> (SearchIndex, Opened) {
        // tantivy may panic on damaged files rather than return an error;
        // either way the index is rebuilt.
        let attempt =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| try_open_dir(dir, options)));
        let reason = match attempt {
            Ok(Ok(Some(ix))) => return (ix, Opened::Reused),
            Ok(Ok(None)) => "there was none".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "reading it panicked (damaged files)".to_owned(),
        };
        let fresh = wipe(dir).and_then(|()| {
            let (schema, _) = schema();
            Index::create_in_dir(dir, schema)?;
            std::fs::write(dir.join(VERSION_FILE), LAYOUT_VERSION)?;
            try_open_dir(dir, options)
        });
        match fresh {
            Ok(Some(ix)) => (ix, Opened::Rebuilt(reason)),
            Ok(None) => (
                SearchIndex::in_memory(options),
                Opened::InMemory("the new index vanished".to_owned()),
            ),
            Err(e) => (
                SearchIndex::in_memory(options),
                Opened::InMemory(e.to_string()),
            ),
        }
    }

    /// An index in memory only (tests, or when no directory can be used).
    pub fn in_memory(options: IndexOptions) -> SearchIndex {
        let (schema, f) = schema();
        let index = Index::create_in_ram(schema);
        // An index in RAM with a fresh schema always opens.
        match SearchIndex::from_index(index, f, options) {
            Ok(ix) => ix,
            Err(e) => unreachable_index(e),
        }
    }

    #[allow(clippy::needless_pass_by_value)]
    fn from_index(
        index: Index,
        f: Fields,
        options: IndexOptions,
    ) -> Result<SearchIndex, IndexError> {
        let threads = options.threads.max(1);
        let memory = options.memory_bytes.max(threads * (16 << 20));
        let writer = index.writer_with_num_threads(threads, memory)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        // Each word is indexed once, in its own field or in `text`; free
        // text searches them all.
        let mut parser = QueryParser::for_index(
            &index,
            vec![
                f.title,
                f.name,
                f.object,
                f.mission,
                f.instrument,
                f.filter,
                f.text,
            ],
        );
        parser.set_conjunction_by_default();
        parser.set_field_boost(f.title, 2.0);
        let ix = SearchIndex {
            reader,
            writer: Mutex::new(writer),
            f,
            parser,
            shapes: Mutex::new(HashMap::new()),
            zones: RwLock::new(Arc::new(ZoneIndex::build(Vec::new()))),
        };
        ix.load_shapes()?;
        Ok(ix)
    }

    /// Reads every placed asset back into the spatial index.
    fn load_shapes(&self) -> Result<(), IndexError> {
        let searcher = self.reader.searcher();
        let datasets = TermQuery::new(
            facet_term(self.f.facets, FacetName::Type, AssetKind::Dataset.as_str()),
            IndexRecordOption::Basic,
        );
        let docs = searcher.search(&datasets, &DocSetCollector)?;
        let mut shapes = self.shapes.lock().map_err(|_| IndexError::Poisoned)?;
        for addr in docs {
            let asset = self.asset_at(&searcher, addr)?;
            if let Some(shape) = asset.shape.clone() {
                shapes.insert(key_of(&asset.id()), (asset.volume.clone(), shape));
            }
        }
        drop(shapes);
        self.rebuild_zones()
    }

    fn rebuild_zones(&self) -> Result<(), IndexError> {
        let entries: Vec<(u64, Shape)> = self
            .shapes
            .lock()
            .map_err(|_| IndexError::Poisoned)?
            .iter()
            .map(|(k, (_, s))| (*k, s.clone()))
            .collect();
        let zones = Arc::new(ZoneIndex::build(entries));
        *self.zones.write().map_err(|_| IndexError::Poisoned)? = zones;
        Ok(())
    }

    fn asset_at(&self, searcher: &Searcher, addr: DocAddress) -> Result<Asset, IndexError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let json = doc
            .get_first(self.f.doc)
            .and_then(|v| v.as_str())
            .unwrap_or("{}");
        Ok(serde_json::from_str(json)?)
    }

    fn document(&self, a: &Asset, key: u64) -> TantivyDocument {
        let f = &self.f;
        let mut d = TantivyDocument::default();
        d.add_u64(f.key, key);
        for k in &a.audience {
            d.add_text(f.audience, k);
        }
        d.add_text(f.text, a.text());
        d.add_text(f.title, &a.title);
        d.add_text(f.name, &a.name);
        if let Some(o) = &a.object {
            d.add_text(f.object, o);
        }
        for (field, list) in [
            (f.mission, &a.mission),
            (f.instrument, &a.instrument),
            (f.filter, &a.filter),
        ] {
            for v in list {
                d.add_text(field, v);
            }
        }
        for facet in FacetName::ALL {
            let mut values = a.facet_values(facet);
            values.sort_unstable();
            values.dedup();
            for v in values.iter().filter(|v| !v.is_empty()) {
                d.add_facet(
                    f.facets,
                    tantivy::schema::Facet::from_path([facet.as_str(), v]),
                );
            }
        }
        if let Some((_, at)) = a.date_obs.as_deref().and_then(crate::date::parse) {
            d.add_i64(f.date, at);
        }
        let order = AssetKind::ALL
            .iter()
            .position(|k| *k == a.kind())
            .unwrap_or(9);
        d.add_text(f.sort, format!("{order}{}", a.title.to_lowercase()));
        d.add_text(f.doc, serde_json::to_string(a).unwrap_or_default());
        d
    }

    fn shapes(&self) -> Result<std::sync::MutexGuard<'_, Placed>, IndexError> {
        self.shapes.lock().map_err(|_| IndexError::Poisoned)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, IndexError> {
        self.writer.lock().map_err(|_| IndexError::Poisoned)
    }

    /// Adds an asset, replacing the one of the same id. Seen after
    /// [`SearchIndex::commit`].
    pub fn upsert(&self, a: &Asset) -> Result<(), IndexError> {
        self.put(a, true)
    }

    /// Adds an asset the index does not hold yet (cheaper than
    /// [`SearchIndex::upsert`]: nothing to replace).
    pub fn add(&self, a: &Asset) -> Result<(), IndexError> {
        self.put(a, false)
    }

    fn put(&self, a: &Asset, replace: bool) -> Result<(), IndexError> {
        let key = key_of(&a.id());
        let doc = self.document(a, key);
        let writer = self.writer()?;
        if replace {
            writer.delete_term(Term::from_field_u64(self.f.key, key));
        }
        writer.add_document(doc)?;
        drop(writer);
        let mut shapes = self.shapes()?;
        match &a.shape {
            Some(s) => shapes.insert(key, (a.volume.clone(), s.clone())),
            None => shapes.remove(&key),
        };
        Ok(())
    }

    /// Removes the asset of this id.
    pub fn remove(&self, id: &str) -> Result<(), IndexError> {
        let key = key_of(id);
        self.writer()?
            .delete_term(Term::from_field_u64(self.f.key, key));
        self.shapes()?.remove(&key);
        Ok(())
    }

    /// Removes every asset of a kind.
    pub fn remove_kind(&self, kind: AssetKind) -> Result<(), IndexError> {
        self.writer()?
            .delete_term(facet_term(self.f.facets, FacetName::Type, kind.as_str()));
        if kind == AssetKind::Dataset {
            self.shapes()?.clear();
        }
        Ok(())
    }

    /// Removes every dataset of a volume.
    pub fn remove_volume_datasets(&self, volume: &str) -> Result<(), IndexError> {
        self.writer()?
            .delete_term(facet_term(self.f.facets, FacetName::Volume, volume));
        self.shapes()?
            .retain(|_, (v, _)| v.as_deref() != Some(volume));
        Ok(())
    }

    /// Replaces every asset of a kind with these, and commits.
    pub fn replace_kind(&self, kind: AssetKind, assets: &[Asset]) -> Result<(), IndexError> {
        self.remove_kind(kind)?;
        for a in assets {
            self.add(a)?;
        }
        self.commit()
    }

    /// Makes every change so far visible to searches.
    pub fn commit(&self) -> Result<(), IndexError> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        self.rebuild_zones()
    }

    /// Every stored asset of a kind (and of a volume, when given).
    pub fn assets(&self, kind: AssetKind, volume: Option<&str>) -> Result<Vec<Asset>, IndexError> {
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermQuery::new(
                facet_term(self.f.facets, FacetName::Type, kind.as_str()),
                IndexRecordOption::Basic,
            )),
        )];
        if let Some(v) = volume {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    facet_term(self.f.facets, FacetName::Volume, v),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let docs = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector)?;
        docs.into_iter()
            .map(|addr| self.asset_at(&searcher, addr))
            .collect()
    }

    /// How many assets the index holds (all viewers together).
    pub fn len(&self) -> usize {
        usize::try_from(self.reader.searcher().num_docs()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn term_query(&self, term: Term) -> Box<dyn Query> {
        Box::new(TermQuery::new(term, IndexRecordOption::Basic))
    }

    /// The clauses every match must meet except the facet selections:
    /// audience, text, cone, dates.
    fn base_clauses(&self, r: &SearchRequest, keys: &[String]) -> Result<Clauses, SearchError> {
        let f = &self.f;
        let audience = any_of(keys.iter().map(|k| Term::from_field_text(f.audience, k)));
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, audience)];
        if !r.text.trim().is_empty() {
            let q = self.parser.parse_query(&r.text).map_err(|e| {
                RequestError::Syntax(match e {
                    tantivy::query::QueryParserError::FieldDoesNotExist(field) => format!(
                        "there is no field {field:?}; name one of {}",
                        QUERY_FIELDS.join(", ")
                    ),
                    other => other.to_string(),
                })
            })?;
            clauses.push((Occur::Must, q));
        }
        if let Some(cone) = &r.cone {
            let keys = self.cone_keys(cone)?;
            let q = any_of(keys.into_iter().map(|k| Term::from_field_u64(f.key, k)));
            clauses.push((Occur::Must, q));
        }
        if r.date_from.is_some() || r.date_to.is_some() {
            let bound = |t: Option<i64>, end: bool| match t {
                None => Bound::Unbounded,
                // A day's end is the next day's start, excluded.
                Some(t) if end => Bound::Excluded(Term::from_field_i64(f.date, t + 86_400)),
                Some(t) => Bound::Included(Term::from_field_i64(f.date, t)),
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(r.date_from, false),
                    bound(r.date_to, true),
                )),
            ));
        }
        Ok(clauses)
    }

    /// Keys of the placed assets a cone meets, exactly.
    fn cone_keys(&self, cone: &Cone) -> Result<Vec<u64>, IndexError> {
        let zones = Arc::clone(&*self.zones.read().map_err(|_| IndexError::Poisoned)?);
        Ok(zones.query(cone))
    }

    /// The facet terms that select `values` of `facet`, matching case
    /// insensitively against the values the index holds.
    fn facet_terms(
        &self,
        searcher: &Searcher,
        facet: FacetName,
        values: &[String],
    ) -> Result<Vec<Term>, IndexError> {
        let wanted: HashSet<String> = values.iter().map(|v| v.to_lowercase()).collect();
        let mut found: HashSet<String> = values.iter().cloned().collect();
        let prefix = format!("{}\u{0}", facet.as_str());
        let mut end = prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.f.facets)?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .lt(&end)
                .into_stream()?;
            while stream.advance() {
                let Ok(text) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                let facet_value = tantivy::schema::Facet::from_encoded(text.as_bytes().to_vec())
                    .ok()
                    .and_then(|f| f.to_path().get(1).map(|s| (*s).to_owned()));
                if let Some(v) = facet_value
                    && wanted.contains(&v.to_lowercase())
                {
                    found.insert(v);
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|v| {
                Term::from_facet(
                    self.f.facets,
                    &tantivy::schema::Facet::from_path([facet.as_str(), v.as_str()]),
                )
            })
            .collect())
    }

    /// Searches as a viewer holding `keys` (see
    /// `insitu_domain::Viewer::keys`).
    pub fn search(&self, r: &SearchRequest, keys: &[String]) -> Result<SearchResults, SearchError> {
        let searcher = self.reader.searcher();
        let base = self.base_clauses(r, keys)?;
        let mut selections: Vec<(FacetName, Box<dyn Query>)> = Vec::new();
        for (facet, values) in &r.facets {
            let terms = self.facet_terms(&searcher, *facet, values)?;
            selections.push((*facet, any_of(terms)));
        }
        let query = |except: Option<FacetName>| -> Box<dyn Query> {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> =
                base.iter().map(|(o, q)| (*o, q.box_clone())).collect();
            clauses.extend(
                selections
                    .iter()
                    .filter(|(f, _)| Some(*f) != except)
                    .map(|(_, q)| (Occur::Must, q.box_clone())),
            );
            if clauses.is_empty() {
                Box::new(AllQuery)
            } else {
                Box::new(BooleanQuery::new(clauses))
            }
        };
        let all = query(None);
        let mut counts = FacetCollector::for_field("facets");
        let unselected: Vec<FacetName> = FacetName::ALL
            .into_iter()
            .filter(|f| !r.facets.contains_key(f))
            .collect();
        for f in &unselected {
            counts.add_facet(tantivy::schema::Facet::from_path([f.as_str()]));
        }
        let page = TopDocs::with_limit(r.limit.max(1)).and_offset(r.offset);
        let ranked = !r.text.trim().is_empty();
        let (total, addrs, facet_counts) = if ranked {
            let (total, top, fc) =
                searcher.search(&all, &(Count, page.order_by_score(), counts))?;
            (
                total,
                top.into_iter().map(|(_, a)| a).collect::<Vec<_>>(),
                fc,
            )
        } else {
            let (total, top, fc) = searcher.search(
                &all,
                &(
                    Count,
                    page.order_by_string_fast_field("sort", Order::Asc),
                    counts,
                ),
            )?;
            (
                total,
                top.into_iter().map(|(_, a)| a).collect::<Vec<_>>(),
                fc,
            )
        };
        let mut facets = BTreeMap::new();
        let tally = |fc: &tantivy::collector::FacetCounts, f: FacetName| -> Vec<(String, u64)> {
            let mut list: Vec<(String, u64)> = fc
                .get(tantivy::schema::Facet::from_path([f.as_str()]))
                .filter_map(|(facet, n)| facet.to_path().get(1).map(|v| ((*v).to_owned(), n)))
                .collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list
        };
        for f in &unselected {
            facets.insert(*f, tally(&facet_counts, *f));
        }
        for (f, _) in &selections {
            let mut c = FacetCollector::for_field("facets");
            c.add_facet(tantivy::schema::Facet::from_path([f.as_str()]));
            let fc = searcher.search(&query(Some(*f)), &c)?;
            facets.insert(*f, tally(&fc, *f));
        }
        let mut hits = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let asset = self.asset_at(&searcher, addr)?;
            let distance = r
                .cone
                .as_ref()
                .zip(asset.shape.as_ref())
                .map(|(c, s)| c.centre.distance(s.centre));
            hits.push(Hit { asset, distance });
        }
        Ok(SearchResults {
            total,
            hits,
            facets,
        })
    }

    /// A cone search as a viewer holding `keys`: up to `limit` placed
    /// assets, nearest first, and whether there were more.
    pub fn cone(
        &self,
        cone: &Cone,
        keys: &[String],
        limit: usize,
    ) -> Result<(Vec<Hit>, bool), SearchError> {
        let found = self.cone_keys(cone)?;
        if found.is_empty() || limit == 0 {
            return Ok((Vec::new(), !found.is_empty()));
        }
        let searcher = self.reader.searcher();
        let f = &self.f;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                any_of(found.iter().map(|k| Term::from_field_u64(f.key, *k))),
            ),
            (
                Occur::Must,
                any_of(keys.iter().map(|k| Term::from_field_text(f.audience, k))),
            ),
        ]);
        let docs = searcher.search(&query, &DocSetCollector)?;
        let mut hits = Vec::with_capacity(docs.len());
        for addr in docs {
            let asset = self.asset_at(&searcher, addr)?;
            let distance = asset.shape.as_ref().map(|s| cone.centre.distance(s.centre));
            hits.push(Hit { asset, distance });
        }
        hits.sort_by(|a, b| {
            a.distance
                .unwrap_or(f64::MAX)
                .total_cmp(&b.distance.unwrap_or(f64::MAX))
                .then_with(|| a.asset.id().cmp(&b.asset.id()))
        });
        let more = hits.len() > limit;
        hits.truncate(limit);
        Ok((hits, more))
    }

    /// The term for an asset kind (for tests and tools).
    pub fn kind_count(&self, kind: AssetKind) -> Result<usize, IndexError> {
        let searcher = self.reader.searcher();
        Ok(searcher.search(
            &*self.term_query(facet_term(self.f.facets, FacetName::Type, kind.as_str())),
            &Count,
        )?)
    }
}

/// Opens an existing index in `dir` of this layout; `None` when there is
/// none.
fn try_open_dir(dir: &Path, options: IndexOptions) -> Result<Option<SearchIndex>, IndexError> {
    if !dir.join("meta.json").exists() {
        return Ok(None);
    }
    let version = std::fs::read_to_string(dir.join(VERSION_FILE)).unwrap_or_default();
    if version.trim() != LAYOUT_VERSION {
        return Err(IndexError::Io(std::io::Error::other(format!(
            "the index on disk has layout {:?}; this version needs {LAYOUT_VERSION}",
            version.trim()
        ))));
    }
    let index = Index::open_in_dir(dir)?;
    let (expected, f) = schema();
    if index.schema() != expected {
        return Err(IndexError::Io(std::io::Error::other(
            "the index on disk has another schema",
        )));
    }
    // Read every segment once, so damage shows now rather than mid-search.
    let ix = SearchIndex::from_index(index, f, options)?;
    let searcher = ix.reader.searcher();
    searcher.search(&AllQuery, &Count)?;
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(1)?;
        for doc in segment.doc_ids_alive() {
            store.get::<TantivyDocument>(doc)?;
        }
    }
    drop(searcher);
    Ok(Some(ix))
}

/// Empties `dir` (the index's own directory) and makes it again.
fn wipe(dir: &Path) -> Result<(), IndexError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[allow(clippy::needless_pass_by_value)]
fn unreachable_index(e: IndexError) -> SearchIndex {
    // Creating an index in memory fails only if tantivy cannot start a
    // writer thread; there is nothing to serve then.
    tracing::error!(error = %e, "cannot make a search index in memory");
    std::process::abort()
}

/// The directory of the index below a data directory.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("search-index")
}
