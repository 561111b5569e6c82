//! Who serves a TCP port: the processes of a sandbox, or someone else.
//!
//! A lab's tool listens on a loopback port the platform picked. Where labs
//! share a network (the host's, or one user's namespace), anything else in
//! it may listen on that port first, or take it over when the tool moves to
//! another: the platform must then refuse to treat what answers there as
//! the lab (and never send it the lab's secret). The kernel says which
//! socket listens on a port (`/proc/<pid>/net/tcp{,6}`, seen from the
//! sandbox's own network namespace) and which processes hold it (the
//! `socket:[inode]` links in `/proc/<pid>/fd`): [`port_holder`] compares
//! them with the sandbox's process tree.

use std::collections::HashSet;

/// Who listens on a port, as [`port_holder`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortHolder {
    /// Nothing listens on it (yet).
    Nobody,
    /// Only sockets held by the sandbox's own processes.
    Sandbox,
    /// At least one listening socket that no process of the sandbox holds
    /// (or the sandbox's processes could not be read).
    Outsider,
}

/// TCP state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Who listens on TCP `port` for connections to 127.0.0.1 (on 127.0.0.1
/// or on every address, IPv4 or IPv6), in the network namespace of process
/// `root`, which with its descendants makes the sandbox.
pub fn port_holder(root: u32, port: u16) -> PortHolder {
    Listeners::of(root).holder(root, port)
}

/// The listening sockets of one network namespace, read once: the kernel
/// writes `/proc/net/tcp` by walking every socket of the machine, which
/// takes milliseconds where many connections are open, so a caller asking
/// about many ports of one namespace (the labs of one user, taken over
/// after a restart) reads it once.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// The tables' text, IPv4 and IPv6.
    tables: Vec<(String, TakesLoopback)>,
}

/// Whether an address of a table takes connections to 127.0.0.1.
type TakesLoopback = fn(&str) -> bool;

impl Listeners {
    /// The listeners in the network namespace of process `pid`.
    pub fn of(pid: u32) -> Listeners {
        let mut tables = Vec::new();
        for (table, takes_loopback) in [
            ("tcp", takes_loopback_v4 as TakesLoopback),
            ("tcp6", takes_loopback_v6),
        ] {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
                tables.push((text, takes_loopback));
            }
        }
        Listeners { tables }
    }

    /// Who listens on `port` here, for the sandbox rooted at process
    /// `root` (see [`port_holder`]).
    pub fn holder(&self, root: u32, port: u16) -> PortHolder {
        let listening: Vec<u64> = self
            .tables
            .iter()
            .flat_map(|(text, takes_loopback)| parse_listeners(text, port, *takes_loopback))
            .collect();
        if listening.is_empty() {
            return PortHolder::Nobody;
        }
        let Some(held) = held_sockets(root) else {
            return PortHolder::Outsider;
        };
        if listening.iter().all(|inode| held.contains(inode)) {
            PortHolder::Sandbox
        } else {
            PortHolder::Outsider
        }
    }
}

/// The listening sockets of one `/proc/net/tcp{,6}` table on `port` whose
/// address `takes_loopback`.
fn parse_listeners(table: &str, port: u16, takes_loopback: fn(&str) -> bool) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let (addr, hex_port) = local.split_once(':')?;
            let listens = *state == LISTEN
                && u16::from_str_radix(hex_port, 16).ok()? == port
                && takes_loopback(addr);
            listens.then(|| inode.parse().ok()).flatten()
        })
        .collect()
}

/// 127.0.0.1 or 0.0.0.0, as the kernel writes them (in host byte order,
/// little-endian here).
fn takes_loopback_v4(addr: &str) -> bool {
    match u32::from_str_radix(addr, 16) {
        Ok(word) => {
            let ip = std::net::Ipv4Addr::from(word.to_le_bytes());
            ip.is_unspecified() || ip == std::net::Ipv4Addr::LOCALHOST
        }
        Err(_) => false,
    }
}

/// `::` (which takes IPv4 too unless the socket is IPv6-only) or
/// `::ffff:127.0.0.1`, as four words in host byte order.
fn takes_loopback_v6(addr: &str) -> bool {
    if addr.len() != 32 {
        return false;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let Ok(word) = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16) else {
            return false;
        };
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let ip = std::net::Ipv6Addr::from(bytes);
    ip.is_unspecified() || ip.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
}

/// Inodes of every socket the processes of the tree rooted at `root` hold
/// open; `None` when one of them cannot be read (not ours to look at).
fn held_sockets(root: u32) -> Option<HashSet<u64>> {
    let mut held = HashSet::new();
    for pid in tree(root) {
        let entries = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(entries) => entries,
            // It ended meanwhile: it holds nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        for entry in entries.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok());
            if let Some(inode) = inode {
                held.insert(inode);
            }
        }
    }
    Some(held)
}

/// `root` and all its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut next = 0;
    while let Some(&pid) = found.get(next) {
        next += 1;
        for child in children(pid) {
            if !found.contains(&child) {
                found.push(child);
            }
        }
    }
    found
}

/// Direct children of a process, from the kernel's list per thread.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0200007F:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0
";

    #[test]
    fn listeners_that_take_loopback_connections_are_found() {
        // 0x1F90 = 8080 on 127.0.0.1; 8081 on 0.0.0.0; 8082 on 127.0.0.2.
        assert_eq!(parse_listeners(TCP, 8080, takes_loopback_v4), [111]);
        assert_eq!(parse_listeners(TCP, 8081, takes_loopback_v4), [222]);
        assert!(parse_listeners(TCP, 8082, takes_loopback_v4).is_empty());
        assert!(parse_listeners(TCP, 9, takes_loopback_v4).is_empty());
        assert!(takes_loopback_v6("00000000000000000000000000000000"));
        assert!(takes_loopback_v6("0000000000000000FFFF00000100007F"));
        // ::1 takes no IPv4 connection.
        assert!(!takes_loopback_v6("00000000000000000000000001000000"));
    }

    #[test]
    fn a_port_is_held_by_the_tree_that_holds_its_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(port_holder(me, port), PortHolder::Sandbox);
        // A process that is not this one (nor its parent's tree root):
        // a child that holds nothing.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(port_holder(child.id(), port), PortHolder::Outsider);
        // One read of the namespace's tables answers for every port.
        let seen = Listeners::of(me);
        assert_eq!(seen.holder(me, port), PortHolder::Sandbox);
        assert_eq!(seen.holder(child.id(), port), PortHolder::Outsider);
        drop(listener);
        assert_eq!(port_holder(child.id(), port), PortHolder::Nobody);
        let _ = child.kill();
        let _ = child.wait();
    }
}
