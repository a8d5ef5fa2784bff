//! A case's profile run: dhat meters the heap exactly and writes a profile DHAT's viewer opens. Slow, and it
//! changes RSS (no zeroed-allocation path), so its RSS and time are never reported as the case's.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> std::process::ExitCode {
    let file =
        std::env::var_os(scenarios::DHAT_FILE_ENV).unwrap_or_else(|| "dhat-heap.json".into());
    // The profile is written when the profiler is dropped, at the end of this function; never on process::exit.
    let profiler = dhat::Profiler::builder().file_name(file).build();
    let code = scenarios::case_main(meter::probe::HeapMeter::Dhat);
    drop(profiler);
    code
}
