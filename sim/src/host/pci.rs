//! Root-complex software: enumeration of the DPU's PF, BAR assignment,
//! MSI-X setup and SR-IOV enabling, the way Linux's PCI core does it
//! (PCI Local Bus 3.0 §6, PCIe Base 4.0 §7, SR-IOV §9.3).

use super::{Host, MSI_ADDR};

/// Configuration-space offsets the host uses (its own copy of the spec).
mod cfg {
    pub const VENDOR: u16 = 0x00;
    pub const DEVICE: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const CLASS: u16 = 0x08;
    pub const BAR0: u16 = 0x10;
    pub const BAR1: u16 = 0x14;
    pub const CAP_PTR: u16 = 0x34;
    pub const CMD_MEMORY: u32 = 1 << 1;
    pub const CMD_MASTER: u32 = 1 << 2;
    pub const CAP_ID_MSIX: u32 = 0x11;
    pub const CAP_ID_PCIE: u32 = 0x10;
    pub const EXT_ID_SRIOV: u32 = 0x0010;
}

/// Where the host puts BARs.
const PF_BAR_BASE: u64 = 0xf000_0000;
const VF_BAR_BASE: u64 = 0x1_0000_0000;

/// A function the host enumerated.
#[derive(Clone, Debug)]
pub struct PciFunction {
    /// 0 = PF, n = VF n.
    pub function: u16,
    pub bar0: u64,
    pub msix_cap: u16,
    pub msix_vectors: u32,
    pub pcie_cap: u16,
}

async fn find_cap(h: &Host, f: u16, id: u32) -> Option<u16> {
    let mut p = h.cfg_read(f, cfg::CAP_PTR, 1).await? as u16;
    for _ in 0..48 {
        if p == 0 {
            return None;
        }
        let hdr = h.cfg_read(f, p, 2).await?;
        if hdr & 0xff == id {
            return Some(p);
        }
        p = (hdr >> 8) as u16 & 0xfc;
    }
    None
}

async fn find_ext_cap(h: &Host, f: u16, id: u32) -> Option<u16> {
    let mut p = 0x100u16;
    for _ in 0..64 {
        let hdr = h.cfg_read(f, p, 4).await?;
        if hdr == 0 || hdr == 0xffff_ffff {
            return None;
        }
        if hdr & 0xffff == id {
            return Some(p);
        }
        p = (hdr >> 20) as u16;
        if p < 0x100 {
            return None;
        }
    }
    None
}

async fn function_caps(h: &Host, f: u16, bar0: u64) -> Result<PciFunction, String> {
    let msix_cap = find_cap(h, f, cfg::CAP_ID_MSIX).await.ok_or(format!("function {f}: no MSI-X capability"))?;
    let pcie_cap = find_cap(h, f, cfg::CAP_ID_PCIE).await.ok_or(format!("function {f}: no PCIe capability"))?;
    let ctrl = h.cfg_read(f, msix_cap + 2, 2).await.ok_or("MSI-X control unreadable")?;
    Ok(PciFunction { function: f, bar0, msix_cap, msix_vectors: (ctrl & 0x7ff) + 1, pcie_cap })
}

/// Enumerates the PF: checks IDs and class, sizes and assigns BAR0,
/// enables memory decoding and bus mastering. Waits (CRS) until the DPU
/// firmware has brought the function up.
pub async fn probe_pf(h: &Host) -> Result<PciFunction, String> {
    let vendor = h.cfg_read(0, cfg::VENDOR, 2).await.ok_or("no device answers at the DPU's slot")?;
    let device = h.cfg_read(0, cfg::DEVICE, 2).await.unwrap_or(0);
    let class = h.cfg_read(0, cfg::CLASS, 4).await.unwrap_or(0) >> 8;
    if class != 0x01_08_02 {
        return Err(format!("PF {vendor:04x}:{device:04x} has class {class:06x}, not NVMe (010802)"));
    }
    h.cfg_write(0, cfg::BAR0, 4, 0xffff_ffff).await;
    let probe = h.cfg_read(0, cfg::BAR0, 4).await.unwrap_or(0);
    if probe & 0x6 != 0x4 {
        return Err(format!("PF BAR0 is not a 64-bit memory BAR ({probe:#x})"));
    }
    let size = u64::from(!(probe & !0xf)) + 1;
    h.cfg_write(0, cfg::BAR0, 4, PF_BAR_BASE as u32).await;
    h.cfg_write(0, cfg::BAR1, 4, (PF_BAR_BASE >> 32) as u32).await;
    let cmd = h.cfg_read(0, cfg::COMMAND, 2).await.unwrap_or(0);
    h.cfg_write(0, cfg::COMMAND, 2, cmd | cfg::CMD_MEMORY | cfg::CMD_MASTER).await;
    h.log(format!("pci: PF {vendor:04x}:{device:04x} NVMe, BAR0 {PF_BAR_BASE:#x} ({} KiB)", size / 1024));
    function_caps(h, 0, PF_BAR_BASE).await
}

