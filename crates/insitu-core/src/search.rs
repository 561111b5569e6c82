//! The discovery portal's service: one index (`insitu-search`) over the
//! datalab catalogue, the data volumes and the datasets inside them, kept
//! in step with the catalogue (a reload shows at once) and with the volumes
//! (harvested in the background at start and on demand), and searched as
//! a viewer, so nothing a viewer may not see is found or counted.

use std::path::Path;
use std::sync::Arc;

use insitu_domain::{DatalabSpec, Viewer};
use insitu_search::harvest::VolumeSource;
use insitu_search::{
    Asset, AssetKind, Cone, HarvestProgress, Harvester, Hit, IndexOptions, Opened, SearchError,
    SearchIndex, SearchRequest, SearchResults,
};

use crate::catalogue::Catalogue;
use crate::error::Error;
use crate::volumes::VolumeEntry;

/// The property a data volume carries in the portal's facets.
pub const DATA_VOLUME_PROPERTY: &str = "data_volume";

/// The discovery index and its harvester (cloned, the same index).
#[derive(Clone)]
pub struct Search {
    index: Arc<SearchIndex>,
    harvester: Arc<Harvester>,
    sources: Arc<Vec<VolumeSource>>,
}

/// A datalab as the index holds it, found by those who hold one of
/// `audience`'s keys.
pub fn datalab_asset(d: &DatalabSpec, audience: Vec<String>) -> Asset {
    let mut a = Asset::new(AssetKind::Datalab, d.name.as_str(), &d.title, audience);
    a.description = d.description.clone();
    a.properties = d
        .tags
        .properties
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    a.domain = d.tags.domain.clone();
    a.mission = d.tags.mission.clone();
    a.datalab_kind = Some(d.kind.as_str().to_owned());
    a.opens_files = d.launch.opens_files();
    a.keywords = vec![d.version.clone(), d.license.clone()];
    a
}

fn source(v: &VolumeEntry) -> VolumeSource {
    let s = &v.spec;
    VolumeSource {
        name: s.name.to_string(),
        root: s.source.clone(),
        mount_path: s.mount_path.clone(),
        audience: s.audience.keys(),
        domain: s.metadata.domain.clone(),
        mission: s.metadata.mission.clone(),
        instrument: s.metadata.instrument.clone(),
    }
}

/// A data volume as the index holds it; its fingerprint is the digest of
/// the settings its datasets' records depend on.
pub fn volume_asset(v: &VolumeEntry) -> Asset {
    let s = &v.spec;
    let mut a = Asset::new(
        AssetKind::Volume,
        s.name.as_str(),
        &s.title,
        s.audience.keys(),
    );
    a.description = s.description.clone();
    a.properties = vec![DATA_VOLUME_PROPERTY.to_owned()];
    a.domain = s.metadata.domain.clone();
    a.mission = s.metadata.mission.clone();
    a.instrument = s.metadata.instrument.clone();
    a.size_bytes = Some(v.size_bytes);
    a.file = Some(s.mount_path.display().to_string());
    a.fingerprint = Some(source(v).settings_digest());
    a
}

fn index_error(e: insitu_search::IndexError) -> Error {
    Error::SearchIndex(e)
}

fn search_error(e: SearchError) -> Error {
    match e {
        SearchError::Request(r) => Error::InvalidSearch(r),
        SearchError::Index(i) => Error::SearchIndex(i),
    }
}

