//! Faceted search shared by the datalab and volume catalogues: free text
//! (every word must match) plus facets (any of the chosen values within one
//! facet, all facets together). Facet counts are disjunctive: a facet's
//! counts ignore that facet's own selection, so choosing "astronomy" does not
//! hide the other domains.

use std::collections::BTreeMap;

use insitu_api::FacetCount;

use crate::error::Error;

/// Something the catalogue can search.
pub trait Searchable {
    /// Lowercased text the free-text query matches.
    fn text(&self) -> String;
    /// Values the item carries for a facet.
    fn facet_values(&self, facet: &str) -> Vec<String>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub words: Vec<String>,
    pub q: String,
    pub facets: BTreeMap<String, Vec<String>>,
}

impl Filter {
    /// Parses a query string. Keys other than `q` and the given facets are
    /// an error when `strict` (the API), ignored otherwise (pages).
    pub fn parse(
        query: Option<&str>,
        facets: &[&'static str],
        strict: bool,
    ) -> Result<Filter, Error> {
        let mut f = Filter::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if k == "q" {
                f.q = v.trim().to_owned();
                f.words = v.split_whitespace().map(str::to_lowercase).collect();
            } else if facets.contains(&k.as_ref()) {
                if !v.is_empty() {
                    f.facets
                        .entry(k.into_owned())
                        .or_default()
                        .push(v.into_owned());
                }
            } else if strict {
                return Err(Error::InvalidQuery {
                    key: k.into_owned(),
                    expected: facets.to_vec(),
                });
            }
        }
        Ok(f)
    }

    pub fn is_selected(&self, facet: &str, value: &str) -> bool {
        self.facets
            .get(facet)
            .is_some_and(|vs| vs.iter().any(|v| v.eq_ignore_ascii_case(value)))
    }

    fn matches_text<T: Searchable>(&self, item: &T) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let text = item.text();
        self.words.iter().all(|w| text.contains(w.as_str()))
    }

    fn matches_facets<T: Searchable>(&self, item: &T, except: Option<&str>) -> bool {
        self.facets
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != except)
            .all(|(facet, wanted)| {
                let have = item.facet_values(facet);
                wanted
                    .iter()
                    .any(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w)))
            })
    }
}

/// Items matching the filter, and the counts for every facet.
pub fn search<'a, T: Searchable>(
    items: &'a [T],
    filter: &Filter,
    facets: &[&str],
) -> (Vec<&'a T>, BTreeMap<String, Vec<FacetCount>>) {
    let text_matches: Vec<&T> = items.iter().filter(|i| filter.matches_text(*i)).collect();
    let hits = text_matches
        .iter()
        .copied()
        .filter(|i| filter.matches_facets(*i, None))
        .collect();
    let mut counts = BTreeMap::new();
    for facet in facets {
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for item in text_matches
            .iter()
            .filter(|i| filter.matches_facets(**i, Some(facet)))
        {
            let mut values = item.facet_values(facet);
            values.sort();
            values.dedup();
            for v in values {
                *tally.entry(v).or_default() += 1;
            }
        }
        let mut list: Vec<FacetCount> = tally
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        counts.insert((*facet).to_owned(), list);
    }
    (hits, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(&'static str, &'static [&'static str]);
    impl Searchable for Item {
        fn text(&self) -> String {
            self.0.to_lowercase()
        }
        fn facet_values(&self, _: &str) -> Vec<String> {
            self.1.iter().map(|s| (*s).to_owned()).collect()
        }
    }

    #[test]
    fn text_words_all_match_and_facets_are_disjunctive() {
        let items = [
            Item("Jupyter Lab", &["astro"]),
            Item("Jupyter Helio", &["helio"]),
            Item("DS9", &["astro"]),
        ];
        let f = Filter::parse(Some("q=jupyter&domain=astro"), &["domain"], true).unwrap();
        let (hits, counts) = search(&items, &f, &["domain"]);
        assert_eq!(
            hits.iter().map(|i| i.0).collect::<Vec<_>>(),
            ["Jupyter Lab"]
        );
        let c: Vec<(String, usize)> = counts["domain"]
            .iter()
            .map(|c| (c.value.clone(), c.count))
            .collect();
        assert_eq!(c, [("astro".to_owned(), 1), ("helio".to_owned(), 1)]);
    }

    #[test]
    fn strict_parsing_refuses_unknown_keys() {
        let e = Filter::parse(Some("colour=red"), &["domain"], true).unwrap_err();
        assert!(matches!(e, Error::InvalidQuery { .. }), "{e}");
        assert!(Filter::parse(Some("colour=red"), &["domain"], false).is_ok());
    }
}
