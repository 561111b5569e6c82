//! The lab state machine: pending → starting → running → stopping →
//! stopped, or failed with a reason from any state before stopped; a lab
//! on a scheduler that cannot be asked is unknown (never taken as stopped)
//! until the scheduler answers again.

use std::fmt;
use std::str::FromStr;

/// Where a lab is in its life. Stored and sent as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabState {
    /// Recorded; its sandbox is being prepared.
    Pending,
    /// Its process runs but does not answer on its readiness path yet.
    Starting,
    /// Serving its users.
    Running,
    /// Being stopped.
    Stopping,
    /// Its scheduler (Slurm) could not be reached or answered nothing
    /// useful: it may well still run, and is asked again.
    Unknown,
    /// Ended: stopped by its user, by idle culling, or its tool exited
    /// cleanly.
    Stopped,
    /// Ended with a failure; the lab's reason says what.
    Failed,
}

impl LabState {
    pub const ALL: [LabState; 7] = [
        LabState::Pending,
        LabState::Starting,
        LabState::Running,
        LabState::Stopping,
        LabState::Unknown,
        LabState::Stopped,
        LabState::Failed,
    ];

    /// The states of a lab that holds resources (a process, a port, GPUs,
    /// a place in the user's quota).
    pub const ACTIVE: [LabState; 5] = [
        LabState::Pending,
        LabState::Starting,
        LabState::Running,
        LabState::Stopping,
        LabState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LabState::Pending => "pending",
            LabState::Starting => "starting",
            LabState::Running => "running",
            LabState::Stopping => "stopping",
            LabState::Unknown => "unknown",
            LabState::Stopped => "stopped",
            LabState::Failed => "failed",
        }
    }

    /// Whether the lab holds resources: not stopped and not failed.
    pub fn is_active(self) -> bool {
        !matches!(self, LabState::Stopped | LabState::Failed)
    }

    /// Whether the lab is on its way from one settled state to another
    /// (pending, starting or stopping), or being asked about again
    /// (unknown), so its page keeps refreshing.
    pub fn is_changing(self) -> bool {
        matches!(
            self,
            LabState::Pending | LabState::Starting | LabState::Stopping | LabState::Unknown
        )
    }
}

impl fmt::Display for LabState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown lab state {0:?}: expected one of pending, starting, running, stopping, unknown, stopped, failed"
)]
pub struct UnknownLabState(pub String);

impl FromStr for LabState {
    type Err = UnknownLabState;
    fn from_str(s: &str) -> Result<Self, UnknownLabState> {
        LabState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownLabState(s.to_owned()))
    }
}

/// What happened to a lab while it ran, kept as one of its events.
/// Stored and sent as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabEventKind {
    /// The kernel killed one of the lab's processes for using more than
    /// the lab's memory.
    MemoryKill,
}

impl LabEventKind {
    pub const ALL: [LabEventKind; 1] = [LabEventKind::MemoryKill];

    pub fn as_str(self) -> &'static str {
        match self {
            LabEventKind::MemoryKill => "memory_kill",
        }
    }
}

impl fmt::Display for LabEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lab event {0:?}: expected memory_kill")]
pub struct UnknownLabEvent(pub String);

impl FromStr for LabEventKind {
    type Err = UnknownLabEvent;
    fn from_str(s: &str) -> Result<Self, UnknownLabEvent> {
        LabEventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownLabEvent(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for st in LabState::ALL {
            assert_eq!(st.as_str().parse::<LabState>(), Ok(st));
        }
        assert!("Running".parse::<LabState>().is_err());
        for k in LabEventKind::ALL {
            assert_eq!(k.as_str().parse::<LabEventKind>(), Ok(k));
        }
        assert!("oom".parse::<LabEventKind>().is_err());
    }

    #[test]
    fn only_ended_labs_are_inactive() {
        let active: Vec<LabState> = LabState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, LabState::ACTIVE);
    }
}
