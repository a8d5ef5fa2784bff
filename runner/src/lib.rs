//! The runner: the parent's side of the process boundary. It starts a program through the small `memproof-launch`
//! process (so `wait4`'s `ru_maxrss` is the program's own, and the program cannot escape the tree it watches),
//! polls the process tree's memory from `/proc` ([`process_tree`], `meter::procfs`), enforces the memory limit and
//! the timeout, captures output within bounds ([`output_capture`]), stops on an interrupt ([`interrupt`]), and hands
//! back what it [`Measured`]. The watch loop itself is [`watch`], whose API is re-exported here: `runner::run`.

pub mod driver;
pub mod exit_records;
pub mod interrupt;
pub mod missing_tool;
pub mod orphans;
pub mod output_capture;
pub mod process_tree;
pub mod shared_memory;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod watch;

pub use watch::*;
