//! A search as users ask for it: free text in tantivy's query language,
//! facet selections, a cone and a date range, parsed from a query string
//! with every problem named.

use std::collections::BTreeMap;

use crate::asset::FacetName;
use crate::sky::{Cone, SkyError};

/// The longest free-text query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// The deepest nesting of parentheses accepted in a query.
pub const MAX_NESTING: usize = 16;
/// The most results one page returns.
pub const MAX_LIMIT: usize = 200;
/// How far one may page.
pub const MAX_OFFSET: usize = 10_000;

/// The query-string parameters a search takes.
pub const PARAMETERS: [&str; 9] = [
    "q",
    "facet",
    "ra",
    "dec",
    "radius",
    "date_from",
    "date_to",
    "limit",
    "offset",
];

/// What is wrong with a search; each variant's text is for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown query parameter {name:?}: expected one of {}", PARAMETERS.join(", "), name = .0)]
    UnknownParameter(String),
    #[error("unknown facet {name:?}: the facets are {}", facet_names(), name = .0)]
    UnknownFacet(String),
    #[error("facet={0:?} must be written name:value, e.g. facet=mission:Gaia")]
    MalformedFacet(String),
    #[error("the query is {len} characters long; at most {max} are accepted")]
    QueryTooLong { len: usize, max: usize },
    #[error("{param} must be a number of degrees, not {value:?}")]
    NotDegrees { param: &'static str, value: String },
    #[error("a cone needs ra, dec and radius together")]
    IncompleteCone,
    #[error(transparent)]
    Sky(#[from] SkyError),
    #[error("{param} must be a date, YYYY-MM-DD, not {value:?}")]
    BadDate { param: &'static str, value: String },
    #[error("{param} must be a whole number from {min} to {max}, not {value:?}")]
    OutOfRange {
        param: &'static str,
        value: String,
        min: usize,
        max: usize,
    },
    #[error("the query cannot be read: {0}")]
    Syntax(String),
}

fn facet_names() -> String {
    let names: Vec<&str> = FacetName::ALL.iter().map(|f| f.as_str()).collect();
    names.join(", ")
}

/// The kinds of [`RequestError`], for callers that answer each with its
/// own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A parameter is unknown or malformed.
    Parameter,
    UnknownFacet,
    TooLong,
    /// The cone's position or radius.
    Cone,
    /// The free text is not a valid query.
    Syntax,
}

impl RequestError {
    pub fn problem(&self) -> Problem {
        match self {
            RequestError::UnknownParameter(_)
            | RequestError::MalformedFacet(_)
            | RequestError::BadDate { .. }
            | RequestError::OutOfRange { .. } => Problem::Parameter,
            RequestError::UnknownFacet(_) => Problem::UnknownFacet,
            RequestError::QueryTooLong { .. } => Problem::TooLong,
            RequestError::NotDegrees { .. }
            | RequestError::IncompleteCone
            | RequestError::Sky(_) => Problem::Cone,
            RequestError::Syntax(_) => Problem::Syntax,
        }
    }
}

/// One search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Free text in tantivy's query language; every word must match unless
    /// `OR` says otherwise. Empty: everything.
    pub text: String,
    /// Selected values per facet: any value within a facet, every facet.
    pub facets: BTreeMap<FacetName, Vec<String>>,
    pub cone: Option<Cone>,
    /// Observed on or after this day (Unix seconds of its start).
    pub date_from: Option<i64>,
    /// Observed on or before this day (Unix seconds of its start).
    pub date_to: Option<i64>,
    pub limit: usize,
    pub offset: usize,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            text: String::new(),
            facets: BTreeMap::new(),
            cone: None,
            date_from: None,
            date_to: None,
            limit: 20,
            offset: 0,
        }
    }
}

impl SearchRequest {
    /// Parses a URL query string (`q=…&facet=mission:Gaia&ra=…`).
    pub fn parse(query: Option<&str>) -> Result<SearchRequest, RequestError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        SearchRequest::from_pairs(&pairs)
    }

    /// Builds a request from parameter pairs, every one checked.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<SearchRequest, RequestError> {
        let mut r = SearchRequest::default();
        let (mut ra, mut dec, mut radius) = (None, None, None);
        for (k, v) in pairs {
            let v = v.trim();
            match k.as_str() {
                "q" => r.text = check_text(v)?,
                // An empty field of a form is no value.
                known if v.is_empty() && PARAMETERS.contains(&known) => {}
                "facet" => {
                    let (name, value) = v
                        .split_once(':')
                        .filter(|(_, value)| !value.trim().is_empty())
                        .ok_or_else(|| RequestError::MalformedFacet(v.to_owned()))?;
                    let name = FacetName::parse(name.trim())
                        .ok_or_else(|| RequestError::UnknownFacet(name.trim().to_owned()))?;
                    let values = r.facets.entry(name).or_default();
                    if !values.iter().any(|x| x == value.trim()) {
                        values.push(value.trim().to_owned());
                    }
                }
                "ra" => ra = Some(degrees("ra", v)?),
                "dec" => dec = Some(degrees("dec", v)?),
                "radius" => radius = Some(degrees("radius", v)?),
                "date_from" => r.date_from = Some(day("date_from", v)?),
                "date_to" => r.date_to = Some(day("date_to", v)?),
                "limit" => r.limit = whole("limit", v, 1, MAX_LIMIT)?,
                "offset" => r.offset = whole("offset", v, 0, MAX_OFFSET)?,
                other => return Err(RequestError::UnknownParameter(other.to_owned())),
            }
        }
        r.cone = match (ra, dec, radius) {
            (None, None, None) => None,
            (Some(ra), Some(dec), Some(radius)) => Some(Cone::new(ra, dec, radius)?),
            _ => return Err(RequestError::IncompleteCone),
        };
        Ok(r)
    }

    /// Whether `value` of `facet` is selected (ignoring case).
    pub fn is_selected(&self, facet: FacetName, value: &str) -> bool {
        self.facets
            .get(&facet)
            .is_some_and(|vs| vs.iter().any(|v| v.eq_ignore_ascii_case(value)))
    }
}

