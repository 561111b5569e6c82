//! Sidecar metadata: what an archive's curators say about a file, beside
//! it. `<file>.meta.toml` describes one file (and makes any file, FITS or
//! not, a dataset); `directory.meta.toml` describes every file in its
//! directory and the directories below, a deeper one overriding a
//! shallower one field by field. A sidecar's fields override what the
//! file's header says. See `docs/sidecars.md`.

use std::path::Path;

use serde::Deserialize;

use crate::sky::{Footprint, Shape, SkyPos};

/// The name of a directory's sidecar.
pub const DIRECTORY_SIDECAR: &str = "directory.meta.toml";
/// The suffix of a file's sidecar.
pub const FILE_SIDECAR_SUFFIX: &str = ".meta.toml";

/// One value or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A sidecar file's fields; all optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub title: Option<String>,
    pub description: Option<String>,
    pub object: Option<String>,
    pub telescope: Option<String>,
    pub domain: Option<OneOrMany>,
    pub mission: Option<OneOrMany>,
    pub instrument: Option<OneOrMany>,
    pub filter: Option<OneOrMany>,
    pub keywords: Option<Vec<String>>,
    /// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss`.
    pub date_obs: Option<String>,
    pub exptime: Option<f64>,
    /// The centre, ICRS degrees.
    pub ra: Option<f64>,
    pub dec: Option<f64>,
    /// A disc footprint around the centre, degrees.
    pub radius: Option<f64>,
    /// A convex polygon footprint: `[[ra, dec], …]`, corners in order.
    pub footprint: Option<Vec<[f64; 2]>>,
    /// `false` leaves the file (or the directory's files) out of the index.
    pub index: Option<bool>,
}

/// Why a sidecar was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("cannot read the sidecar: {0}")]
    Io(#[from] std::io::Error),
    #[error("the sidecar is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("the sidecar's {field} is not valid: {reason}")]
    Field { field: &'static str, reason: String },
}

impl Sidecar {
    pub fn read(path: &Path) -> Result<Sidecar, SidecarError> {
        let text = std::fs::read_to_string(path)?;
        let s: Sidecar = toml::from_str(&text)?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), SidecarError> {
        if let Some(d) = &self.date_obs
            && crate::date::parse(d).is_none()
        {
            return Err(SidecarError::Field {
                field: "date_obs",
                reason: format!("{d:?} is not YYYY-MM-DD[Thh:mm:ss]"),
            });
        }
        if self.ra.is_some() != self.dec.is_some() {
            return Err(SidecarError::Field {
                field: "ra",
                reason: "ra and dec go together".to_owned(),
            });
        }
        self.shape().map(|_| ())
    }

    /// The fields of `self`, with those it lacks taken from `base`.
    pub fn over(&self, base: &Sidecar) -> Sidecar {
        macro_rules! pick {
            ($($f:ident),*) => { Sidecar { $($f: self.$f.clone().or_else(|| base.$f.clone()),)* } };
        }
        pick!(
            title,
            description,
            object,
            telescope,
            domain,
            mission,
            instrument,
            filter,
            keywords,
            date_obs,
            exptime,
            ra,
            dec,
            radius,
            footprint,
            index
        )
    }

    /// Where the sidecar places the file, if it does.
    pub fn shape(&self) -> Result<Option<Shape>, SidecarError> {
        let bad = |field, e: crate::sky::SkyError| SidecarError::Field {
            field,
            reason: e.to_string(),
        };
        let footprint = match (&self.footprint, self.radius) {
            (Some(corners), _) => {
                let corners = corners
                    .iter()
                    .map(|[ra, dec]| SkyPos::new(*ra, *dec))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("footprint", e))?;
                Some(Footprint::polygon(corners).map_err(|e| bad("footprint", e))?)
            }
            (None, Some(r)) if r.is_finite() && (0.0..=180.0).contains(&r) => {
                Some(Footprint::Circle { radius: r })
            }
            (None, Some(r)) => {
                return Err(bad("radius", crate::sky::SkyError::Radius(r)));
            }
            (None, None) => None,
        };
        let centre = match (self.ra, self.dec) {
            (Some(ra), Some(dec)) => Some(SkyPos::new(ra, dec).map_err(|e| bad("ra", e))?),
            _ => match &footprint {
                // A polygon without a centre: its corners' mean.
                Some(Footprint::Polygon { corners }) => Some(mean(corners)),
                _ => None,
            },
        };
        Ok(centre.map(|centre| Shape { centre, footprint }))
    }
}

/// The normalised mean direction of some positions.
pub(crate) fn mean(points: &[SkyPos]) -> SkyPos {
    let v = points.iter().fold([0.0; 3], |m, p| {
        let q = p.vec();
        [m[0] + q[0], m[1] + q[1], m[2] + q[2]]
    });
    let ra = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
    let dec = v[2].atan2(v[0].hypot(v[1])).to_degrees();
    SkyPos::wrapped(ra, dec.clamp(-90.0, 90.0)).unwrap_or(SkyPos { ra: 0.0, dec: 0.0 })
}
