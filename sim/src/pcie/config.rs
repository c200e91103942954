//! PCI configuration space of one function (4 KiB, PCIe extended), with
//! the structures the host driver walks: Type 0 header (PCI Local Bus 3.0
//! §6.1), PCI Express capability (PCIe Base 4.0 §7.5.3), MSI-X capability
//! (§7.7.2) and, on the PF, the SR-IOV extended capability (§9.3.3).
//!
//! Writes go through a per-byte writable mask; BAR sizing (write all-ones,
//! read back the size mask) follows from the masks.

/// Offsets of the capabilities we place.
pub const CAP_PCIE: usize = 0x40;
pub const CAP_MSIX: usize = 0x70;
pub const EXT_SRIOV: usize = 0x100;

/// Type 0 header registers.
pub const VENDOR_ID: usize = 0x00;
pub const DEVICE_ID: usize = 0x02;
pub const COMMAND: usize = 0x04;
pub const STATUS: usize = 0x06;
pub const CLASS_REV: usize = 0x08;
pub const HEADER_TYPE: usize = 0x0e;
pub const BAR0: usize = 0x10;
pub const BAR1: usize = 0x14;
pub const SUBSYS_VENDOR: usize = 0x2c;
pub const SUBSYS_ID: usize = 0x2e;
pub const CAP_PTR: usize = 0x34;
pub const INT_LINE: usize = 0x3c;

pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// PCIe capability registers (offsets from CAP_PCIE).
pub const PCIE_DEVCAP: usize = 0x04;
pub const PCIE_DEVCTL: usize = 0x08;
pub const PCIE_LINKCAP: usize = 0x0c;
pub const PCIE_LINKSTA: usize = 0x12;
pub const DEVCAP_FLR: u32 = 1 << 28;
pub const DEVCTL_FLR: u16 = 1 << 15;

/// MSI-X capability registers (offsets from CAP_MSIX).
pub const MSIX_CTRL: usize = 0x02;
pub const MSIX_TABLE: usize = 0x04;
pub const MSIX_PBA: usize = 0x08;
pub const MSIX_ENABLE: u16 = 1 << 15;
pub const MSIX_FUNCTION_MASK: u16 = 1 << 14;

/// SR-IOV capability registers (offsets from EXT_SRIOV).
pub const SRIOV_CTRL: usize = 0x08;
pub const SRIOV_INITIAL_VFS: usize = 0x0c;
pub const SRIOV_TOTAL_VFS: usize = 0x0e;
pub const SRIOV_NUM_VFS: usize = 0x10;
pub const SRIOV_VF_OFFSET: usize = 0x14;
pub const SRIOV_VF_STRIDE: usize = 0x16;
pub const SRIOV_VF_DEVICE: usize = 0x1a;
pub const SRIOV_PAGE_SIZES: usize = 0x1c;
pub const SRIOV_SYS_PAGE_SIZE: usize = 0x20;
pub const SRIOV_VF_BAR0: usize = 0x24;
pub const SRIOV_VF_BAR1: usize = 0x28;
pub const SRIOV_VF_ENABLE: u16 = 1 << 0;
pub const SRIOV_VF_MSE: u16 = 1 << 3;
pub const SRIOV_ARI: u16 = 1 << 4;

/// What a function's configuration space describes.
#[derive(Clone, Debug)]
pub struct Identity {
    pub vendor: u16,
    pub device: u16,
    pub vf_device: u16,
    pub bar_size: u64,
    pub msix_vectors: u32,
    pub msix_table: u32,
    pub msix_pba: u32,
    /// (gen, lanes) of the link.
    pub link: (u32, u32),
    /// Max payload supported, bytes.
    pub max_payload: u32,
    /// SR-IOV TotalVFs (PF only; 0 = no SR-IOV capability).
    pub total_vfs: u16,
}

/// One function's configuration space.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; 4096],
    writable: [u8; 4096],
    pub is_vf: bool,
}

fn payload_code(bytes: u32) -> u32 {
    (bytes / 128).trailing_zeros()
}