/// Checks a free-text query's length and nesting.
pub fn check_text(v: &str) -> Result<String, RequestError> {
    let len = v.chars().count();
    if len > MAX_QUERY_CHARS {
        return Err(RequestError::QueryTooLong {
            len,
            max: MAX_QUERY_CHARS,
        });
    }
    let (mut depth, mut deepest, mut quoted) = (0usize, 0usize, false);
    for c in v.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(RequestError::Syntax(format!(
            "parentheses nest {deepest} deep; at most {MAX_NESTING} are accepted"
        )));
    }
    Ok(v.to_owned())
}

/// A number of degrees.
pub fn degrees(param: &'static str, v: &str) -> Result<f64, RequestError> {
    v.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite())
        .ok_or_else(|| RequestError::NotDegrees {
            param,
            value: v.to_owned(),
        })
}

fn day(param: &'static str, v: &str) -> Result<i64, RequestError> {
    let bad = || RequestError::BadDate {
        param,
        value: v.to_owned(),
    };
    if v.len() != 10 {
        return Err(bad());
    }
    crate::date::parse(v).map(|(_, t)| t).ok_or_else(bad)
}

fn whole(param: &'static str, v: &str, min: usize, max: usize) -> Result<usize, RequestError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| RequestError::OutOfRange {
            param,
            value: v.to_owned(),
            min,
            max,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<SearchRequest, RequestError> {
        SearchRequest::parse(Some(q))
    }

    #[test]
    fn parameters_parse() {
        let r = parse("q=m31+galaxy&facet=mission:Gaia&facet=mission%3AHerschel&facet=type:dataset&ra=10.5&dec=-41&radius=0.5&date_from=2020-01-01&limit=5&offset=10").unwrap();
        assert_eq!(r.text, "m31 galaxy");
        assert_eq!(r.facets[&FacetName::Mission], ["Gaia", "Herschel"]);
        assert_eq!(r.facets[&FacetName::Type], ["dataset"]);
        let c = r.cone.unwrap();
        assert_eq!((c.centre.ra, c.centre.dec, c.radius), (10.5, -41.0, 0.5));
        assert_eq!(r.date_from, Some(1_577_836_800));
        assert_eq!((r.limit, r.offset), (5, 10));
        assert!(r.is_selected(FacetName::Mission, "gaia"));
    }

    #[test]
    fn empty_form_fields_are_no_values() {
        let r = parse("q=&facet=&ra=&dec=&radius=&date_from=&date_to=&limit=&offset=").unwrap();
        assert_eq!(r, SearchRequest::default());
    }

    #[test]
    fn every_bad_input_is_named_with_its_problem() {
        let long = format!("q={}", "a".repeat(MAX_QUERY_CHARS + 1));
        let deep = format!("q={}x{}", "(".repeat(20), ")".repeat(20));
        for (q, problem, says) in [
            (
                "colour=red",
                Problem::Parameter,
                "unknown query parameter \"colour\"",
            ),
            (
                "facet=colour:red",
                Problem::UnknownFacet,
                "unknown facet \"colour\"",
            ),
            ("facet=mission", Problem::Parameter, "name:value"),
            ("facet=mission:", Problem::Parameter, "name:value"),
            (long.as_str(), Problem::TooLong, "at most 500"),
            (deep.as_str(), Problem::Syntax, "nest 20 deep"),
            (
                "ra=abc&dec=1&radius=1",
                Problem::Cone,
                "ra must be a number of degrees",
            ),
            ("ra=1&dec=1", Problem::Cone, "ra, dec and radius together"),
            ("ra=400&dec=1&radius=1", Problem::Cone, "RA must be"),
            ("ra=1&dec=-91&radius=1", Problem::Cone, "Dec must be"),
            ("ra=1&dec=1&radius=-0.1", Problem::Cone, "radius must be"),
            ("ra=NaN&dec=1&radius=1", Problem::Cone, "ra must be"),
            ("ra=1&dec=inf&radius=1", Problem::Cone, "dec must be"),
            ("date_from=2020-13-01", Problem::Parameter, "YYYY-MM-DD"),
            ("limit=0", Problem::Parameter, "from 1 to 200"),
            ("limit=201", Problem::Parameter, "from 1 to 200"),
            ("offset=-1", Problem::Parameter, "from 0 to 10000"),
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.problem(), problem, "{q}: {e}");
            assert!(e.to_string().contains(says), "{q}: {e}");
        }
    }
}
