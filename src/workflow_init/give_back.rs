//! The give-back step of seed B's fix: after each batch of inits the Go engine prompted its garbage collector to
//! return memory. A Rust program has no collector; what the freed buffers leave behind is free memory that glibc's
//! allocator keeps for reuse. The closest prompt is `malloc_trim(0)`, which returns free memory at the top of the
//! heap and whole free pages inside it to the OS. Whether it changes RSS here is measured, not assumed: the
//! startup reads RSS before and after every call ([`GiveBackRecord`]).

/// One give-back: when it happened and what RSS did around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveBackRecord {
    /// Inits completed (initialised or failed) when it ran.
    pub completed: usize,
    pub rss_before_bytes: Option<u64>,
    pub rss_after_bytes: Option<u64>,
    /// glibc's answer: whether any memory was released.
    pub released_any: bool,
}

impl GiveBackRecord {
    /// RSS the call handed back (0 if RSS did not drop or was not read).
    pub fn rss_released_bytes(&self) -> u64 {
        match (self.rss_before_bytes, self.rss_after_bytes) {
            (Some(before), Some(after)) => before.saturating_sub(after),
            _ => 0,
        }
    }
}

/// Asks glibc to return free heap memory to the OS; `true` when it released some. Elsewhere it does nothing.
pub fn trim_free_heap_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps no padding at the top.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_bytes_never_go_negative() {
        let record = GiveBackRecord {
            completed: 12,
            rss_before_bytes: Some(100),
            rss_after_bytes: Some(150),
            released_any: false,
        };
        assert_eq!(record.rss_released_bytes(), 0);
        let record = GiveBackRecord {
            rss_after_bytes: Some(40),
            ..record
        };
        assert_eq!(record.rss_released_bytes(), 60);
    }

    #[test]
    fn trimming_an_idle_heap_is_harmless() {
        let _ = trim_free_heap_memory();
        let kept = vec![1u8; 1024];
        assert_eq!(kept.iter().map(|&b| b as usize).sum::<usize>(), 1024);
    }
}
