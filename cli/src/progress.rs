//! Progress on the terminal: a line per case as it starts and ends, and a live line while it runs when stderr is
//! a terminal.

use planning::suite::{PlannedCase, SuiteEvent};
use runner::Progress;
use schema::results::Case;
use schema::units::format_bytes;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

pub struct Printer {
    total: usize,
    done: usize,
    live: bool,
    last_live: Instant,
}

fn bytes(value: Option<u64>) -> String {
    value.map_or("-".to_string(), |v| format_bytes(v as f64))
}

impl Printer {
    pub fn new(total: usize) -> Printer {
        Printer {
            total,
            done: 0,
            live: std::io::stderr().is_terminal(),
            last_live: Instant::now(),
        }
    }

    fn clear_live(&self) {
        if self.live {
            eprint!("\r\x1b[2K");
        }
    }

    pub fn event(&mut self, event: SuiteEvent<'_>) {
        match event {
            SuiteEvent::Started { case, run } => self.started(case, run),
            SuiteEvent::Running { case, progress } => self.running(case, progress),
            SuiteEvent::Fixture { case, status } => self.fixture(case, &status),
            SuiteEvent::Finished { case } => self.finished(case),
        }
    }

    /// A fixture made or remade is said; one served from the cache is not news.
    fn fixture(&mut self, case: &PlannedCase, status: &str) {
        if status != planning::fixtures::CacheStatus::Hit.to_string() {
            self.clear_live();
            eprintln!("    {} fixture {status}", case.id);
        }
    }

    fn started(&mut self, case: &PlannedCase, run: &str) {
        self.clear_live();
        let width = self.total.to_string().len();
        eprintln!(
            "[{:>width$}/{}] {} {run} run ...",
            self.done + 1,
            self.total,
            case.id
        );
    }

    fn running(&mut self, case: &PlannedCase, progress: Progress) {
        if !self.live || self.last_live.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last_live = Instant::now();
        eprint!(
            "\r\x1b[2K    {} {:.1} s  RSS {}  heap {}",
            case.id,
            progress.elapsed.as_secs_f64(),
            bytes(progress.rss_bytes),
            bytes(progress.heap_bytes)
        );
        let _ = std::io::stderr().flush();
    }

    fn finished(&mut self, case: &Case) {
        self.clear_live();
        self.done += 1;
        let width = self.total.to_string().len();
        eprintln!(
            "[{:>width$}/{}] {}  {}  peak RSS {}  peak heap {}  {:.1} s",
            self.done,
            self.total,
            case.id,
            case.outcome,
            bytes(case.peak_rss_bytes),
            bytes(case.peak_heap_bytes),
            case.wall_ms / 1e3
        );
        if let Some(message) = &case.exit.message {
            for line in message.lines() {
                eprintln!("      {line}");
            }
        }
    }
}
