//! The runner as the tree's last subreaper: what a dead launcher left behind is found, named, killed and reaped.
//!
//! The launcher is the tree's child subreaper, but the program can kill it (`kill -KILL $PPID` cannot be caught).
//! Its orphans would then be re-parented to init and outlive the run. So the runner's own process is a child
//! subreaper too (`PR_SET_CHILD_SUBREAPER`, once, on the first run): they are re-parented to it instead, where the
//! runner finds them among its own children.
//!
//! Several runs can share the runner's process (`--jobs`), and the runner has children of its own (other runs'
//! launchers, a fixture being built), so an orphan is taken as a run's only when the run knows it: its pid was seen
//! in the run's tree, or its process group or session is one seen there (the program's own group at least, which
//! the launcher made), never the runner's own group or session, never a launcher. A process that left the program's
//! group for a new session of its own and was orphaned before any poll saw it is the one the runner cannot tell
//! from a process of its own: it is left alone.

use crate::process_tree;
use std::collections::HashSet;
use std::sync::{Mutex, Once};

/// The launchers of the runs under way in this process: never anybody's orphans.
static LAUNCHERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static SUBREAPER: Once = Once::new();

/// Makes this process the child subreaper of everything it starts from now on (idempotent).
pub fn become_subreaper() {
    SUBREAPER.call_once(|| {
        // SAFETY: a plain prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    });
}

/// A launcher of this process's, registered while its run is under way.
pub struct LauncherGuard(u32);

impl LauncherGuard {
    pub fn register(pid: u32) -> LauncherGuard {
        LAUNCHERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        LauncherGuard(pid)
    }
}

impl Drop for LauncherGuard {
    fn drop(&mut self) {
        LAUNCHERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&pid| pid != self.0);
    }
}

/// What a run knows of its tree: every pid a poll saw, and their process groups and sessions.
pub struct Belonging {
    pids: HashSet<u32>,
    groups: HashSet<u32>,
    sessions: HashSet<u32>,
    own_group: u32,
    own_session: u32,
}

/// The most pids a run remembers (a fork bomb's are many); groups and sessions still cover the rest.
const MAX_KNOWN_PIDS: usize = 1 << 20;

impl Default for Belonging {
    fn default() -> Belonging {
        let own = group_and_session(std::process::id()).unwrap_or((0, 0));
        Belonging {
            pids: HashSet::new(),
            groups: HashSet::new(),
            sessions: HashSet::new(),
            own_group: own.0,
            own_session: own.1,
        }
    }
}

impl Belonging {
    /// Notes a process seen in the run's tree (its group and session are read the first time).
    pub fn note(&mut self, pid: u32) {
        if self.pids.len() >= MAX_KNOWN_PIDS || !self.pids.insert(pid) {
            return;
        }
        if let Some((group, session)) = group_and_session(pid) {
            self.note_group(group);
            if session != self.own_session {
                self.sessions.insert(session);
            }
        }
    }

    /// Notes a process group of the run's (the program's, which the launcher made for it).
    pub fn note_group(&mut self, group: u32) {
        if group != self.own_group {
            self.groups.insert(group);
        }
    }

    /// True when a poll saw `pid` in the run's tree.
    pub fn knows(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    fn owns(&self, pid: u32) -> bool {
        if self.pids.contains(&pid) {
            return true;
        }
        group_and_session(pid).is_some_and(|(group, session)| {
            self.groups.contains(&group) || self.sessions.contains(&session)
        })
    }

    /// This process's children that are the run's orphans.
    pub fn orphans(&self) -> Vec<u32> {
        let launchers = LAUNCHERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        process_tree::children(std::process::id())
            .into_iter()
            .filter(|pid| !launchers.contains(pid) && self.owns(*pid))
            .collect()
    }
}

/// The process group and session of `pid`, from `/proc/PID/stat`.
fn group_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's closing parenthesis: state, ppid, pgrp, session.
    let mut fields = stat[stat.rfind(')')? + 1..]
        .split_ascii_whitespace()
        .skip(2);
    let group = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((group, session))
}

/// One orphan the sweep found: alive (named and killed) or already exited (reaped, with its `ru_maxrss`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    Killed { pid: u32, command: String },
    Reaped { pid: u32, maxrss_bytes: u64 },
}

/// Kills every orphan of the run and everything under it, and reaps them, until none is left (or five seconds
/// pass: a process stuck in the kernel cannot be reaped before it leaves it). Each is reported once.
pub fn sweep(belonging: &mut Belonging) -> Vec<Swept> {
    let mut swept = Vec::new();
    let mut named: HashSet<u32> = HashSet::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let orphans = belonging.orphans();
        if orphans.is_empty() || std::time::Instant::now() > until {
            return swept;
        }
        for &orphan in &orphans {
            let mut tree = vec![orphan];
            tree.extend(process_tree::descendants(orphan));
            for pid in tree {
                belonging.note(pid);
                if !process_tree::is_zombie(pid) && named.insert(pid) {
                    swept.push(Swept::Killed {
                        pid,
                        command: meter::procfs::command_of(pid).unwrap_or_else(|| "?".into()),
                    });
                }
                // SAFETY: kill(2) on the run's own orphan or its descendant, read from /proc a moment ago.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        for orphan in orphans {
            let mut status = 0;
            // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on one pid that is this process's child; valid out-pointers.
            let waited = unsafe {
                libc::wait4(
                    orphan as libc::pid_t,
                    &mut status,
                    libc::WNOHANG,
                    &mut usage,
                )
            };
            if waited == orphan as libc::pid_t {
                swept.push(Swept::Reaped {
                    pid: orphan,
                    maxrss_bytes: usage.ru_maxrss as u64 * 1024,
                });
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