/// Enables `n` VFs through the PF's SR-IOV capability and enumerates them.
pub async fn enable_vfs(h: &Host, n: u16, settle_ms: u64) -> Result<Vec<PciFunction>, String> {
    let sriov = find_ext_cap(h, 0, cfg::EXT_ID_SRIOV).await.ok_or("PF has no SR-IOV capability")?;
    let total = h.cfg_read(0, sriov + 0x0e, 2).await.unwrap_or(0) as u16;
    if n > total {
        return Err(format!("{n} VFs requested, the PF supports {total}"));
    }
    h.cfg_write(0, sriov + 0x10, 2, u32::from(n)).await;
    let offset = h.cfg_read(0, sriov + 0x14, 2).await.unwrap_or(0) as u16;
    let stride = h.cfg_read(0, sriov + 0x16, 2).await.unwrap_or(0) as u16;
    h.cfg_write(0, sriov + 0x24, 4, 0xffff_ffff).await;
    let probe = h.cfg_read(0, sriov + 0x24, 4).await.unwrap_or(0);
    let size = u64::from(!(probe & !0xf)) + 1;
    h.cfg_write(0, sriov + 0x24, 4, VF_BAR_BASE as u32).await;
    h.cfg_write(0, sriov + 0x28, 4, (VF_BAR_BASE >> 32) as u32).await;
    // VF Enable + VF Memory Space Enable + ARI Capable Hierarchy.
    h.cfg_write(0, sriov + 0x08, 2, 0x1 | 0x8 | 0x10).await;
    // SR-IOV §9.3.3.3.1: wait before touching the VFs.
    h.sleep(h.cycles(settle_ms * 1_000_000)).await;
    let mut vfs = Vec::new();
    for i in 0..n {
        // Routing ID = PF + First VF Offset + i * VF Stride; our function
        // index is simply i + 1.
        let _rid = offset + i * stride;
        let f = i + 1;
        let cmd = h.cfg_read(f, cfg::COMMAND, 2).await.ok_or(format!("VF {f} does not answer"))?;
        h.cfg_write(f, cfg::COMMAND, 2, cmd | cfg::CMD_MASTER).await;
        vfs.push(function_caps(h, f, VF_BAR_BASE + u64::from(i) * size).await?);
    }
    h.log(format!("pci: enabled {n} VFs (VF BAR0 {VF_BAR_BASE:#x}, {} KiB each)", size / 1024));
    Ok(vfs)
}

/// Disables all VFs.
pub async fn disable_vfs(h: &Host) -> Result<(), String> {
    let sriov = find_ext_cap(h, 0, cfg::EXT_ID_SRIOV).await.ok_or("PF has no SR-IOV capability")?;
    h.cfg_write(0, sriov + 0x08, 2, 0).await;
    h.log("pci: VFs disabled");
    Ok(())
}

/// Allocates `count` MSI-X vectors of a function: programs each table entry
/// with the host's MSI address and a fresh data value, unmasks it and
/// enables MSI-X. Returns the data values (one per vector).
pub async fn enable_msix(h: &Host, f: &PciFunction, count: u32) -> Result<Vec<u32>, String> {
    let count = count.min(f.msix_vectors);
    let ctrl = h.cfg_read(f.function, f.msix_cap + 2, 2).await.ok_or("MSI-X control unreadable")?;
    // Enable with the function masked while the table is programmed.
    h.cfg_write(f.function, f.msix_cap + 2, 2, ctrl | 0xc000).await;
    let table = h.cfg_read(f.function, f.msix_cap + 4, 4).await.ok_or("MSI-X table unreadable")?;
    if table & 7 != 0 {
        return Err(format!("MSI-X table in BAR{} is not supported by this host model", table & 7));
    }
    let base = f.bar0 + u64::from(table & !7);
    let mut datas = Vec::new();
    for v in 0..count {
        let data = h.alloc_msi();
        let e = base + 16 * u64::from(v);
        h.mmio_write(e, 4, MSI_ADDR & 0xffff_ffff);
        h.mmio_write(e + 4, 4, MSI_ADDR >> 32);
        h.mmio_write(e + 8, 4, u64::from(data));
        h.mmio_write(e + 12, 4, 0); // unmask
        datas.push(data);
    }
    h.cfg_write(f.function, f.msix_cap + 2, 2, (ctrl | 0x8000) & !0x4000).await;
    Ok(datas)
}
