//! Compile-time initial values for per-core state (see `alloc::smem_static`).

/// Types with a compile-time initial value (for per-core statics).
pub trait ConstInit {
    const INIT: Self;
}

