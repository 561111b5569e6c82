//! The system-call filter of lab sandboxes (bubblewrap's `--seccomp`).
//!
//! A lab runs arbitrary code as an unprivileged user with no capabilities;
//! what is left to guard is the kernel's own surface that needs none of
//! them: the kernel keyring (not namespaced), new user namespaces (which
//! hand back `CAP_SYS_ADMIN` over a fresh mount and network stack and open
//! much of the kernel to the tool), eBPF, performance events, userfaultfd
//! (a favourite of kernel exploits), io_uring, file handles, the new mount
//! API and module/kexec loading. Those calls fail with `EPERM`; `clone3`
//! fails with `ENOSYS` (its flags cannot be inspected, and C libraries fall
//! back to `clone`, whose namespace flags are checked); calls of another
//! architecture's ABI (32-bit `int 0x80`) end the process, and x32 calls
//! fail with `EPERM`. Everything else, `ptrace` within the sandbox's own
//! pid namespace included (debuggers and profilers), is allowed.
//!
//! The program is classic BPF, built here from a short table rather than by
//! a library: the filter needs two return values and one argument check,
//! and the tests run it through an interpreter as well as through the real
//! kernel.

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

// Opcodes (linux/bpf_common.h).
/// `BPF_LD | BPF_W | BPF_ABS`: load 32 bits of the call's data.
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`
const JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`
const JGE_K: u16 = 0x35;
/// `BPF_JMP | BPF_JSET | BPF_K`
const JSET_K: u16 = 0x45;
/// `BPF_RET | BPF_K`
const RET_K: u16 = 0x06;

// Return values (linux/seccomp.h).
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

// Offsets in `struct seccomp_data`: nr, arch, instruction pointer, args.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// The low 32 bits of the first argument (both supported architectures
/// are little-endian).
const OFF_ARG0_LOW: u32 = 16;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Namespace flags of `clone` (linux/sched.h). `CLONE_NEWTIME` (0x80) is
/// left out: in `clone`'s flags those bits are the exit signal.
const CLONE_NEW_NAMESPACE: u32 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

/// The architecture this program is built for, as the kernel names it
/// (`AUDIT_ARCH_*`), and whether x32 calls must be refused.
#[cfg(target_arch = "x86_64")]
const ARCH: Option<(u32, bool)> = Some((0xc000_003e, true));
#[cfg(target_arch = "aarch64")]
const ARCH: Option<(u32, bool)> = Some((0xc000_00b7, false));
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<(u32, bool)> = None;

/// The x32 ABI's bit in system-call numbers on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The calls refused with `EPERM`, by name (for the documentation and the
/// tests) and number on this architecture.
pub const BLOCKED: &[(&str, i64)] = &[
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
];

/// Where a jump goes: the next instruction, the one after it, or one of
/// the final returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Next,
    Skip,
    Allow,
    Deny,
    NoSys,
}

/// The filter as bytes for bubblewrap's `--seccomp FD`, or `None` where
/// this architecture has no table.
pub fn program() -> Option<Vec<u8>> {
    let (arch, x32) = ARCH?;
    let insns = assemble(arch, x32)?;
    Some(
        insns
            .iter()
            .flat_map(|i| {
                let mut b = Vec::with_capacity(8);
                b.extend_from_slice(&i.code.to_ne_bytes());
                b.push(i.jt);
                b.push(i.jf);
                b.extend_from_slice(&i.k.to_ne_bytes());
                b
            })
            .collect(),
    )
}

