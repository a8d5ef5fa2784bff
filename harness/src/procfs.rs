//! The few `/proc` figures memproof reads: a process's resident set now, its kernel high-water mark, and its
//! proportional set size.
//!
//! `/proc/PID/status` is read rather than `sysinfo` in the sampling loop because one small read gives both
//! `VmRSS` and `VmHWM`, and the high-water mark is the kernel's own peak, which no sampling can miss.
//!
//! `/proc/PID/smaps_rollup` gives `Pss`: each page divided by the number of processes mapping it, so summing it
//! over a process tree counts a page shared by a parent and its forked children once, as a container's memory
//! limit does (summing `VmRSS` would count it once per process). It costs more than `status`: the kernel walks the
//! page tables of every mapping to compute it (see README.md, "What memproof promises", for the measured cost).

use std::io::Read as _;

/// Resident set and high-water mark of a process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNow {
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` once it has exited (a zombie has no memory lines).
pub fn memory_of(pid: u32, buffer: &mut Vec<u8>) -> Option<MemoryNow> {
    buffer.clear();
    let mut file = std::fs::File::open(format!("/proc/{pid}/status")).ok()?;
    file.read_to_end(buffer).ok()?;
    parse_status(buffer)
}

fn parse_status(status: &[u8]) -> Option<MemoryNow> {
    Some(MemoryNow {
        rss_bytes: field_kib(status, b"VmRSS:")?,
        hwm_bytes: field_kib(status, b"VmHWM:")?,
    })
}

/// The value of a `Name:   123 kB` line, in bytes.
fn field_kib(text: &[u8], name: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(name))
        .and_then(parse_kib)
}

/// The proportional set size of `pid` from `/proc/PID/smaps_rollup`, in bytes; `None` once it has exited.
pub fn pss_of(pid: u32, buffer: &mut Vec<u8>) -> Option<u64> {
    buffer.clear();
    let mut file = std::fs::File::open(format!("/proc/{pid}/smaps_rollup")).ok()?;
    file.read_to_end(buffer).ok()?;
    field_kib(buffer, b"Pss:")
}

/// The command line of `pid`, arguments joined by spaces (its `comm` name for a kernel thread or a zombie).
pub fn command_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    if words.is_empty() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        return Some(format!("[{}]", comm.trim_end()));
    }
    Some(words.join(" "))
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
                rss_bytes: 1024 * 1024,
                hwm_bytes: 2048 * 1024
            })
        );
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
