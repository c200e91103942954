//! I/O statistics over the management API.
//!
//! * SPDK `bdev_get_iostat` {name?}: per block device, SPDK's result
//!   shape (`tick_rate`, `ticks`, `bdevs`: operations, bytes, latency
//!   ticks total and max per kind; no minimum, which would cost every
//!   I/O). Counted by the data-plane core that
//!   completes each host command, per core, and summed here
//!   (`crate::nvme::iostat` says how and why). Latency runs from the
//!   command's submission to the block layer to its completion, in
//!   `mtime` ticks (`tick_rate` per second). Devices: the boot
//!   configuration's function namespaces (`fn<F>n<N>`) and the block
//!   devices made at run time; a device under a crypto device counts
//!   nothing itself (its I/O is the crypto device's). Deallocates count
//!   as unmaps, without bytes (the ranges are read by the block device
//!   only): `bytes_unmapped` is not reported. The NVMe/TCP target's
//!   namespaces (`sub<S>n<N>`) are not counted here.
//! * Ours, `dpu_get_function_iostat` {function?}: per PCIe function, the
//!   commands and bytes its host read and wrote, as the SMART / Health
//!   log reports them (NVMe Base 2.0 §5.16.1.3: the same counters).

use super::live::{self, Live};
use super::methods::no_device;
use crate::bootcfg;
use crate::nvme::iostat::{self, Kind, Totals};
use dpu_hal::memory_map::{HARTS, MAX_FUNCTIONS, TIMEBASE_HZ};
use dpu_rpc::{code, Params, RpcError, Writer};

/// SPDK `bdev_get_iostat`.
pub fn bdev_get_iostat(p: &Params<'_>, w: &mut Writer<'_>, live: &Live) -> Result<(), RpcError> {
    p.only(&["name"])?;
    let mut nb = [0u8; live::NAME_MAX + 1];
    let name = p.str("name", &mut nb)?;
    // The one asked for, checked before anything is written.
    let only = match name {
        Some(n) => Some(resolve(n, live)?),
        None => None,
    };
    w.begin_object();
    w.field_u64("tick_rate", TIMEBASE_HZ);
    w.field_u64("ticks", dpu_hal::csr::time());
    w.key("bdevs");
    w.begin_array();
    match (name, only) {
        (Some(n), Some(stat)) => device(w, n, stat.map(iostat::sum)),
        _ => {
            for ns in bootcfg::namespaces().filter(|ns| ns.subsystem.is_none()) {
                let mut b = heapless::String::<24>::new();
                let _ = core::fmt::Write::write_fmt(&mut b, format_args!("fn{}n{}", ns.function, ns.nsid));
                device(w, &b, Some(iostat::sum(ns.stat)));
            }
            for m in live.bdevs() {
                device(w, m.name(), live_stat(live, m).map(iostat::sum));
            }
        }
    }
    w.end_array();
    w.end_object();
    Ok(())
}

/// The statistics slot of device `name` (`None`: a device that has
/// counted nothing yet), or the error naming it.
fn resolve(name: &str, live: &Live) -> Result<Option<u16>, RpcError> {
    if let Some(m) = live.bdev(name) {
        return Ok(live_stat(live, m));
    }
    if let Some(ns) = live::parse_fn_name(name).and_then(|(f, n)| bootcfg::namespace(f, n)) {
        return Ok(Some(ns.stat));
    }
    let sub = name.strip_prefix("sub").and_then(|r| r.split_once('n')).and_then(|(s, n)| bootcfg::subsystem_namespace(s.parse().ok()?, n.parse().ok()?));
    if sub.is_some() {
        return Err(RpcError::fmt(code::INVALID_PARAMS, format_args!("invalid params: `name`: `{name}` is a namespace of the NVMe/TCP target, whose I/O is not counted per block device")));
    }
    Err(no_device("bdev", name))
}

/// A run-time device's slot, once it has been mapped (a slot not mapped
/// since the device was made may still hold a deleted device's counts).
fn live_stat(live: &Live, m: &live::Malloc) -> Option<u16> {
    if !m.counted {
        return None;
    }
    live.position(m.name()).map(|i| (bootcfg::MAX_NAMESPACES + i) as u16)
}

/// One entry of `bdevs` (zeros for `None`).
fn device(w: &mut Writer<'_>, name: &str, t: Option<Totals>) {
    let t = t.unwrap_or_default();
    let (r, wr, u) = (t.get(Kind::Read), t.get(Kind::Write), t.get(Kind::Unmap));
    w.begin_object();
    w.field_str("name", name);
    w.field_u64("bytes_read", r.bytes);
    w.field_u64("num_read_ops", r.ops);
    w.field_u64("bytes_written", wr.bytes);
    w.field_u64("num_write_ops", wr.ops);
    w.field_u64("num_unmap_ops", u.ops);
    for (k, o) in [(["read_latency_ticks", "max_read_latency_ticks"], r), (["write_latency_ticks", "max_write_latency_ticks"], wr), (["unmap_latency_ticks", "max_unmap_latency_ticks"], u)] {
        w.field_u64(k[0], o.ticks);
        w.field_u64(k[1], o.max);
    }
    w.end_object();
}

/// Ours, `dpu_get_function_iostat` {function?}: each PCIe function's
/// read and write commands and bytes (every function, or the one asked).
pub fn function_iostat(p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
    use core::sync::atomic::Ordering::Relaxed;
    p.only(&["function"])?;
    let only = p.u64_in("function", 0..=(MAX_FUNCTIONS as u64 - 1))?;
    w.begin_array();
    for f in (0..MAX_FUNCTIONS).filter(|&f| only.is_none_or(|o| o == f as u64)) {
        let (mut rd, mut wr, mut br, mut bw) = (0, 0, 0, 0);
        for h in 0..HARTS {
            let c = &crate::nvme::io::COUNTERS[h][f];
            rd += c.read_cmds.load(Relaxed);
            wr += c.write_cmds.load(Relaxed);
            br += c.bytes_read.load(Relaxed);
            bw += c.bytes_written.load(Relaxed);
        }
        // Every function the host may use is listed only when asked for,
        // else those that served I/O or have namespaces.
        if only.is_none() && rd + wr == 0 && bootcfg::nsids(f as u16).next().is_none() {
            continue;
        }
        w.begin_object();
        w.field_u64("function", f as u64);
        w.field_u64("num_read_ops", rd);
        w.field_u64("bytes_read", br);
        w.field_u64("num_write_ops", wr);
        w.field_u64("bytes_written", bw);
        w.end_object();
    }
    w.end_array();
    Ok(())
}
