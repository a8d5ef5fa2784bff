//! The few `/proc` figures memproof reads: a process's resident set now, its kernel high-water mark, and its
//! proportional set size.
//!
//! `/proc/PID/status` is read rather than `sysinfo` in the sampling loop because one small read gives both
//! `VmRSS` and `VmHWM`, and the high-water mark is the kernel's own peak, which no sampling can miss.
//!
//! `/proc/PID/smaps_rollup` gives `Pss`: each page divided by the number of processes mapping it, so summing it
//! over a process tree counts a page shared by a parent and its forked children once, as a container's memory
//! limit does (summing `VmRSS` would count it once per process). It costs more than `status`: the kernel walks the
//! page tables of every mapping to compute it (docs/promises.md has the measured cost).

use std::io::Read as _;

/// A process's program name (`Name:` of its status, at most 15 bytes): it changes when the process execs.
pub type ProgramName = [u8; 16];

/// Resident set and high-water mark of a process, in bytes, and what its resident set is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryNow {
    /// Read in the same `status` as the figures, so a change of name tells an exec between two reads.
    pub name: ProgramName,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    /// `VmSize`: the address space's mapped size, which changes only when a mapping does.
    pub size_bytes: u64,
    /// `RssAnon` and `RssShmem`: what no reclaim can free without swap (a container's limit counts them).
    pub anon_bytes: u64,
    pub shmem_bytes: u64,
    /// `RssFile`: file pages, which a container reclaims rather than kill when they are clean.
    pub file_bytes: u64,
    /// SIGCHLD is ignored (`SigIgn`): its children are reaped by the kernel, with nobody to read their `ru_maxrss`.
    pub ignores_sigchld: bool,
}

/// Reads the memory lines of `pid`'s status; `None` once it has exited. A leader thread that exited while others
/// run (a zombie leader) has no memory lines of its own: they are read from a living thread's
/// `/proc/PID/task/TID/status`, which shares its address space.
pub fn memory_of(pid: u32, buffer: &mut Vec<u8>) -> Option<MemoryNow> {
    read_into(&format!("/proc/{pid}/status"), buffer)?;
    parse_status(buffer).or_else(|| {
        living_threads(pid).find_map(|tid| {
            read_into(&format!("/proc/{pid}/task/{tid}/status"), buffer)?;
            parse_status(buffer)
        })
    })
}

/// The threads of `pid` other than its leader.
fn living_threads(pid: u32) -> impl Iterator<Item = u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |&tid| tid != pid)
}

fn read_into(path: &str, buffer: &mut Vec<u8>) -> Option<()> {
    buffer.clear();
    let mut file = std::fs::File::open(path).ok()?;
    file.read_to_end(buffer).ok()?;
    Some(())
}

fn parse_status(status: &[u8]) -> Option<MemoryNow> {
    let ignored = status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"SigIgn:"))
        .and_then(|mask| u64::from_str_radix(std::str::from_utf8(mask).ok()?.trim(), 16).ok())
        .unwrap_or(0);
    let mut name = ProgramName::default();
    if let Some(line) = status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Name:"))
    {
        let line = line.trim_ascii();
        let length = line.len().min(name.len());
        name[..length].copy_from_slice(&line[..length]);
    }
    Some(MemoryNow {
        name,
        rss_bytes: field_kib(status, b"VmRSS:")?,
        hwm_bytes: field_kib(status, b"VmHWM:")?,
        size_bytes: field_kib(status, b"VmSize:").unwrap_or(0),
        anon_bytes: field_kib(status, b"RssAnon:").unwrap_or(0),
        shmem_bytes: field_kib(status, b"RssShmem:").unwrap_or(0),
        file_bytes: field_kib(status, b"RssFile:").unwrap_or(0),
        ignores_sigchld: ignored & (1 << (libc::SIGCHLD - 1)) != 0,
    })
}

/// The value of a `Name:   123 kB` line, in bytes.
fn field_kib(text: &[u8], name: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(name))
        .and_then(parse_kib)
}

/// A process's proportional set size and what it is made of, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proportional {
    pub pss_bytes: u64,
    /// `Pss_Anon` and `Pss_Shmem`: what a container's limit counts and cannot reclaim.
    pub anon_bytes: u64,
    pub shmem_bytes: u64,
    /// `Pss_File`: file pages, reclaimable when clean.
    pub file_bytes: u64,
}

