//! A case's timeline run: the counting allocator meters the heap and leaves RSS and timing alone.

#[global_allocator]
static ALLOC: harness::alloc::CountingAlloc = harness::alloc::CountingAlloc;

fn main() -> std::process::ExitCode {
    scenarios::case_main(harness::probe::HeapMeter::Counting)
}
