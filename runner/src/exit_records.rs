//! The kernel's record of every process that exits, with its high-water mark: the peak of a process that lived
//! and died between two polls, which nothing else keeps when the kernel reaps it itself (its parent ignores
//! SIGCHLD) and nobody reads its `ru_maxrss`.
//!
//! Taskstats over generic netlink: registered for the exits on every CPU (`TASKSTATS_CMD_ATTR_REGISTER_CPUMASK`),
//! the kernel sends one record per exiting task, `hiwater_rss` among its fields (in KiB). Registering needs
//! `CAP_NET_ADMIN`; without it (or without taskstats in the kernel), [`listen`] says why and the runner says the
//! peak of such children is a lower bound. Records come for the whole machine: the runner keeps those of its tree
//! (a task it saw, or one whose parent is of the tree), at most [`MAX_RECORDS`] of all; past that, or when the
//! kernel drops records because the socket is full, the result says some were lost.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The most records held while a run lasts (every exit on the machine arrives, not only the tree's).
pub const MAX_RECORDS: usize = 200_000;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
const NLMSG_ERROR: u16 = 2;
/// Offsets in `struct taskstats` (linux/taskstats.h, version 13; the fields used are there since version 1, but
/// `ac_tgid`, since version 10).
const AC_PID: usize = 128;
const AC_PPID: usize = 132;
const HIWATER_RSS: usize = 200;
const AC_TGID: usize = 368;

/// One task's exit, as the kernel recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// The process (thread group) the task belonged to.
    pub pid: u32,
    /// Its parent process.
    pub ppid: u32,
    /// The process's high-water mark when the task exited.
    pub hiwater_rss_bytes: u64,
}

/// Exit records being received, until [`Listener::finish`].
pub struct Listener {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<ExitRecord>>>,
    lost: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts receiving every task's exit record, or says why it cannot.
pub fn listen() -> Result<Listener, String> {
    let socket = open()
        .map_err(|error| format!("cannot read the kernel's exit records (taskstats): {error}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(Mutex::new(Vec::new()));
    let lost = Arc::new(AtomicBool::new(false));
    let thread = {
        let (stop, records, lost) = (stop.clone(), records.clone(), lost.clone());
        std::thread::spawn(move || receive(&socket, &stop, &records, &lost))
    };
    Ok(Listener {
        stop,
        records,
        lost,
        thread,
    })
}

impl Listener {
    /// Stops receiving: every record so far, and whether any was lost.
    pub fn finish(self) -> (Vec<ExitRecord>, bool) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let records = std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()));
        (records, self.lost.load(Ordering::SeqCst))
    }
}

/// The records of processes of a tree, given a test of the processes known to be of it: a record is the tree's when
/// its process or its parent is, read from the last exit to the first (a child exits before the parent that would
/// vouch for it).
pub fn of_tree(records: &[ExitRecord], known: impl Fn(u32) -> bool) -> Vec<ExitRecord> {
    let mut tree: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut kept = Vec::new();
    for record in records.iter().rev() {
        if known(record.pid) || tree.contains(&record.ppid) || known(record.ppid) {
            tree.insert(record.pid);
            kept.push(*record);
        }
    }
    kept
}

fn open() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket just returned this descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let buffer: libc::c_int = 8 << 20;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: setsockopt with valid option values of the sizes given; a refused size leaves the default.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&buffer as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let reply = request(
        &socket,
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        CTRL_ATTR_FAMILY_NAME,
        b"TASKSTATS\0",
    )?
    .unwrap_or_default();
    let family = find_attr(&reply, CTRL_ATTR_FAMILY_ID)
        .and_then(|id| Some(u16::from_ne_bytes(id.get(..2)?.try_into().ok()?)))
        .ok_or_else(|| std::io::Error::other("the kernel has no TASKSTATS family"))?;
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut mask = cpus.trim().as_bytes().to_vec();
    mask.push(0);
    request(
        &socket,
        family,
        TASKSTATS_CMD_GET,
        TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
        &mask,
    )?;
    Ok(socket)
}

