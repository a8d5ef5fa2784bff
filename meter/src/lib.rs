//! The meter: the part of memproof linked into every case binary, on the child's side of the process boundary.
//!
//! A *case* runs in a fresh child process: memory a finished case freed stays in the allocator's hands, so cases
//! never share a process. In the child, [`alloc`] counts the heap, [`probe`] streams heap samples, phase marks,
//! metrics and final figures to the parent over a pipe in the [`wire`] protocol, and [`procfs`] reads what the kernel
//! says of a process's memory (the child's own high-water mark, and the parent's polls of the tree). Nothing here
//! starts, watches or judges a process: that is the runner's (`memproof-runner`) and the judge's.

pub mod alloc;
pub mod probe;
pub mod procfs;
pub mod wire;
