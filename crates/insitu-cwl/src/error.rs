//! Error type of the engine and the exit codes the CLI maps it to.

use thiserror::Error;

/// Everything that can go wrong while loading, validating or running CWL.
#[derive(Debug, Error)]
pub enum CwlError {
    /// The document could not be read or parsed, or is not valid CWL.
    #[error("validation error: {0}")]
    Validation(String),
    /// The document asks for a feature this engine does not support.
    #[error("unsupported requirement: {0}")]
    Unsupported(String),
    /// An expression failed (syntax error, exception, time or memory limit).
    #[error("expression error: {0}")]
    Expression(String),
    /// The job order is missing an input or gives a value of the wrong type.
    #[error("input error: {0}")]
    Input(String),
    /// A tool ran and failed permanently.
    #[error("execution failed: {0}")]
    Execution(String),
    /// Tools must run in a sandbox and none can be made here.
    #[error(
        "no sandbox: {0}; tools run only in a sandbox, unless --no-sandbox runs them as plain processes"
    )]
    NoSandbox(String),
    /// An I/O problem on the host.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl CwlError {
    /// Exit code following the cwl-runner convention (33 = unsupported),
    /// and 69 (`EX_UNAVAILABLE`) when no sandbox can be made.
    pub fn exit_code(&self) -> i32 {
        match self {
            CwlError::Unsupported(_) => 33,
            CwlError::NoSandbox(_) => 69,
            _ => 1,
        }
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, CwlError>;

pub(crate) fn verr<T>(msg: impl Into<String>) -> Result<T> {
    Err(CwlError::Validation(msg.into()))
}
