//! The SR-IOV VF count over the management API (ours: SPDK has none;
//! on other DPUs the operator sets it with e.g. `mlxconfig NUM_OF_VFS`).
//!
//! The board's endpoint can offer up to its maximum of VFs (the board
//! file's `pcie.total_vfs`); the operator sets how many the PF's SR-IOV
//! capability offers the host: its TotalVFs and InitialVFs (PCIe Base
//! 4.0 §9.3.3.10, §9.3.3.11), which the host reads and cannot change. The
//! host then enables up to that many (NumVFs, VF Enable; Linux:
//! `echo N > /sys/bus/pci/devices/<PF>/sriov_numvfs`, refused above
//! TotalVFs).
//!
//! * `dpu_sriov_get`: `max_vfs` (the endpoint's maximum), `total_vfs`
//!   (offered now), `num_vfs` (enabled by the host) and `vf_enable`.
//! * `dpu_sriov_set_total_vfs` {total_vfs}: applied at once. Refused,
//!   naming `total_vfs`, above the maximum or below a VF that has
//!   namespaces (boot configuration or mapped at run time: detach them
//!   first); refused (-16) while the host has VF Enable set, with the
//!   command that clears it: the capability must not change under enabled
//!   VFs (the operator disables SR-IOV on the host, sets the count, and
//!   the host enables it again). On a card booted from flash the value
//!   is saved in the configuration (`super::persist`) and applied at the
//!   next boot before the host sees the PF (`crate::boot::config_blob`).

use super::live::Live;
use crate::bootcfg;
use dpu_hal::pcie;
use dpu_rpc::{code, Params, RpcError, Writer};

/// The endpoint's maximum of VFs (the functions beyond the PF).
fn max_vfs() -> u16 {
    pcie::functions().saturating_sub(1)
}

/// `dpu_sriov_get`.
pub fn get(p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
    p.only(&[])?;
    let (offered, enabled) = pcie::offered_vfs();
    w.begin_object();
    w.field_u64("max_vfs", u64::from(max_vfs()));
    w.field_u64("total_vfs", u64::from(offered));
    w.field_u64("num_vfs", u64::from(pcie::num_vfs()));
    w.field_bool("vf_enable", enabled);
    w.end_object();
    Ok(())
}

/// The highest VF that has a namespace (boot configuration or mapped at
/// run time), and what the namespace is.
fn highest_used_vf(live: &Live) -> Option<(u16, u32)> {
    let boot = bootcfg::namespaces().filter(|ns| ns.subsystem.is_none() && ns.function > 0).map(|ns| (ns.function, ns.nsid));
    let run_time = live.bdevs().filter_map(|b| b.map.target()).filter(|&(f, _)| f > 0);
    boot.chain(run_time).max_by_key(|&(f, _)| f)
}

/// `dpu_sriov_set_total_vfs` {total_vfs}.
pub fn set_total_vfs(p: &Params<'_>, w: &mut Writer<'_>, live: &Live) -> Result<(), RpcError> {
    p.only(&["total_vfs"])?;
    let max = max_vfs();
    let n = Params::required("total_vfs", p.u64_in("total_vfs", 0..=u64::from(max))?)? as u16;
    if let Some((f, nsid)) = highest_used_vf(live).filter(|&(f, _)| f > n) {
        return Err(RpcError::invalid_params(format_args!("invalid params: `total_vfs` {n} would leave out VF {f}, which has namespace {nsid}; detach its namespaces first")));
    }
    let (offered, enabled) = pcie::offered_vfs();
    if enabled {
        // (An error message holds at most 120 bytes.)
        return Err(RpcError::fmt(code::BUSY, format_args!("busy: SR-IOV is enabled ({} VFs); first on the host: echo 0 > /sys/bus/pci/devices/<PF>/sriov_numvfs", pcie::num_vfs())));
    }
    pcie::offer_vfs(n);
    let (now, _) = pcie::offered_vfs();
    if now != n {
        // The host set VF Enable between the check and the write.
        return Err(RpcError::fmt(code::BUSY, format_args!("busy: the host enabled SR-IOV meanwhile; `total_vfs` stays {now}")));
    }
    defmt::info!("mgmt: SR-IOV TotalVFs {=u16} -> {=u16} (of {=u16})", offered, n, max);
    w.bool(true);
    Ok(())
}
