//! The discovery index: one faceted full-text search over datalabs,
//! pipelines, data volumes and the datasets inside volumes, with cone
//! search by sky position, and the harvester that describes datasets from
//! their FITS headers and sidecar files.
//!
//! * [`asset`]: what is indexed — one [`Asset`] record for every kind, with
//!   the audience keys that say who may find it.
//! * [`index`]: the tantivy index (a cache on disk, rebuilt when missing or
//!   damaged) and its searches; every search requires the viewer's keys,
//!   so nothing is found or counted for someone who may not see it.
//! * [`sky`] and [`zones`]: positions, footprints, the cone predicate and
//!   the zones spatial index that answers cones exactly.
//! * [`harvest`]: incremental scans of volumes (only files whose size,
//!   modification time or inode changed are read again).
//! * [`votable`]: cone search answers as IVOA VOTable documents.
//!
//! This crate knows no HTTP and no database: `insitu-core` feeds it from
//! the catalogues and volumes and decides who the viewer is.

pub mod asset;
pub mod date;
mod fitsmeta;
pub mod harvest;
pub mod index;
pub mod request;
pub mod sidecar;
pub mod sky;
pub mod votable;
pub mod zones;

pub use asset::{Asset, AssetKind, FacetName};
pub use harvest::{HarvestProblem, HarvestProgress, Harvester, VolumeSource};
pub use index::{Hit, IndexError, IndexOptions, Opened, SearchError, SearchIndex, SearchResults};
pub use request::{Problem, RequestError, SearchRequest};
pub use sky::{Cone, Footprint, Shape, SkyError, SkyPos};
