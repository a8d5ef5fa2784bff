//! Planning: which cases a run has and how they run. [`suite`] turns specs into cases and runs each in its own
//! process through the runner; [`fixtures`] builds their inputs; [`parallel`], [`shard`] and [`repeat`] decide how
//! many run at once, which of them this machine runs, and how often; [`command_case`] and [`external`] run a user's
//! own programs and read the heap they report; [`calibration`] is the case whose answer is known in advance; [`host`]
//! records the machine a run was on.

pub mod command_case;
pub mod external;
pub mod fixtures;
pub mod host;
pub mod parallel;
pub mod repeat;
pub mod shard;
pub mod suite;
