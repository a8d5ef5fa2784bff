//! What one poll of a process tree costs, and what the runner's checks beyond the resident sets add to it: the
//! reads a poll made before them (`status` and `smaps_rollup` of each process) against a whole poll as the runner
//! makes it (the same reads, the address-space comparison, the shared-memory files the tree holds, the System V
//! segments). Measured on two trees: one process holding 1 GiB, and a shell with four children, each holding a
//! memfd and a mapping.
//!
//! `cargo run --release -p memproof-runner --example poll_cost`

use std::process::{Child, Command};
use std::time::{Duration, Instant};

const POLLS: usize = 200;

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn measure(name: &str, root: u32) {
    let mut buffer = Vec::new();
    let (mut before, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..POLLS {
        let started = Instant::now();
        for pid in runner::process_tree::descendants(root) {
            std::hint::black_box(meter::procfs::memory_of(pid, &mut buffer));
            std::hint::black_box(meter::procfs::pss_of(pid, &mut buffer));
        }
        before.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(runner::process_tree::memory_of_descendants(
            root,
            &mut buffer,
            true,
        ));
        std::hint::black_box(runner::shared_memory::segments());
        whole.push(started.elapsed());
    }
    let (before, whole) = (median_ms(before), median_ms(whole));
    println!(
        "{name}: status + smaps_rollup {before:.3} ms a poll, the runner's whole poll {whole:.3} ms ({:+.3} ms, \
         {:.2}x; medians of {POLLS})",
        whole - before,
        whole / before
    );
}

fn wait_for_rss(child: &Child, bytes: u64) {
    let mut buffer = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while runner::process_tree::memory_of_descendants(child.id(), &mut buffer, false).rss_bytes
        < bytes
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    // A parent whose descendants are the tree: `sh -c` holding one 1 GiB python process.
    let mut one = Command::new("sh")
        .args([
            "-c",
            "python3 -c 'import time; b = bytearray(1 << 30); time.sleep(600)'",
        ])
        .spawn()
        .expect("sh and python3");
    wait_for_rss(&one, 1 << 30);
    measure("one process holding 1 GiB", one.id());
    one.kill().ok();
    runner::process_tree::kill_descendants(one.id());
    let _ = one.wait();

    let child = "import mmap, os, time; fd = os.memfd_create('held'); os.write(fd, b'x' * (8 << 20)); \
                 m = mmap.mmap(-1, 16 << 20); m.write(b'y' * (16 << 20)); time.sleep(600)";
    let script = format!("for i in 1 2 3 4; do python3 -c \"{child}\" & done; wait");
    let mut four = Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .expect("sh and python3");
    wait_for_rss(&four, 4 * (24 << 20));
    measure("four processes with a memfd and a mapping each", four.id());
    runner::process_tree::kill_descendants(four.id());
    four.kill().ok();
    let _ = four.wait();
}
