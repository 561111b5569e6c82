//! Who may call a route, and in which language it answers: the two facts
//! of a route-table row that the authorization check acts on.

use insitu_domain::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Callers whose role is at least this one.
    Role(Role),
}

/// Whether a route speaks JSON (API), HTML (pages) or VOTable (the
/// Virtual Observatory endpoints); failures are answered in the same
/// language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Page,
    VoTable,
}
