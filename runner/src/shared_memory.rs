//! Memory a tree holds that is in no process's resident set: shared-memory files (a memfd, a file in `/dev/shm` or
//! any tmpfs) held open but not mapped, and System V segments no process has attached. A container's memory charge
//! includes them (measured: 400 MiB written into a memfd and held showed 1.16 MiB of resident set), so the runner
//! adds them to what it checks the limit against, and names what the run left behind.
//!
//! A file is counted once however many descriptors hold it (by device and inode), and only when no process of the
//! tree maps it (a mapped file's resident pages are in `Pss_Shmem` already). A segment is the tree's when a process
//! of the tree created it (`cpid` of `/proc/sysvipc/shm`); attached, it is in `Pss_Shmem` too.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;

/// `statfs`'s `f_type` of tmpfs, which memfd files and `/dev/shm` live on.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// One file identity: device and inode.
type FileId = (u64, u64);

/// The bytes of shared-memory files the processes `pids` hold open and none of them maps, each file once.
pub fn held_unmapped_bytes(pids: &[u32]) -> u64 {
    let mut held: HashMap<FileId, u64> = HashMap::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let path = fd.path();
            let Ok(target) = std::fs::read_link(&path) else {
                continue;
            };
            if !target.as_os_str().as_encoded_bytes().starts_with(b"/") {
                continue; // a pipe, a socket, an anonymous inode
            }
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_file() && on_tmpfs(&path) {
                held.insert((metadata.dev(), metadata.ino()), metadata.blocks() * 512);
            }
        }
    }
    if held.is_empty() {
        return 0;
    }
    let mapped = mapped_files(pids);
    held.iter()
        .filter(|(id, _)| !mapped.contains(id))
        .map(|(_, bytes)| bytes)
        .sum()
}

fn on_tmpfs(path: &std::path::Path) -> bool {
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value for statfs to overwrite; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(name.as_ptr(), &mut stat) } == 0) && stat.f_type as i64 == TMPFS_MAGIC
}

/// Every file any of `pids` maps, from `/proc/PID/maps` (`major:minor inode`).
fn mapped_files(pids: &[u32]) -> HashSet<FileId> {
    let mut mapped = HashSet::new();
    for &pid in pids {
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        for line in maps.lines() {
            let mut fields = line.split_ascii_whitespace().skip(3);
            let (Some(device), Some(inode)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((major, minor)) = device.split_once(':') else {
                continue;
            };
            let (Ok(major), Ok(minor), Ok(inode)) = (
                u32::from_str_radix(major, 16),
                u32::from_str_radix(minor, 16),
                inode.parse::<u64>(),
            ) else {
                continue;
            };
            if inode != 0 {
                mapped.insert((libc::makedev(major, minor), inode));
            }
        }
    }
    mapped
}

/// One System V shared-memory segment, from `/proc/sysvipc/shm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub key: i64,
    pub id: u64,
    pub size_bytes: u64,
    /// The process that created it.
    pub creator: u32,
    pub attached: u64,
    pub resident_bytes: u64,
}

/// Every System V segment on the machine (empty where `/proc/sysvipc/shm` cannot be read).
pub fn segments() -> Vec<Segment> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    text.lines().skip(1).filter_map(parse_segment).collect()
}

/// `key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap`.
fn parse_segment(line: &str) -> Option<Segment> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    Some(Segment {
        key: fields.first()?.parse().ok()?,
        id: fields.get(1)?.parse().ok()?,
        size_bytes: fields.get(3)?.parse().ok()?,
        creator: fields.get(4)?.parse().ok()?,
        attached: fields.get(6)?.parse().ok()?,
        resident_bytes: fields.get(14)?.parse().ok()?,
    })
}

/// The files in `/dev/shm` now, by identity, with their names and sizes.
pub fn dev_shm_files() -> HashMap<FileId, (String, u64)> {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(metadata) = entry.metadata()
            && metadata.is_file()
        {
            files.insert(
                (metadata.dev(), metadata.ino()),
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    metadata.blocks() * 512,
                ),
            );
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_line_gives_its_creator_and_resident_bytes() {
        let line = "         0      3  1600       4096  4242  4243     0     0     0     0     0 0 0 1700000000 8192 0";
        assert_eq!(
            parse_segment(line),
            Some(Segment {
                key: 0,
                id: 3,
                size_bytes: 4096,
                creator: 4242,
                attached: 0,
                resident_bytes: 8192,
            })
        );
    }
}
