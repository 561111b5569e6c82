//! The authenticating reverse proxy that serves running labs (JupyterLab,
//! noVNC, any web tool) under `/labs/<lab-id>/` from an origin separate from
//! the platform UI. It must never depend on the store or the web crate: it
//! talks to the platform only through the [`LabDirectory`] trait.

/// Placeholder while the crate is being written.
pub trait LabDirectory: Send + Sync + 'static {}
