//! Memory kills: which process of a sandbox the kernel's OOM killer ended,
//! and when.
//!
//! The control group counts the kills (`oom_kill` in cgroup v1's
//! `memory.oom_control`, in v2's `memory.events`); the kernel log
//! (`/dev/kmsg`, readable by root) names each one in an `oom-kill:` line
//! with the killed task's group, command name and pid. The kernel
//! rate-limits those lines (ten per five seconds), so a kill the log does
//! not name is still counted, without a name, at the time it was noticed.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// One process of a sandbox killed by the kernel for lack of memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryKill {
    /// Its process id on the host (not the one inside the sandbox), when
    /// the kernel log named it.
    pub pid: Option<u32>,
    /// Its command name (the kernel's 15-byte `comm`), when named.
    pub command: Option<String>,
    /// When the kernel killed it (from the log), else when it was noticed.
    pub at: SystemTime,
    /// Whether it was the sandbox's tool itself rather than one of the
    /// processes the tool started (a notebook's kernel, a subprocess).
    pub tool: bool,
}

/// An `oom-kill:` line of the kernel log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoggedKill {
    /// The record's sequence number in the kernel log.
    pub seq: u64,
    /// The killed task's control group, as the kernel names it.
    pub memcg: String,
    pub pid: u32,
    pub command: String,
    pub at: SystemTime,
}

/// The kernel log, read as it grows, keeping its recent memory kills.
struct KernelLog {
    file: Option<std::fs::File>,
    opened: bool,
    kills: VecDeque<LoggedKill>,
}

/// Memory kills kept from the kernel log, for all sandboxes.
const KEEP: usize = 1024;

static KERNEL_LOG: Mutex<KernelLog> = Mutex::new(KernelLog {
    file: None,
    opened: false,
    kills: VecDeque::new(),
});

/// The kills the kernel log names in the control group `group` (its path
/// below the hierarchy's root, e.g. `/insitu/lab1`, matched as a suffix so
/// that a platform inside a container finds its own) after the record
/// `after`, oldest first.
pub(crate) fn logged_kills(group: &str, after: Option<u64>) -> Vec<LoggedKill> {
    let Ok(mut log) = KERNEL_LOG.lock() else {
        return Vec::new();
    };
    log.read_new();
    log.kills
        .iter()
        .filter(|k| after.is_none_or(|a| k.seq > a))
        .filter(|k| k.memcg == group || k.memcg.ends_with(group))
        .cloned()
        .collect()
}

impl KernelLog {
    fn read_new(&mut self) {
        if !self.opened {
            self.opened = true;
            self.file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open("/dev/kmsg")
                .ok();
        }
        let Some(file) = &mut self.file else {
            return;
        };
        let clock = Clock::now();
        // One record per read; a record never exceeds this.
        let mut buf = vec![0u8; 16 * 1024];
        // Bounded, so a log that grows as fast as it is read cannot hold
        // the caller.
        for _ in 0..100_000 {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(kill) = parse_record(&buf[..n], &clock) {
                        if self.kills.len() == KEEP {
                            self.kills.pop_front();
                        }
                        self.kills.push_back(kill);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // Records were overwritten before they were read; reading
                // goes on with the oldest left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.file = None;
                    break;
                }
            }
        }
    }
}

/// The wall clock and the kernel log's clock (microseconds since boot) at
/// one moment, to turn the one into the other.
struct Clock {
    wall: SystemTime,
    boot_us: u64,
}

impl Clock {
    fn now() -> Clock {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let boot_us = u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000
            + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000;
        Clock {
            wall: SystemTime::now(),
            boot_us,
        }
    }

    fn wall_time(&self, boot_us: u64) -> SystemTime {
        let ago = Duration::from_micros(self.boot_us.saturating_sub(boot_us));
        self.wall.checked_sub(ago).unwrap_or(self.wall)
    }
}

/// Parses one `/dev/kmsg` record (`PRIORITY,SEQ,MICROSECONDS,FLAGS;TEXT`)
/// when it is an `oom-kill:` line:
/// `oom-kill:constraint=…,oom_memcg=…,task_memcg=/insitu/lab1,task=python3,pid=1234,uid=65534`.
fn parse_record(raw: &[u8], clock: &Clock) -> Option<LoggedKill> {
    let text = String::from_utf8_lossy(raw);
    let (prefix, message) = text.split_once(';')?;
    let mut fields = prefix.split(',');
    let _priority = fields.next()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let boot_us: u64 = fields.next()?.parse().ok()?;
    let line = message.lines().next()?;
    let body = line.strip_prefix("oom-kill:")?;
    let memcg_at = body.find("task_memcg=")? + "task_memcg=".len();
    let (memcg, rest) = body[memcg_at..].split_once(",task=")?;
    // The command name may hold commas: the numbers are taken from the end.
    let (rest, _uid) = rest.rsplit_once(",uid=")?;
    let (command, pid) = rest.rsplit_once(",pid=")?;
    Some(LoggedKill {
        seq,
        memcg: memcg.to_owned(),
        pid: pid.parse().ok()?,
        command: command.to_owned(),
        at: clock.wall_time(boot_us),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_lines_name_group_task_and_time() {
        let clock = Clock {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            boot_us: 2_000_000,
        };
        let raw = b"6,600,1500000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),\
cpuset=/,mems_allowed=0,oom_memcg=/insitu/lab1,task_memcg=/insitu/lab1,task=a,b,pid=7,uid=0,pid=18749,uid=65534\n";
        let k = parse_record(raw, &clock).unwrap();
        assert_eq!(k.seq, 600);
        assert_eq!(k.memcg, "/insitu/lab1");
        assert_eq!((k.pid, k.command.as_str()), (18749, "a,b,pid=7,uid=0"));
        assert_eq!(
            k.at,
            SystemTime::UNIX_EPOCH + Duration::from_millis(999_999_500)
        );
        // The line that follows it, and other records, are not kills.
        let other =
            b"3,601,1500001,-;Memory cgroup out of memory: Killed process 18749 (python3)\n";
        assert_eq!(parse_record(other, &clock), None);
        assert_eq!(parse_record(b"garbage", &clock), None);
    }
}
