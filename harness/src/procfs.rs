//! The few `/proc` figures memproof reads: a process's resident set now and its kernel high-water mark.
//!
//! `/proc/PID/status` is read rather than `sysinfo` in the sampling loop because one small read gives both
//! `VmRSS` and `VmHWM`, and the high-water mark is the kernel's own peak, which no sampling can miss.

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
    let mut rss = None;
    let mut hwm = None;
    for line in status.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"VmRSS:") {
            rss = parse_kib(rest);
        } else if let Some(rest) = line.strip_prefix(b"VmHWM:") {
            hwm = parse_kib(rest);
        }
    }
    Some(MemoryNow {
        rss_bytes: rss?,
        hwm_bytes: hwm?,
    })
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