impl ConfigSpace {
    /// The PF's (is_vf = false) or a VF's configuration space.
    pub fn new(id: &Identity, is_vf: bool) -> ConfigSpace {
        let mut c = ConfigSpace { bytes: [0; 4096], writable: [0; 4096], is_vf };
        if is_vf {
            // VFs report 0xFFFF IDs; the host uses the PF's SR-IOV VF Device ID (§9.3.4.1).
            c.put16(VENDOR_ID, 0xffff);
            c.put16(DEVICE_ID, 0xffff);
            c.rw16(COMMAND, CMD_BUS_MASTER);
        } else {
            c.put16(VENDOR_ID, id.vendor);
            c.put16(DEVICE_ID, id.device);
            c.rw16(COMMAND, CMD_MEMORY | CMD_BUS_MASTER | CMD_INTX_DISABLE);
            // 64-bit non-prefetchable memory BAR0/1 of bar_size bytes.
            c.put32(BAR0, 0x4);
            c.rw32(BAR0, !(id.bar_size as u32 - 1) & !0xf);
            c.rw32(BAR1, 0xffff_ffff);
        }
        c.put16(STATUS, STATUS_CAP_LIST);
        // Class 01h (mass storage), subclass 08h (NVM), prog-if 02h (NVMe), revision 1.
        c.put32(CLASS_REV, 0x0108_0201);
        c.put8(HEADER_TYPE, 0);
        c.put16(SUBSYS_VENDOR, id.vendor);
        c.put16(SUBSYS_ID, if is_vf { id.vf_device } else { id.device });
        c.put8(CAP_PTR, CAP_PCIE as u8);
        c.put8(INT_LINE, 0xff);
        c.rw8(INT_LINE, 0xff);

        // PCI Express capability v2, endpoint.
        c.put8(CAP_PCIE, 0x10);
        c.put8(CAP_PCIE + 1, CAP_MSIX as u8);
        c.put16(CAP_PCIE + 2, 0x0002);
        c.put32(CAP_PCIE + PCIE_DEVCAP, payload_code(id.max_payload) | DEVCAP_FLR);
        // Device control: MPS (7:5), MRRS (14:12) writable; FLR bit handled on write.
        c.put16(CAP_PCIE + PCIE_DEVCTL, 0x2000 | (payload_code(id.max_payload) as u16) << 5);
        c.rw16(CAP_PCIE + PCIE_DEVCTL, 0x70e0);
        c.put32(CAP_PCIE + PCIE_LINKCAP, id.link.0 | (id.link.1 << 4));
        c.put16(CAP_PCIE + PCIE_LINKSTA, (id.link.0 | (id.link.1 << 4)) as u16);

        // MSI-X capability: table and PBA in BAR0 (BIR 0).
        c.put8(CAP_MSIX, 0x11);
        c.put8(CAP_MSIX + 1, 0);
        c.put16(CAP_MSIX + MSIX_CTRL, (id.msix_vectors - 1) as u16);
        c.rw16(CAP_MSIX + MSIX_CTRL, MSIX_ENABLE | MSIX_FUNCTION_MASK);
        c.put32(CAP_MSIX + MSIX_TABLE, id.msix_table);
        c.put32(CAP_MSIX + MSIX_PBA, id.msix_pba);

        if !is_vf && id.total_vfs > 0 {
            let s = EXT_SRIOV;
            // Extended capability header: ID 0010h, version 1, no next.
            c.put32(s, 0x0001_0010);
            c.put16(s + SRIOV_CTRL, 0);
            c.rw16(s + SRIOV_CTRL, SRIOV_VF_ENABLE | SRIOV_VF_MSE | SRIOV_ARI);
            c.put16(s + SRIOV_INITIAL_VFS, id.total_vfs);
            c.put16(s + SRIOV_TOTAL_VFS, id.total_vfs);
            c.rw16(s + SRIOV_NUM_VFS, 0xffff);
            c.put16(s + SRIOV_VF_OFFSET, 1);
            c.put16(s + SRIOV_VF_STRIDE, 1);
            c.put16(s + SRIOV_VF_DEVICE, id.vf_device);
            c.put32(s + SRIOV_PAGE_SIZES, 0x1); // 4 KiB
            c.put32(s + SRIOV_SYS_PAGE_SIZE, 0x1);
            c.rw32(s + SRIOV_SYS_PAGE_SIZE, 0xffff_ffff);
            c.put32(s + SRIOV_VF_BAR0, 0x4);
            c.rw32(s + SRIOV_VF_BAR0, !(id.bar_size as u32 - 1) & !0xf);
            c.rw32(s + SRIOV_VF_BAR1, 0xffff_ffff);
        }
        c
    }

    fn put8(&mut self, off: usize, v: u8) {
        self.bytes[off] = v;
    }
    fn put16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn rw8(&mut self, off: usize, mask: u8) {
        self.writable[off] = mask;
    }
    fn rw16(&mut self, off: usize, mask: u16) {
        self.writable[off..off + 2].copy_from_slice(&mask.to_le_bytes());
    }
    fn rw32(&mut self, off: usize, mask: u32) {
        self.writable[off..off + 4].copy_from_slice(&mask.to_le_bytes());
    }

