//! The status file beside a sandbox's log: one JSON object a line, written
//! by the launcher (the sandbox's processes, the memory kills it saw) and
//! by the sandbox's supervisor (how the sandbox ended), so that a platform
//! started again later knows what happened while it was away. Lines that
//! do not parse are skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The status file of the sandbox logging to `log` (`lab.log` →
/// `lab.status`).
pub fn status_path(log: &Path) -> PathBuf {
    sibling(log, "status")
}

/// A file beside the log with another extension.
pub(crate) fn sibling(log: &Path, extension: &str) -> PathBuf {
    if log.extension().is_some_and(|e| e == "log") {
        log.with_extension(extension)
    } else {
        let mut name = log.as_os_str().to_owned();
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Record {
    /// Written by the launcher once the sandbox's process exists.
    Started {
        pid: u32,
        start_ticks: u64,
        supervisor: u32,
        supervisor_ticks: u64,
        at: f64,
    },
    /// The sandbox's init (bubblewrap's child) and tool (the init's first
    /// child), once the launcher saw them.
    Tool {
        init: u32,
        init_ticks: u64,
        pid: u32,
        start_ticks: u64,
    },
    /// A process of the sandbox killed for lack of memory.
    MemoryKill {
        pid: Option<u32>,
        command: Option<String>,
        at: f64,
        tool: bool,
        /// The kernel log record that named it.
        seq: Option<u64>,
    },
    /// Written by the supervisor when bubblewrap ended: its exit status
    /// (128 + n for signal n) and the time in whole seconds.
    Exited { code: i32, at: Option<f64> },
}

/// What a status file holds, the last of each kind winning.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Journal {
    pub started: Option<Record>,
    pub tool: Option<Record>,
    pub kills: Vec<Record>,
    pub exited: Option<Record>,
}

impl Journal {
    /// Whether the file belongs to the sandbox `pid` started at `ticks`
    /// (and not to an earlier one that used the same log).
    pub fn is_of(&self, pid: u32, ticks: u64) -> bool {
        matches!(self.started, Some(Record::Started { pid: p, start_ticks: t, .. }) if p == pid && t == ticks)
    }
}

pub(crate) fn read(path: &Path) -> Journal {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut j = Journal::default();
    for line in text.lines() {
        match serde_json::from_str::<Record>(line) {
            Ok(r @ Record::Started { .. }) => j.started = Some(r),
            Ok(r @ Record::Tool { .. }) => j.tool = Some(r),
            Ok(r @ Record::MemoryKill { .. }) => j.kills.push(r),
            Ok(r @ Record::Exited { .. }) => j.exited = Some(r),
            Err(_) => {}
        }
    }
    j
}

/// Appends one record (one `write`, so lines from the supervisor and the
/// launcher never interleave).
pub(crate) fn append(path: &Path, record: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) fn from_unix_seconds(s: f64) -> Option<SystemTime> {
    SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(s).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_sit_beside_the_log() {
        assert_eq!(
            status_path(Path::new("/d/labs/x/lab.log")),
            PathBuf::from("/d/labs/x/lab.status")
        );
        assert_eq!(
            status_path(Path::new("/d/hub.out")),
            PathBuf::from("/d/hub.out.status")
        );
    }

    #[test]
    fn the_supervisors_line_and_ours_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.status");
        std::fs::write(&p, "").unwrap();
        let started = Record::Started {
            pid: 10,
            start_ticks: 20,
            supervisor: 9,
            supervisor_ticks: 19,
            at: 1.5,
        };
        append(&p, &started).unwrap();
        // What the supervisor's shell writes, and a torn line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"exited\":{\"code\":3,\"at\":1700000000}}\n{\"exi")
            .unwrap();
        let j = read(&p);
        assert!(j.is_of(10, 20) && !j.is_of(10, 21));
        assert_eq!(j.started, Some(started));
        assert_eq!(
            j.exited,
            Some(Record::Exited {
                code: 3,
                at: Some(1.7e9)
            })
        );
        assert_eq!(
            from_unix_seconds(1.7e9).map(unix_seconds),
            Some(1_700_000_000.0)
        );
    }
}
