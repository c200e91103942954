//! Accelerator device models: crypto engines ([`crypto`]), the
//! erasure-coding engine ([`ec`]), the TRNG ([`trng`]) and the queue
//! registers they share ([`queue`]). The bus side (memory and host
//! accesses, timing, completions) is in `crate::bus_accel`.

pub mod crypto;
pub mod ec;
pub mod gf;
pub mod queue;
pub mod trng;