/// Sends one generic-netlink request with one attribute and an acknowledgement asked for; returns the attributes of
/// a reply that is not the acknowledgement, or the error the acknowledgement carried.
fn request(
    socket: &OwnedFd,
    family: u16,
    command: u8,
    attr: u16,
    value: &[u8],
) -> std::io::Result<Option<Vec<u8>>> {
    let attr_len = 4 + value.len();
    let total = 16 + 4 + attr_len.next_multiple_of(4);
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(&(total as u32).to_ne_bytes());
    message.extend_from_slice(&family.to_ne_bytes());
    message.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&[command, 1, 0, 0]);
    message.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    message.extend_from_slice(&attr.to_ne_bytes());
    message.extend_from_slice(value);
    message.resize(total, 0);
    // SAFETY: send of a buffer we own, of its length.
    if unsafe {
        libc::send(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let mut reply = None;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = receive_into(socket, &mut buffer)?;
        for (kind, payload) in messages(&buffer[..n]) {
            if kind == NLMSG_ERROR {
                let code = i32::from_ne_bytes(
                    payload
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 4]),
                );
                if code != 0 {
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                return Ok(reply);
            }
            reply = payload.get(4..).map(<[u8]>::to_vec);
        }
    }
}

/// One datagram from the socket into `buffer`: its length.
fn receive_into(socket: &OwnedFd, buffer: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: recv into a buffer we own, of its length.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// The netlink messages in a datagram: (type, payload after the 16-byte header).
fn messages(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        if len < 16 || len > data.len() {
            break;
        }
        found.push((kind, &data[16..len]));
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    found
}

/// The payload of the first attribute of `kind` in a run of attributes.
fn find_attr(mut data: &[u8], kind: u16) -> Option<&[u8]> {
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes(data[..2].try_into().ok()?));
        let this = u16::from_ne_bytes(data[2..4].try_into().ok()?) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        if this == kind {
            return Some(&data[4..len]);
        }
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    None
}

/// One exit record from a `TASKSTATS_CMD_NEW` message's attributes.
fn parse_record(attrs: &[u8]) -> Option<ExitRecord> {
    let nested = find_attr(attrs, TASKSTATS_TYPE_AGGR_PID)
        .or_else(|| find_attr(attrs, TASKSTATS_TYPE_AGGR_TGID))?;
    let stats = find_attr(nested, TASKSTATS_TYPE_STATS)?;
    let u32_at = |at: usize| Some(u32::from_ne_bytes(stats.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_ne_bytes(stats.get(at..at + 8)?.try_into().ok()?));
    Some(ExitRecord {
        pid: u32_at(AC_TGID)
            .filter(|&tgid| tgid != 0)
            .or_else(|| u32_at(AC_PID))?,
        ppid: u32_at(AC_PPID)?,
        hiwater_rss_bytes: u64_at(HIWATER_RSS)? * 1024,
    })
}

fn receive(
    socket: &OwnedFd,
    stop: &AtomicBool,
    records: &Mutex<Vec<ExitRecord>>,
    lost: &AtomicBool,
) {
    let mut buffer = vec![0u8; 1 << 16];
    while !stop.load(Ordering::SeqCst) {
        let n = match receive_into(socket, &mut buffer) {
            Ok(n) => n,
            Err(error) => {
                match error.raw_os_error() {
                    Some(libc::ENOBUFS) => lost.store(true, Ordering::SeqCst),
                    Some(libc::EAGAIN | libc::EINTR) => {}
                    _ => return,
                }
                continue;
            }
        };
        let mut held = records.lock().unwrap_or_else(|e| e.into_inner());
        for (_, payload) in messages(&buffer[..n]) {
            if let Some(record) = payload.get(4..).and_then(parse_record) {
                if held.len() < MAX_RECORDS {
                    held.push(record);
                } else {
                    lost.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_exited_is_recorded_with_its_high_water_mark() {
        // memproof's tests run as root, as its CI does: the records are there to read.
        let listener = listen().expect("taskstats exit records");
        let child = std::process::Command::new("sh")
            .args([
                "-c",
                "x=$(head -c 30000000 /dev/zero | tr '\\0' x); echo ${#x}",
            ])
            .output()
            .unwrap();
        assert!(child.status.success());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (records, _) = listener.finish();
        let me = std::process::id();
        let mine = of_tree(&records, |pid| pid == me);
        assert!(
            mine.iter().any(|r| r.hiwater_rss_bytes > 30_000_000),
            "{mine:?}"
        );
    }
}
