//! The server's per-session cache entry with a last-seen time, and the sweep that evicts stale entries.
//!
//! In seed C the cache held each session's runner port; losing the entry of a live session sent its later calls to
//! the default port. The merged fix shortened the stale threshold from 1 h to 10 min and the sweep interval from
//! 10 min to 2 min, but "last seen" was only touched when a request started, so a stream that ran longer than
//! 10 minutes had its session evicted under it. The streaming technique touches the entry while a stream is
//! active ([`StalePolicy::touch_while_streaming`]); the cache counts evictions of sessions with a stream still
//! running, so the difference shows in a test and a metric.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When an entry is stale and how often the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalePolicy {
    /// An entry not seen for this long is evicted by the next sweep.
    pub threshold: Duration,
    pub sweep_interval: Duration,
    /// Whether an active stream keeps touching its session's entry.
    pub touch_while_streaming: bool,
}

impl StalePolicy {
    /// Seed C before its fix: 1 h threshold, 10 min sweep.
    pub const BEFORE_FIX: StalePolicy = StalePolicy {
        threshold: Duration::from_secs(3600),
        sweep_interval: Duration::from_secs(600),
        touch_while_streaming: false,
    };
    /// The merged fix: 10 min threshold, 2 min sweep, touched only when a request starts.
    pub const MERGED_FIX: StalePolicy = StalePolicy {
        threshold: Duration::from_secs(600),
        sweep_interval: Duration::from_secs(120),
        touch_while_streaming: false,
    };
    /// The merged fix's thresholds, with active streams keeping their entry fresh.
    pub const TOUCHED_WHILE_STREAMING: StalePolicy = StalePolicy {
        touch_while_streaming: true,
        ..StalePolicy::MERGED_FIX
    };
}

#[derive(Debug)]
struct Entry {
    last_seen: Instant,
    active_streams: u32,
}

/// Session entries keyed by session id.
#[derive(Debug)]
pub struct SessionCache {
    policy: StalePolicy,
    entries: Mutex<HashMap<String, Entry>>,
    evicted: AtomicU64,
    evicted_while_streaming: AtomicU64,
}

/// Held for as long as a response for the session is being sent; dropping it ends the stream's claim.
#[derive(Debug)]
pub struct StreamGuard {
    cache: Arc<SessionCache>,
    session: String,
}

impl SessionCache {
    pub fn new(policy: StalePolicy) -> Arc<SessionCache> {
        Arc::new(SessionCache {
            policy,
            entries: Mutex::new(HashMap::new()),
            evicted: AtomicU64::new(0),
            evicted_while_streaming: AtomicU64::new(0),
        })
    }

    pub fn policy(&self) -> StalePolicy {
        self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A request for `session` starts: its entry is created or touched, and counts one more active stream.
    pub fn start_stream(self: &Arc<Self>, session: &str) -> StreamGuard {
        let mut entries = self.lock();
        let entry = entries.entry(session.to_string()).or_insert(Entry {
            last_seen: Instant::now(),
            active_streams: 0,
        });
        entry.last_seen = Instant::now();
        entry.active_streams += 1;
        StreamGuard {
            cache: Arc::clone(self),
            session: session.to_string(),
        }
    }

    /// Whether the session has an entry now.
    pub fn contains(&self, session: &str) -> bool {
        self.lock().contains_key(session)
    }

    /// Evicts entries not seen for longer than the threshold, as of `now`; returns how many went.
    pub fn sweep(&self, now: Instant) -> u64 {
        let threshold = self.policy.threshold;
        let mut entries = self.lock();
        let mut evicted = 0;
        entries.retain(|_, entry| {
            let stale = now.saturating_duration_since(entry.last_seen) > threshold;
            if stale {
                evicted += 1;
                if entry.active_streams > 0 {
                    self.evicted_while_streaming.fetch_add(1, Ordering::Relaxed);
                }
            }
            !stale
        });
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        evicted
    }

    /// Entries evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Entries evicted while a response for their session was still being sent: the merged fix's fault.
    pub fn evicted_while_streaming(&self) -> u64 {
        self.evicted_while_streaming.load(Ordering::Relaxed)
    }

    /// Runs the sweep every `sweep_interval` on the current tokio runtime until the cache is dropped elsewhere
    /// and the task aborted.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(cache.policy.sweep_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                cache.sweep(Instant::now());
            }
        })
    }
}

impl StreamGuard {
    /// The stream made progress: touch the entry if the policy says so (re-creating it if a sweep took it).
    pub fn touch_while_streaming(&self) {
        if !self.cache.policy.touch_while_streaming {
            return;
        }
        let mut entries = self.cache.lock();
        let entry = entries.entry(self.session.clone()).or_insert(Entry {
            last_seen: Instant::now(),
            active_streams: 1,
        });
        entry.last_seen = Instant::now();
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let touch = self.cache.policy.touch_while_streaming;
        let mut entries = self.cache.lock();
        if let Some(entry) = entries.get_mut(&self.session) {
            entry.active_streams = entry.active_streams.saturating_sub(1);
            if touch {
                entry.last_seen = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(touch_while_streaming: bool) -> StalePolicy {
        StalePolicy {
            threshold: Duration::from_secs(600),
            sweep_interval: Duration::from_secs(120),
            touch_while_streaming,
        }
    }

    #[test]
    fn a_long_stream_is_evicted_under_the_merged_fix_and_kept_when_touched() {
        for touch in [false, true] {
            let cache = SessionCache::new(StalePolicy {
                threshold: Duration::from_millis(200),
                ..policy(touch)
            });
            let guard = cache.start_stream("s1");
            // The stream runs for 300 ms, longer than the threshold, making progress every 150 ms.
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(150));
                guard.touch_while_streaming();
            }
            let evicted = cache.sweep(Instant::now());
            assert_eq!(
                evicted,
                u64::from(!touch),
                "touch_while_streaming = {touch}"
            );
            assert_eq!(cache.evicted_while_streaming(), u64::from(!touch));
            drop(guard);
        }
    }

    #[test]
    fn sessions_idle_past_the_threshold_are_swept_and_fresh_ones_kept() {
        let cache = SessionCache::new(policy(false));
        drop(cache.start_stream("old"));
        let start = Instant::now();
        assert_eq!(cache.sweep(start + Duration::from_secs(599)), 0);
        assert_eq!(cache.sweep(start + Duration::from_secs(601)), 1);
        assert!(!cache.contains("old"));
        assert_eq!(cache.evicted_while_streaming(), 0);
    }

    #[test]
    fn the_seed_thresholds_are_the_ones_the_pr_names() {
        assert_eq!(StalePolicy::BEFORE_FIX.threshold, Duration::from_secs(3600));
        assert_eq!(
            StalePolicy::BEFORE_FIX.sweep_interval,
            Duration::from_secs(600)
        );
        assert_eq!(StalePolicy::MERGED_FIX.threshold, Duration::from_secs(600));
        assert_eq!(
            StalePolicy::MERGED_FIX.sweep_interval,
            Duration::from_secs(120)
        );
    }
}