    pub fn read8(&self, off: usize) -> u8 {
        self.bytes[off]
    }
    pub fn read16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }
    pub fn read32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.bytes[off..off + 4].try_into().unwrap())
    }

    /// Reads `size` (1, 2, 4) bytes at `off`; `None` if out of range or misaligned.
    pub fn read(&self, off: usize, size: usize) -> Option<u32> {
        if !matches!(size, 1 | 2 | 4) || off % size != 0 || off + size > 4096 {
            return None;
        }
        let mut v = 0u32;
        for i in 0..size {
            v |= u32::from(self.bytes[off + i]) << (8 * i);
        }
        Some(v)
    }

    /// Applies a host write through the writable masks. Returns the
    /// previous 32-bit value of the dword written (for side effects).
    pub fn write(&mut self, off: usize, size: usize, v: u32) -> Option<u32> {
        if !matches!(size, 1 | 2 | 4) || off % size != 0 || off + size > 4096 {
            return None;
        }
        let dword = off & !3;
        let old = self.read32(dword);
        for i in 0..size {
            let b = (v >> (8 * i)) as u8;
            let m = self.writable[off + i];
            self.bytes[off + i] = (self.bytes[off + i] & !m) | (b & m);
        }
        Some(old)
    }

    /// Sets bits that hardware controls (not through the host's masks).
    pub fn set16(&mut self, off: usize, v: u16) {
        self.put16(off, v);
    }

    pub fn command(&self) -> u16 {
        self.read16(COMMAND)
    }

    pub fn msix_control(&self) -> u16 {
        self.read16(CAP_MSIX + MSIX_CTRL)
    }

    /// 64-bit BAR address from two dwords at `lo` (type bits masked).
    pub fn bar64(&self, lo: usize) -> u64 {
        u64::from(self.read32(lo) & !0xf) | u64::from(self.read32(lo + 4)) << 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            vendor: 0x1dad,
            device: 0x0a01,
            vf_device: 0x0a02,
            bar_size: 0x4000,
            msix_vectors: 65,
            msix_table: 0x2000,
            msix_pba: 0x3000,
            link: (4, 16),
            max_payload: 256,
            total_vfs: 64,
        }
    }

    #[test]
    fn bar_sizing_reads_back_the_size() {
        let mut c = ConfigSpace::new(&id(), false);
        c.write(BAR0, 4, 0xffff_ffff).unwrap();
        assert_eq!(c.read32(BAR0), 0xffff_c004, "16 KiB, 64-bit memory BAR");
        c.write(BAR0, 4, 0xfe00_0000).unwrap();
        c.write(BAR1, 4, 0x1).unwrap();
        assert_eq!(c.bar64(BAR0), 0x1_fe00_0000);
    }

    #[test]
    fn read_only_fields_ignore_writes() {
        let mut c = ConfigSpace::new(&id(), false);
        c.write(VENDOR_ID, 2, 0x1234).unwrap();
        assert_eq!(c.read16(VENDOR_ID), 0x1dad);
        c.write(EXT_SRIOV + SRIOV_TOTAL_VFS, 2, 3).unwrap();
        assert_eq!(c.read16(EXT_SRIOV + SRIOV_TOTAL_VFS), 64);
        assert_eq!(c.read32(CLASS_REV) >> 8, 0x01_08_02, "NVMe class code");
        // Capability chain: header -> PCIe (0x10) -> MSI-X (0x11) -> end.
        let p = c.read8(CAP_PTR) as usize;
        assert_eq!(c.read8(p), 0x10);
        let m = c.read8(p + 1) as usize;
        assert_eq!(c.read8(m), 0x11);
        assert_eq!(c.read16(m + MSIX_CTRL) & 0x7ff, 64, "table size is N-1");
    }

    #[test]
    fn vf_has_no_bars_and_ffff_ids() {
        let mut c = ConfigSpace::new(&id(), true);
        assert_eq!(c.read16(VENDOR_ID), 0xffff);
        c.write(BAR0, 4, 0xffff_ffff).unwrap();
        assert_eq!(c.read32(BAR0), 0);
        assert_eq!(c.read32(EXT_SRIOV), 0, "no SR-IOV capability on a VF");
        assert!(c.read(3, 2).is_none(), "misaligned access");
    }
}
