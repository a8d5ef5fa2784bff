//! Deterministic filler for the models' records and events: the seeds' memory comes from large payloads (alert
//! bodies of several hundred KB in seed A, AG-UI events in C, hook events in D), so every model needs text of a
//! chosen size that looks like real payloads: mostly ASCII words, some quotes and backslashes that JSON must
//! escape, some multi-byte UTF-8. Seeded, so a scenario replays the same bytes every run.

/// SplitMix64: small, fast, and good enough to vary payloads; never used for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }
}

const WORDS: [&str; 16] = [
    "alert",
    "severity",
    "upstream",
    "timeout",
    "payload",
    "header",
    "session",
    "trigger",
    "workflow",
    "retry",
    "status=503",
    "x-request-id",
    "content-type",
    "application/json",
    "GET /api/v1/events",
    "resp_body",
];
const SPICE: [&str; 6] = [
    "\"quoted\"",
    "back\\slash",
    "naïve",
    "日本語",
    "emoji 🚀",
    "tab\there",
];

/// Text of exactly `bytes` UTF-8 bytes (never splitting a character), words with the odd quote, backslash and
/// multi-byte character in it.
pub fn filler_text(rng: &mut Rng, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes);
    while text.len() < bytes {
        let piece = if rng.below(8) == 0 {
            SPICE[rng.below(SPICE.len() as u64) as usize]
        } else {
            WORDS[rng.below(WORDS.len() as u64) as usize]
        };
        let room = bytes - text.len();
        if piece.len() < room {
            text.push_str(piece);
            text.push(' ');
        } else {
            text.extend(std::iter::repeat_n('x', room));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_has_the_exact_size_asked_for() {
        let mut rng = Rng::new(7);
        for bytes in [0, 1, 5, 100, 4096, 300_000] {
            assert_eq!(filler_text(&mut rng, bytes).len(), bytes);
        }
    }

    #[test]
    fn filler_is_reproducible_from_its_seed_and_needs_json_escaping() {
        let a = filler_text(&mut Rng::new(3), 10_000);
        let b = filler_text(&mut Rng::new(3), 10_000);
        assert_eq!(a, b);
        assert!(a.contains('"') && a.contains('\\') && !a.is_ascii());
    }

    #[test]
    fn between_stays_in_its_bounds() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let n = rng.between(10, 12);
            assert!((10..=12).contains(&n));
        }
    }
}