impl Search {
    /// Opens the index below the data directory (rebuilding it when it is
    /// missing or damaged), drops the datasets of volumes that are gone or
    /// whose settings changed (so a volume made private is hidden before
    /// anything is served), and indexes the catalogue and the volumes.
    pub fn open(data_dir: &Path, catalogue: &Catalogue, volumes: &[VolumeEntry]) -> Search {
        let dir = insitu_search::index::index_dir(data_dir);
        let (index, opened) = SearchIndex::open(&dir, IndexOptions::default());
        match &opened {
            Opened::Reused => {
                tracing::info!(dir = %dir.display(), assets = index.len(), "search index opened")
            }
            Opened::Rebuilt(why) => {
                tracing::warn!(dir = %dir.display(), reason = %why, "search index made anew; datasets are harvested again");
            }
            Opened::InMemory(why) => {
                tracing::error!(dir = %dir.display(), reason = %why, "search index kept in memory only");
            }
        }
        let search = Search {
            index: Arc::new(index),
            harvester: Arc::new(Harvester::new()),
            sources: Arc::new(volumes.iter().map(source).collect()),
        };
        if let Err(e) = search
            .index_volumes(volumes)
            .and_then(|()| search.sync_datalabs(catalogue))
        {
            tracing::error!(error = %e, "could not index the catalogues");
        }
        search
    }

    fn index_volumes(&self, volumes: &[VolumeEntry]) -> Result<(), Error> {
        let fresh: Vec<Asset> = volumes.iter().map(volume_asset).collect();
        let stored = self
            .index
            .assets(AssetKind::Volume, None)
            .map_err(index_error)?;
        for old in stored {
            let same = fresh
                .iter()
                .any(|f| f.name == old.name && f.fingerprint == old.fingerprint);
            if !same {
                self.index
                    .remove_volume_datasets(&old.name)
                    .map_err(index_error)?;
            }
        }
        self.index
            .replace_kind(AssetKind::Volume, &fresh)
            .map_err(index_error)
    }

    /// Replaces the indexed datalabs with the catalogue's: the public ones
    /// for everyone, a developed datalab shared with named users for its
    /// owner and those users only.
    pub fn sync_datalabs(&self, catalogue: &Catalogue) -> Result<(), Error> {
        let public = vec![insitu_domain::audience::PUBLIC_KEY.to_owned()];
        let assets: Vec<Asset> = catalogue
            .datalabs
            .iter()
            .map(|d| datalab_asset(d, public.clone()))
            .chain(catalogue.restricted.iter().map(|r| {
                let audience = catalogue.audience_keys(r.spec.name.as_str());
                datalab_asset(&r.spec, audience)
            }))
            .collect();
        self.index
            .replace_kind(AssetKind::Datalab, &assets)
            .map_err(index_error)
    }

    /// Searches as the viewer.
    pub async fn search(
        &self,
        viewer: &Viewer,
        request: SearchRequest,
    ) -> Result<SearchResults, Error> {
        let index = Arc::clone(&self.index);
        let keys = viewer.keys();
        tokio::task::spawn_blocking(move || index.search(&request, &keys))
            .await?
            .map_err(search_error)
    }

    /// A cone search as the viewer: up to `limit` datasets, nearest first,
    /// and whether more matched.
    pub async fn cone(
        &self,
        viewer: &Viewer,
        cone: Cone,
        limit: usize,
    ) -> Result<(Vec<Hit>, bool), Error> {
        let index = Arc::clone(&self.index);
        let keys = viewer.keys();
        tokio::task::spawn_blocking(move || index.cone(&cone, &keys, limit))
            .await?
            .map_err(search_error)
    }

    /// The current or last harvest's progress.
    pub fn progress(&self) -> HarvestProgress {
        self.harvester.progress()
    }

    /// Starts harvesting every volume in the background unless a harvest
    /// runs already; returns the progress as it stands.
    pub fn start_harvest(&self) -> HarvestProgress {
        if !self.harvester.is_running() {
            let (index, harvester, sources) = (
                Arc::clone(&self.index),
                Arc::clone(&self.harvester),
                Arc::clone(&self.sources),
            );
            // Mark it running before the thread starts, so a caller that
            // polls sees it at once.
            harvester.mark_started();
            let spawned = std::thread::Builder::new()
                .name("insitu-harvest".to_owned())
                .spawn(move || {
                    if let Err(e) = harvester.run(&index, &sources) {
                        tracing::error!(error = %e, "harvest failed");
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a harvest");
            }
        }
        self.progress()
    }
}