/// The proportional set size of `pid` from `/proc/PID/smaps_rollup` (a living thread's for a zombie leader, whose
/// own is unreadable); `None` once it has exited.
pub fn proportional_of(pid: u32, buffer: &mut Vec<u8>) -> Option<Proportional> {
    let parse = |buffer: &[u8]| {
        Some(Proportional {
            pss_bytes: field_kib(buffer, b"Pss:")?,
            anon_bytes: field_kib(buffer, b"Pss_Anon:").unwrap_or(0),
            shmem_bytes: field_kib(buffer, b"Pss_Shmem:").unwrap_or(0),
            file_bytes: field_kib(buffer, b"Pss_File:").unwrap_or(0),
        })
    };
    read_into(&format!("/proc/{pid}/smaps_rollup"), buffer)
        .and_then(|()| parse(buffer))
        .or_else(|| {
            living_threads(pid).find_map(|tid| {
                read_into(&format!("/proc/{pid}/task/{tid}/smaps_rollup"), buffer)?;
                parse(buffer)
            })
        })
}

/// The proportional set size of `pid`, in bytes; `None` once it has exited.
pub fn pss_of(pid: u32, buffer: &mut Vec<u8>) -> Option<u64> {
    proportional_of(pid, buffer).map(|p| p.pss_bytes)
}

/// The command line of `pid`, arguments joined by spaces (its `comm` name for a kernel thread or a zombie).
pub fn command_of(pid: u32) -> Option<String> {
    if let Some(command) = command_line_of(pid) {
        return Some(command);
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("[{}]", comm.trim_end()))
}

/// The command line of `pid`, arguments joined by spaces; `None` when it has none to read: gone, a kernel thread,
/// or a process already exiting (its memory, and so its arguments, released).
pub fn command_line_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The state letter of `pid` (`R`, `S`, `D`, `T` stopped, `t` traced, `Z` zombie, …); `None` once it is gone.
pub fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn parse_kib(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?.trim();
    let number = text.strip_suffix("kB")?.trim();
    number.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// This process's own `VmHWM`, in bytes.
pub fn own_vm_hwm_bytes() -> Option<u64> {
    let mut buffer = Vec::with_capacity(2048);
    memory_of(std::process::id(), &mut buffer).map(|memory| memory.hwm_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_rss_and_high_water_mark_in_bytes() {
        let status = b"Name:\tcat\nVmPeak:\t  10000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status(status),
            Some(MemoryNow {
                name: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
                rss_bytes: 1024 * 1024,
                hwm_bytes: 2048 * 1024,
                ..MemoryNow::default()
            })
        );
        let ignoring = b"VmHWM:\t 8 kB\nVmRSS:\t 4 kB\nRssAnon:\t 3 kB\nRssFile:\t 1 kB\nSigIgn:\t0000000000010000\n";
        let memory = parse_status(ignoring).unwrap();
        assert!(memory.ignores_sigchld);
        assert_eq!((memory.anon_bytes, memory.file_bytes), (3 * 1024, 1024));
    }

    #[test]
    fn this_process_has_a_proportional_set_size_at_most_its_resident_set() {
        let mut buffer = Vec::new();
        let memory = memory_of(std::process::id(), &mut buffer).unwrap();
        let pss = pss_of(std::process::id(), &mut buffer).unwrap();
        assert!(
            pss > 0 && pss <= memory.hwm_bytes,
            "{pss} against {memory:?}"
        );
        assert_eq!(pss_of(u32::MAX, &mut buffer), None);
    }

    #[test]
    fn a_status_without_memory_lines_reads_as_gone() {
        assert_eq!(parse_status(b"Name:\tzombie\nState:\tZ (zombie)\n"), None);
    }

    #[test]
    fn this_process_has_a_high_water_mark_at_least_its_resident_set() {
        let mut buffer = Vec::new();
        let memory = memory_of(std::process::id(), &mut buffer).unwrap();
        assert!(memory.hwm_bytes >= memory.rss_bytes);
        assert!(memory.rss_bytes > 0);
    }
}
