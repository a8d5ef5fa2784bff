//! A case's timeline run: the counting allocator meters the heap and leaves RSS and timing alone.

#[global_allocator]
static ALLOC: meter::alloc::CountingAlloc = meter::alloc::CountingAlloc;

fn main() -> std::process::ExitCode {
    scenarios::case_main(meter::probe::HeapMeter::Counting)
}
