//! PCIe: the endpoint (PF + SR-IOV VFs, configuration space, BAR0, MSI-X),
//! host accesses arriving at it ([`host_access`]) and the link timing model.

pub mod config;
pub mod endpoint;
pub mod host_access;
pub mod hostmem;
pub mod link;

pub use endpoint::{CfgError, Effect, Endpoint};
pub use host_access::{HostOp, HostReply};
pub use hostmem::HostMemory;
pub use link::{Dir, Link};
