//! Progress lines on standard error, unless the run is quiet.

/// Where a run's log lines go.
#[derive(Clone, Copy, Debug, Default)]
pub struct Log {
    /// Say nothing.
    pub quiet: bool,
}

impl Log {
    /// `[insitu-cwl] msg` on standard error, unless quiet.
    pub fn line(self, msg: &str) {
        if !self.quiet {
            eprintln!("[insitu-cwl] {msg}");
        }
    }
}
