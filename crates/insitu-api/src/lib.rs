//! The REST API's contract: request and response bodies, and the one table of
//! public error codes with their HTTP status and meaning.
//!
//! Server, CLI and tests all use these types, so a field renamed here is
//! renamed everywhere. This crate knows no HTTP library and does no I/O.

pub mod devlab;
pub mod error;
pub mod pipelines;
pub mod wire;

pub use devlab::*;
pub use error::{ApiError, ErrorCode};
pub use pipelines::*;
pub use wire::*;
