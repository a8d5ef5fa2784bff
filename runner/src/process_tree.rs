//! The process tree of a measured command: every process it started, and anything those started, as a container
//! would count them.
//!
//! `wait4`'s `ru_maxrss` and `/usr/bin/time` report the largest single process of a tree, never the sum: a shell
//! running two 200 MiB programs shows 213 MiB, though a container limited to 300 MiB would have killed it. So the
//! runner walks the tree on every poll (`/proc/PID/task/TID/children`, from the launcher down), sums each process's
//! proportional set size for the total, and keeps each process's kernel high-water mark for the largest single
//! process. The resident sets' sum, cheap to read, bounds the total from above; the proportional set sizes cost a
//! walk of every page table, so the runner reads them only as often as it can afford (see `runner`). The launcher is the tree's child subreaper (`PR_SET_CHILD_SUBREAPER`), so a process whose parent died
//! is re-parented to it rather than to init, and stays in the tree.

use meter::procfs;

/// Every living descendant of `root` (not `root` itself), parents before their children.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = 0;
    push_children(root, &mut found);
    while next < found.len() {
        let pid = found[next];
        push_children(pid, &mut found);
        next += 1;
    }
    found
}

/// The children of `pid` (of every thread of it).
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    push_children(pid, &mut found);
    found
}

/// True when `pid` is a zombie or gone: it has exited, and only its parent's `wait` is left of it.
pub fn is_zombie(pid: u32) -> bool {
    meter::procfs::state_of(pid).is_none_or(|state| state == 'Z' || state == 'X')
}

/// Appends the children of every thread of `pid`: a child belongs to the thread that forked it.
fn push_children(pid: u32, found: &mut Vec<u32>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for child in text.split_ascii_whitespace() {
            if let Ok(child) = child.parse::<u32>()
                && !found.contains(&child)
            {
                found.push(child);
            }
        }
    }
}

/// Sends SIGKILL to every descendant of `root`. A process forked while this runs escapes this pass; the launcher,
/// their subreaper, sweeps any such straggler once its program has exited.
pub fn kill_descendants(root: u32) {
    for pid in descendants(root) {
        // SAFETY: kill(2) on a pid read from /proc a moment ago; at worst it has exited (ESRCH).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// One process's figures at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    pub pid: u32,
    /// Its program name (changes on exec).
    pub name: procfs::ProgramName,
    /// Resident set now (`VmRSS`).
    pub rss_bytes: u64,
    /// The kernel's high-water mark of this process's resident set (`VmHWM`).
    pub hwm_bytes: u64,
    /// File pages of its resident set now (`RssFile`).
    pub file_bytes: u64,
    /// Its mapped size (`VmSize`).
    pub size_bytes: u64,
    /// Proportional set size: resident pages, each divided by the number of processes mapping it; `None` when
    /// this poll did not read it.
    pub pss_bytes: Option<u64>,
    /// Another process of this poll with which it shares one address space (`clone(CLONE_VM)` without
    /// `CLONE_THREAD`: both report all of it), counted there and not here.
    pub shares_memory_with: Option<u32>,
    /// It ignores SIGCHLD: the kernel reaps its children, and nobody can read their `ru_maxrss`.
    pub ignores_sigchld: bool,
}

/// What one poll of a tree found. Every sum counts an address space once, however many processes share it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeMemory {
    /// The sum of every process's resident set: an upper bound of the total, since a page shared by several
    /// processes counts once per process.
    pub rss_bytes: u64,
    /// The sum of every process's anonymous and shared-memory resident pages (`RssAnon` + `RssShmem`): an upper
    /// bound of [`TreeMemory::charged_bytes`]'s mapped part, cheap to read.
    pub unreclaimable_rss_bytes: u64,
    /// The sum of every process's proportional set size, a page shared by several processes counted once; `None`
    /// when this poll did not read it.
    pub pss_bytes: Option<u64>,
    /// What a container could not reclaim, proportionally (`Pss_Anon` + `Pss_Shmem`), with the shared memory the
    /// tree holds unmapped ([`crate::shared_memory`]); what the limit is checked against. `None` with `pss_bytes`.
    pub charged_bytes: Option<u64>,
    /// File pages (`Pss_File`), which a container reclaims when they are clean rather than kill: reported beside.
    pub file_bytes: Option<u64>,
    pub processes: Vec<ProcessMemory>,
}

