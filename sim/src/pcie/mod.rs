//! PCIe: the endpoint (PF + SR-IOV VFs, configuration space, BAR0, MSI-X)
//! and the link timing model.

pub mod config;
pub mod endpoint;
pub mod hostmem;
pub mod link;

pub use endpoint::{CfgError, Effect, Endpoint};
pub use hostmem::HostMemory;
pub use link::{Dir, Link};
