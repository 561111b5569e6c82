//! What the index holds: assets of a few kinds — datalabs, pipelines, data
//! volumes and the datasets inside volumes — all described by one record,
//! [`Asset`]. A service feeds its kind by building assets; a new kind is a
//! variant of [`AssetKind`] and a constructor.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::sky::Shape;

/// The kinds of asset the discovery portal finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Datalab,
    /// CWL workflows and tools of the pipeline catalogue (fed by the
    /// pipeline service).
    Pipeline,
    Volume,
    /// A file inside a data volume, described by its header and sidecar.
    Dataset,
}

impl AssetKind {
    pub const ALL: [AssetKind; 4] = [
        AssetKind::Datalab,
        AssetKind::Pipeline,
        AssetKind::Volume,
        AssetKind::Dataset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Datalab => "datalab",
            AssetKind::Pipeline => "pipeline",
            AssetKind::Volume => "volume",
            AssetKind::Dataset => "dataset",
        }
    }

    pub fn parse(s: &str) -> Option<AssetKind> {
        AssetKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The facets results are counted and narrowed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacetName {
    /// The kind of asset (`datalab`, `dataset`, …).
    Type,
    /// What a tool does (`analysis_tool`, …) or `data_volume`.
    Property,
    Domain,
    Mission,
    Instrument,
    Filter,
    /// The year of observation.
    Year,
    /// The data volume a dataset lies in.
    Volume,
}

impl FacetName {
    pub const ALL: [FacetName; 8] = [
        FacetName::Type,
        FacetName::Property,
        FacetName::Domain,
        FacetName::Mission,
        FacetName::Instrument,
        FacetName::Filter,
        FacetName::Year,
        FacetName::Volume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FacetName::Type => "type",
            FacetName::Property => "property",
            FacetName::Domain => "domain",
            FacetName::Mission => "mission",
            FacetName::Instrument => "instrument",
            FacetName::Filter => "filter",
            FacetName::Year => "year",
            FacetName::Volume => "volume",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FacetName::Type => "Type of asset",
            FacetName::Property => "Properties",
            FacetName::Domain => "Domain",
            FacetName::Mission => "Mission",
            FacetName::Instrument => "Instrument",
            FacetName::Filter => "Filter",
            FacetName::Year => "Year of observation",
            FacetName::Volume => "Data volume",
        }
    }

    pub fn parse(s: &str) -> Option<FacetName> {
        FacetName::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One indexed asset. Text fields are searched; list fields are facets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub kind: Option<AssetKind>,
    /// The datalab's, pipeline's or volume's name; a dataset's path inside
    /// its volume.
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The volume a dataset lies in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// A dataset's path as labs see it (under its volume's mount path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mission: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instrument: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telescope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Start of the observation, ISO 8601 (`2023-04-05T06:07:08`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_obs: Option<String>,
    /// Exposure time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exptime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// Image axes (`NAXIS1`, `NAXIS2`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image: Vec<u64>,
    /// Table column names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// `web` or `desktop`, for datalabs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datalab_kind: Option<String>,
    /// Whether a datalab can be launched on a file.
    #[serde(default)]
    pub opens_files: bool,
    /// Who may find it: the keys of its audience (see
    /// `insitu_domain::Audience::keys`).
    pub audience: Vec<String>,
    /// What the harvester saw of a dataset's files, to skip unchanged ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Asset {
    /// A new asset of this kind, name and title, seen by this audience.
    pub fn new(kind: AssetKind, name: &str, title: &str, audience: Vec<String>) -> Asset {
        Asset {
            kind: Some(kind),
            name: name.to_owned(),
            title: title.to_owned(),
            audience,
            ..Asset::default()
        }
    }

    pub fn kind(&self) -> AssetKind {
        self.kind.unwrap_or(AssetKind::Dataset)
    }

    /// The asset's id: `datalab:<name>`, `volume:<name>`,
    /// `dataset:<volume>/<path>`, `pipeline:<name>`.
    pub fn id(&self) -> String {
        match (&self.volume, self.kind()) {
            (Some(v), AssetKind::Dataset) => format!("dataset:{v}/{}", self.name),
            (_, k) => format!("{}:{}", k.as_str(), self.name),
        }
    }

    /// The year of observation, when the date is known.
    pub fn year(&self) -> Option<i32> {
        crate::date::parse(self.date_obs.as_deref()?).map(|(y, _)| y)
    }

    /// The values the asset carries for a facet (borrowed where it holds
    /// them as they are).
    pub fn facet_values(&self, facet: FacetName) -> Vec<Cow<'_, str>> {
        fn each(list: &[String]) -> Vec<Cow<'_, str>> {
            list.iter().map(|v| Cow::Borrowed(v.as_str())).collect()
        }
        match facet {
            FacetName::Type => vec![Cow::Borrowed(self.kind().as_str())],
            FacetName::Property => each(&self.properties),
            FacetName::Domain => each(&self.domain),
            FacetName::Mission => each(&self.mission),
            FacetName::Instrument => each(&self.instrument),
            FacetName::Filter => each(&self.filter),
            FacetName::Year => self
                .year()
                .map(|y| Cow::Owned(y.to_string()))
                .into_iter()
                .collect(),
            FacetName::Volume => self
                .volume
                .as_deref()
                .map(Cow::Borrowed)
                .into_iter()
                .collect(),
        }
    }

    /// The words a free-text query may match beyond those with a field of
    /// their own in the index (name, title, object, mission, instrument,
    /// filter), which a query searches too: each word is indexed once.
    pub fn text(&self) -> String {
        let mut parts: Vec<&str> = vec![&self.description];
        for list in [
            &self.properties,
            &self.domain,
            &self.keywords,
            &self.columns,
        ] {
            parts.extend(list.iter().map(String::as_str));
        }
        parts.extend(
            [&self.telescope, &self.volume, &self.datalab_kind]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        parts.push(self.kind().as_str());
        parts.join(" ")
    }
}