/// Reads the memory of every descendant of `root`, with their proportional set sizes when `with_pss` (the costly
/// part: the kernel walks every page table, and the shared-memory files the tree holds are looked at). A process
/// that exits during the poll is left out.
pub fn memory_of_descendants(root: u32, buffer: &mut Vec<u8>, with_pss: bool) -> TreeMemory {
    let mut tree = TreeMemory {
        pss_bytes: with_pss.then_some(0),
        charged_bytes: with_pss.then_some(0),
        file_bytes: with_pss.then_some(0),
        ..TreeMemory::default()
    };
    let pids = descendants(root);
    for &pid in &pids {
        let Some(status) = procfs::memory_of(pid, buffer) else {
            continue;
        };
        let shares_memory_with = tree
            .processes
            .iter()
            .find(|p| {
                // Only where a shared address space could be (its figures read alike a moment apart), so a
                // poll of many processes makes few calls.
                p.shares_memory_with.is_none()
                    && (p.size_bytes == status.size_bytes || p.hwm_bytes == status.hwm_bytes)
                    && same_address_space(p.pid, pid)
            })
            .map(|p| p.pid);
        let mut pss_bytes = None;
        if with_pss {
            let Some(proportional) = procfs::proportional_of(pid, buffer) else {
                continue;
            };
            pss_bytes = Some(proportional.pss_bytes);
            if shares_memory_with.is_none() {
                let add = |total: &mut Option<u64>, bytes: u64| *total = total.map(|t| t + bytes);
                add(&mut tree.pss_bytes, proportional.pss_bytes);
                add(
                    &mut tree.charged_bytes,
                    proportional.anon_bytes + proportional.shmem_bytes,
                );
                add(&mut tree.file_bytes, proportional.file_bytes);
            }
        }
        if shares_memory_with.is_none() {
            tree.rss_bytes += status.rss_bytes;
            tree.unreclaimable_rss_bytes += status.anon_bytes + status.shmem_bytes;
        }
        tree.processes.push(ProcessMemory {
            pid,
            name: status.name,
            rss_bytes: status.rss_bytes,
            hwm_bytes: status.hwm_bytes,
            file_bytes: status.file_bytes,
            size_bytes: status.size_bytes,
            pss_bytes,
            shares_memory_with,
            ignores_sigchld: status.ignores_sigchld,
        });
    }
    if with_pss {
        let held = crate::shared_memory::held_unmapped_bytes(&pids);
        tree.charged_bytes = tree.charged_bytes.map(|total| total + held);
    }
    tree
}

/// True when `a` and `b` share one address space (`kcmp(KCMP_VM)`); false when they do not, or it cannot tell.
pub fn same_address_space(a: u32, b: u32) -> bool {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp compares two processes' kernel objects; it reads nothing of ours.
    unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            a as libc::c_long,
            b as libc::c_long,
            KCMP_VM,
            0,
            0,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_grandchild_is_found_and_killed_with_its_parent() {
        // sh starts a sleep and waits for it: sleep is this process's grandchild.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & wait $!"])
            .spawn()
            .unwrap();
        let me = std::process::id();
        // Wait until the shell's child has exec'd: between fork and exec it still shows the shell's command line.
        // Other tests of this process start children too, so look below the shell, not below this process.
        let mut found = None;
        for _ in 0..2500 {
            if let Some(&pid) = descendants(shell.id()).first()
                && procfs::command_of(pid).as_deref() == Some("sleep 30")
            {
                found = Some(pid);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let sleep = found.expect("the shell's sleep started within 5 s");
        let tree = descendants(me);
        assert!(
            tree.contains(&shell.id()) && tree.contains(&sleep),
            "{tree:?}"
        );
        let mut buffer = Vec::new();
        let memory = memory_of_descendants(me, &mut buffer, true);
        assert!(memory.processes.len() >= 2);
        assert!(
            memory
                .pss_bytes
                .is_some_and(|pss| pss > 0 && pss <= memory.rss_bytes)
        );
        assert_eq!(
            memory_of_descendants(me, &mut buffer, false).pss_bytes,
            None
        );
        assert_eq!(descendants(shell.id()), [sleep]);
        kill_descendants(shell.id());
        // The shell was waiting for its sleep: it sees it killed and ends on its own.
        let status = shell.wait().unwrap();
        assert_eq!(status.code(), Some(128 + libc::SIGKILL));
        let state = std::fs::read_to_string(format!("/proc/{sleep}/stat")).unwrap_or_default();
        assert!(!state.contains(") S "), "the sleep still runs: {state}");
    }
}