fn assemble(arch: u32, x32: bool) -> Option<Vec<Insn>> {
    let mut ops: Vec<(u16, u32, To, To)> = vec![
        (LD_W_ABS, OFF_ARCH, To::Next, To::Next),
        // A foreign architecture ends the process: its numbers mean other
        // calls.
        (JEQ_K, arch, To::Skip, To::Next),
        (RET_K, RET_KILL_PROCESS, To::Next, To::Next),
        (LD_W_ABS, OFF_NR, To::Next, To::Next),
    ];
    if x32 {
        ops.push((JGE_K, X32_SYSCALL_BIT, To::Deny, To::Next));
    }
    for (_, nr) in BLOCKED {
        ops.push((JEQ_K, u32::try_from(*nr).ok()?, To::Deny, To::Next));
    }
    ops.push((
        JEQ_K,
        u32::try_from(libc::SYS_clone3).ok()?,
        To::NoSys,
        To::Next,
    ));
    ops.push((
        JEQ_K,
        u32::try_from(libc::SYS_clone).ok()?,
        To::Next,
        To::Allow,
    ));
    ops.push((LD_W_ABS, OFF_ARG0_LOW, To::Next, To::Next));
    ops.push((JSET_K, CLONE_NEW_NAMESPACE, To::Deny, To::Allow));
    let allow = ops.len();
    let place = |to: To, pc: usize| -> Option<u8> {
        let target = match to {
            To::Next => return Some(0),
            To::Skip => return Some(1),
            To::Allow => allow,
            To::Deny => allow + 1,
            To::NoSys => allow + 2,
        };
        u8::try_from(target.checked_sub(pc + 1)?).ok()
    };
    let mut out = Vec::with_capacity(ops.len() + 3);
    for (pc, (code, k, jt, jf)) in ops.into_iter().enumerate() {
        let (jt, jf) = (place(jt, pc)?, place(jf, pc)?);
        out.push(Insn { code, jt, jf, k });
    }
    out.push(Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ALLOW,
    });
    out.push(Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ERRNO | EPERM,
    });
    out.push(Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: RET_ERRNO | ENOSYS,
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one call the way the kernel does.
    fn run(p: &[Insn], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                JEQ_K | JGE_K | JSET_K => {
                    let taken = match i.code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const X86_64: u32 = 0xc000_003e;

    fn nr(n: i64) -> u32 {
        u32::try_from(n).unwrap()
    }

    #[test]
    fn blocked_calls_fail_and_everything_else_passes() {
        let p = assemble(X86_64, true).unwrap();
        for (name, n) in BLOCKED {
            assert_eq!(run(&p, X86_64, nr(*n), 0), RET_ERRNO | EPERM, "{name}");
        }
        for n in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_mmap,
            libc::SYS_futex,
            libc::SYS_execve,
            libc::SYS_ptrace,
            libc::SYS_wait4,
        ] {
            assert_eq!(run(&p, X86_64, nr(n), 0), RET_ALLOW, "{n}");
        }
        assert_eq!(run(&p, X86_64, nr(libc::SYS_clone3), 0), RET_ERRNO | ENOSYS);
    }

    #[test]
    fn clone_is_refused_only_with_namespace_flags() {
        let p = assemble(X86_64, true).unwrap();
        let clone = nr(libc::SYS_clone);
        // What glibc passes for a thread, and for fork (SIGCHLD).
        let thread = 0x003d_0f00;
        assert_eq!(run(&p, X86_64, clone, thread), RET_ALLOW);
        assert_eq!(run(&p, X86_64, clone, 17), RET_ALLOW);
        for flag in [0x1000_0000u64, 0x4000_0000, 0x0002_0000, 0x2000_0000] {
            assert_eq!(
                run(&p, X86_64, clone, 17 | flag),
                RET_ERRNO | EPERM,
                "{flag:#x}"
            );
        }
    }

    #[test]
    fn other_abis_are_refused() {
        let p = assemble(X86_64, true).unwrap();
        // i386 through int 0x80, whatever the call.
        assert_eq!(run(&p, 0x4000_0003, 0, 0), RET_KILL_PROCESS);
        // x32: keyctl's number with the x32 bit, and read's.
        assert_eq!(
            run(&p, X86_64, X32_SYSCALL_BIT | nr(libc::SYS_keyctl), 0),
            RET_ERRNO | EPERM
        );
        assert_eq!(run(&p, X86_64, X32_SYSCALL_BIT, 0), RET_ERRNO | EPERM);
        let without_x32 = assemble(X86_64, false).unwrap();
        assert_eq!(
            run(&without_x32, X86_64, X32_SYSCALL_BIT, 0),
            RET_ALLOW,
            "the x32 check is only there when asked for"
        );
    }

    #[test]
    fn the_program_is_whole_instructions() {
        let bytes = program().expect("a table for this architecture");
        assert_eq!(bytes.len() % 8, 0);
        assert!(bytes.len() / 8 < 256, "jumps fit in a byte");
    }
}
