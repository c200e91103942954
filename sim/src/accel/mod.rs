//! Accelerator device models: crypto engines ([`crypto`]), the
//! erasure-coding engine ([`ec`]), the TRNG ([`trng`]) and the queue
//! registers they share ([`queue`]). Each engine runs its own
//! descriptors (memory and host accesses, timing, completions) through a
//! [`crate::devctx::DevCtx`]: [`crypto_exec`], [`ec_exec`].

pub mod crypto;
pub mod crypto_exec;
pub mod ec;
pub mod ec_exec;
pub mod gf;
pub mod queue;
pub mod trng;
