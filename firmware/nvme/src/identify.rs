//! Identify data structures (NVMe Base 2.0 §5.17.2, figures 273-276; NVM
//! Command Set 1.0 §4.1.5.1, figure 97).

use crate::sqe::Sqe;
use crate::status::Status;
use crate::{MAX_NSID, MAX_QUEUE_ENTRIES, MDTS};

/// What the host asked Identify for (CNS, CDW10 bits 7:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// CNS 00h.
    Namespace(u32),
    /// CNS 01h.
    Controller,
    /// CNS 02h: active NSIDs greater than this one.
    ActiveList(u32),
    /// CNS 03h.
    Descriptors(u32),
}

/// Decodes an Identify command. Unsupported CNS values are Invalid Field.
pub fn decode(sqe: &Sqe) -> Result<Request, Status> {
    let nsid = sqe.nsid();
    match sqe.cdw10() & 0xff {
        0x00 => {
            if nsid == 0 || nsid > MAX_NSID {
                return Err(Status::INVALID_NAMESPACE);
            }
            Ok(Request::Namespace(nsid))
        }
        0x01 => Ok(Request::Controller),
        0x02 => {
            if nsid >= 0xffff_fffe {
                return Err(Status::INVALID_NAMESPACE);
            }
            Ok(Request::ActiveList(nsid))
        }
        0x03 => {
            if nsid == 0 || nsid > MAX_NSID {
                return Err(Status::INVALID_NAMESPACE);
            }
            Ok(Request::Descriptors(nsid))
        }
        _ => Err(Status::INVALID_FIELD),
    }
}

/// Identity of an emulated controller.
pub struct ControllerIdentity<'a> {
    pub vid: u16,
    pub ssvid: u16,
    pub serial: &'a str,
    pub model: &'a str,
    pub firmware: &'a str,
    pub cntlid: u16,
    pub subnqn: &'a str,
    /// Abort Command Limit (0's based) and AER limit (0's based).
    pub acl: u8,
    pub aerl: u8,
    /// Error log entries (0's based).
    pub elpe: u8,
    /// Firmware Image Download / Commit offered (the PF of a card booted
    /// from flash): OACS bit 2, FRMW with two writable slots, FWUG.
    pub firmware_update: bool,
    /// Maximum Time for Firmware Activation (MTFA, 100 ms units) when
    /// commit action 011b activates without reset, reported with OAES
    /// bit 9 by every controller it pauses (FRMW bit 4 only with
    /// `firmware_update`); 0: it does not (OAES bit 9 clear).
    pub mtfa: u16,
}

fn put_str(out: &mut [u8], s: &str) {
    // ASCII, left justified, padded with spaces (§1.5 "ASCII string").
    for (i, b) in out.iter_mut().enumerate() {
        *b = s.as_bytes().get(i).copied().unwrap_or(b' ');
    }
}

/// Identify Controller (CNS 01h).
pub fn controller(out: &mut [u8; 4096], id: &ControllerIdentity) {
    out.fill(0);
    out[0..2].copy_from_slice(&id.vid.to_le_bytes());
    out[2..4].copy_from_slice(&id.ssvid.to_le_bytes());
    put_str(&mut out[4..24], id.serial);
    put_str(&mut out[24..64], id.model);
    put_str(&mut out[64..72], id.firmware);
    out[72] = 0; // RAB
    out[77] = MDTS;
    out[78..80].copy_from_slice(&id.cntlid.to_le_bytes());
    out[80..84].copy_from_slice(&crate::regs::VERSION.to_le_bytes());
    out[111] = 1; // CNTRLTYPE: I/O controller
    // OACS bit 2: Firmware Commit and Firmware Image Download (§5.12, §5.13).
    let oacs: u16 = if id.firmware_update { 1 << 2 } else { 0 };
    out[256..258].copy_from_slice(&oacs.to_le_bytes());
    out[258] = id.acl;
    out[259] = id.aerl;
    // OAES bit 8: Namespace Attribute Notices (and the Changed Namespace
    // List log page) are supported (§5.17.2.1 OAES, §5.2.1).
    // OAES bit 9: Firmware Activation Notices, on every controller an
    // activation without reset pauses (MTFA given: a VF too, though only
    // the PF commits firmware).
    let now = id.firmware_update && id.mtfa > 0;
    let oaes = 1u32 << 8 | u32::from(id.mtfa > 0) << 9;
    out[92..96].copy_from_slice(&oaes.to_le_bytes());
    // FRMW: bits 3:1 slots, bit 0 slot 1 read-only, bit 4 activation
    // without reset (commit action 011b); MTFA (bytes 271:270) bounds it.
    out[260] = if id.firmware_update { crate::firmware::FRMW | u8::from(now) << 4 } else { 0x03 };
    if id.mtfa > 0 {
        out[270..272].copy_from_slice(&id.mtfa.to_le_bytes());
    }
    out[261] = 0x04; // LPA: extended data for Get Log Page
    out[262] = id.elpe;
    out[263] = 0; // NPSS: one power state
    // FWUG (byte 319): download granularity in 4 KiB units (0: not reported).
    out[319] = if id.firmware_update { crate::firmware::FWUG } else { 0 };
    out[266..268].copy_from_slice(&0x0157u16.to_le_bytes()); // WCTEMP 343 K
    out[268..270].copy_from_slice(&0x0173u16.to_le_bytes()); // CCTEMP 371 K
    out[512] = 0x66; // SQES: 64 bytes min/max
    out[513] = 0x44; // CQES: 16 bytes min/max
    out[514..516].copy_from_slice(&(MAX_QUEUE_ENTRIES as u16).to_le_bytes()); // MAXCMD
    out[516..520].copy_from_slice(&MAX_NSID.to_le_bytes()); // NN
    out[520..522].copy_from_slice(&0x000du16.to_le_bytes()); // ONCS: Compare, DSM, Write Zeroes
    out[522..524].copy_from_slice(&0u16.to_le_bytes()); // FUSES: none
    out[524] = 0; // FNA
    out[525] = 0x01; // VWC present
    out[536..540].copy_from_slice(&0x1u32.to_le_bytes()); // SGLS: supported, no alignment
    let n = id.subnqn.len().min(256);
    out[768..768 + n].copy_from_slice(&id.subnqn.as_bytes()[..n]);
    // Power state 0 descriptor: max power 25.00 W (MP in 0.01 W units).
    out[2048..2050].copy_from_slice(&2500u16.to_le_bytes());
}

/// The NVMe over Fabrics part of Identify Controller (NVMe Base 2.0
/// figure 275, bytes 1792-2047) and the fields a fabrics I/O controller
/// reports differently from a PCIe one: IOCCSZ / IORCSZ (command and
/// response capsule sizes, 16-byte units), ICDOFF 0, FCATT 0 (dynamic
/// controller model), MSDBD 1; SGLS with SGL Offset (bit 20, in-capsule
/// data at an offset); KAS (Keep Alive granularity, 100 ms units).
pub fn fabrics(out: &mut [u8; 4096], ioccsz_bytes: u32, iorcsz_bytes: u32) {
    out[1792..1796].copy_from_slice(&(ioccsz_bytes / 16).to_le_bytes());
    out[1796..1800].copy_from_slice(&(iorcsz_bytes / 16).to_le_bytes());
    out[1800..1802].copy_from_slice(&0u16.to_le_bytes()); // ICDOFF
    out[1802] = 0; // FCATT: dynamic controller model
    out[1803] = 1; // MSDBD
    // CMIC bit 1: the NVM subsystem may contain two or more controllers
    // (one per connected host, dynamic model). Linux refuses a second
    // controller of one subsystem without it.
    out[76] |= 1 << 1;
    out[536..540].copy_from_slice(&(1u32 | 1 << 20).to_le_bytes()); // SGLS
    out[320..322].copy_from_slice(&1u16.to_le_bytes()); // KAS: 100 ms
}

/// A namespace as Identify reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub nsid: u32,
    pub blocks: u64,
    /// log2 of the LBA size (9 = 512 B, 12 = 4 KiB).
    pub lba_shift: u8,
    pub nguid: [u8; 16],
    pub eui64: [u8; 8],
    /// Deallocated blocks read as zeroes (DLFEAT 001b). False where that is
    /// not guaranteed (remote namespaces: the target decides).
    pub deallocated_zeroes: bool,
    /// May be attached to two or more controllers at once (NMIC bit 0):
    /// every namespace of a fabrics subsystem, whose hosts each get a
    /// dynamic controller; a PCIe function's namespaces are its own.
    pub shared: bool,
}

/// Identify Namespace (CNS 00h) of an active namespace.
pub fn namespace(out: &mut [u8; 4096], ns: &NamespaceInfo) {
    out.fill(0);
    out[0..8].copy_from_slice(&ns.blocks.to_le_bytes()); // NSZE
    out[8..16].copy_from_slice(&ns.blocks.to_le_bytes()); // NCAP
    out[16..24].copy_from_slice(&ns.blocks.to_le_bytes()); // NUSE
    out[24] = 0; // NSFEAT
    out[25] = 0; // NLBAF: one format
    out[26] = 0; // FLBAS: format 0
    out[30] = u8::from(ns.shared); // NMIC bit 0: multi-path I/O and sharing
    // DLFEAT bits 2:0: 001b = deallocated blocks read as zeroes, 000b = not reported.
    out[33] = u8::from(ns.deallocated_zeroes);
    out[104..120].copy_from_slice(&ns.nguid);
    out[120..128].copy_from_slice(&ns.eui64);
    // LBAF0: no metadata, LBADS, best relative performance.
    out[128..132].copy_from_slice(&(u32::from(ns.lba_shift) << 16).to_le_bytes());
}

/// Active Namespace ID list (CNS 02h): ascending NSIDs above `after`.
pub fn active_list(out: &mut [u8; 4096], nsids: &mut dyn Iterator<Item = u32>, after: u32) {
    out.fill(0);
    let mut i = 0;
    for n in nsids.filter(|&n| n > after) {
        if i == 1024 {
            break;
        }
        out[4 * i..4 * i + 4].copy_from_slice(&n.to_le_bytes());
        i += 1;
    }
}

/// Namespace Identification Descriptor list (CNS 03h): EUI-64 and NGUID.
pub fn descriptors(out: &mut [u8; 4096], ns: &NamespaceInfo) {
    out.fill(0);
    out[0] = 1; // NIDT EUI64
    out[1] = 8;
    out[4..12].copy_from_slice(&ns.eui64);
    out[12] = 2; // NIDT NGUID
    out[13] = 16;
    out[16..32].copy_from_slice(&ns.nguid);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_sqe(cns: u32, nsid: u32) -> Sqe {
        let mut s = Sqe::ZERO;
        s.set_dw(1, nsid);
        s.set_dw(10, cns);
        s
    }

    #[test]
    fn decode_cns() {
        assert_eq!(decode(&id_sqe(1, 0)), Ok(Request::Controller));
        assert_eq!(decode(&id_sqe(0, 3)), Ok(Request::Namespace(3)));
        assert_eq!(decode(&id_sqe(0, 0)), Err(Status::INVALID_NAMESPACE));
        assert_eq!(decode(&id_sqe(0, MAX_NSID + 1)), Err(Status::INVALID_NAMESPACE));
        assert_eq!(decode(&id_sqe(2, 0)), Ok(Request::ActiveList(0)));
        assert_eq!(decode(&id_sqe(2, 0xffff_fffe)), Err(Status::INVALID_NAMESPACE));
        assert_eq!(decode(&id_sqe(0x1f, 0)), Err(Status::INVALID_FIELD));
    }

    #[test]
    fn controller_fields() {
        let mut b = [0u8; 4096];
        let id = ControllerIdentity {
            vid: 0x1dad,
            ssvid: 0x1dad,
            serial: "SN1",
            model: "DPU NVMe",
            firmware: "0.1",
            cntlid: 5,
            subnqn: "nqn.2026-11.dev.dpu:fn5",
            acl: 3,
            aerl: 3,
            elpe: 15,
            firmware_update: false,
            mtfa: 0,
        };
        controller(&mut b, &id);
        assert_eq!(&b[4..8], b"SN1 ");
        assert_eq!((u16::from_le_bytes([b[256], b[257]]), b[260], b[319]), (0, 0x03, 0), "no firmware update (a VF)");
        controller(&mut b, &ControllerIdentity { firmware_update: true, ..id });
        assert_eq!(b[260] & 0x10, 0, "no activation without reset unless MTFA is given");
        controller(&mut b, &ControllerIdentity { firmware_update: true, mtfa: 12, ..id });
        assert_eq!((b[260], u16::from_le_bytes([b[270], b[271]])), (crate::firmware::FRMW | 0x10, 12), "FRMW bit 4, MTFA");
        assert_eq!(u32::from_le_bytes(b[92..96].try_into().unwrap()), 3 << 8, "OAES: firmware activation notices");
        // A VF of a card that activates without reset: no firmware
        // commands, but the notice and MTFA (its host polls CSTS.PP too).
        controller(&mut b, &ControllerIdentity { mtfa: 5, ..id });
        assert_eq!((b[260], u16::from_le_bytes([b[270], b[271]])), (0x03, 5), "FRMW without bit 4, MTFA");
        assert_eq!(u32::from_le_bytes(b[92..96].try_into().unwrap()), 3 << 8, "OAES: firmware activation notices on a VF");
        controller(&mut b, &ControllerIdentity { firmware_update: true, ..id });
        assert_eq!((u16::from_le_bytes([b[256], b[257]]), b[260], b[319]), (0x4, 0x04, 1), "OACS bit 2, two writable slots, 4 KiB granularity");
        assert_eq!(b[77], MDTS);
        assert_eq!(u32::from_le_bytes(b[92..96].try_into().unwrap()), 1 << 8, "OAES: namespace attribute notices");
        assert_eq!(u16::from_le_bytes([b[78], b[79]]), 5);
        assert_eq!((b[512], b[513]), (0x66, 0x44));
        assert_eq!(u32::from_le_bytes(b[516..520].try_into().unwrap()), MAX_NSID);
        assert_eq!(&b[768..775], b"nqn.202");
    }

    #[test]
    fn namespace_and_lists() {
        let mut b = [0u8; 4096];
        let ns = NamespaceInfo { nsid: 2, blocks: 2048, lba_shift: 12, nguid: [7; 16], eui64: [9; 8], deallocated_zeroes: true, shared: false };
        namespace(&mut b, &ns);
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 2048);
        assert_eq!(b[130], 12, "LBADS in LBAF0");
        assert_eq!(b[33], 1, "DLFEAT");
        active_list(&mut b, &mut [1u32, 2, 5].into_iter(), 1);
        assert_eq!(&b[0..12], &[2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        descriptors(&mut b, &ns);
        assert_eq!((b[0], b[1], b[12], b[13]), (1, 8, 2, 16));
    }

    /// A fabrics controller says its subsystem may hold several
    /// controllers (CMIC bit 1) and a shared namespace says so (NMIC
    /// bit 0); a PCIe function's do not.
    #[test]
    fn fabrics_controllers_and_shared_namespaces_say_so() {
        let mut b = [0u8; 4096];
        let id = ControllerIdentity { vid: 1, ssvid: 1, serial: "s", model: "m", firmware: "f", cntlid: 1, subnqn: "nqn.x", acl: 3, aerl: 3, elpe: 0, firmware_update: false, mtfa: 0 };
        controller(&mut b, &id);
        assert_eq!(b[76] & 2, 0);
        fabrics(&mut b, 64 + 8192, 16);
        assert_eq!(b[76] & 2, 2);
        let ns = NamespaceInfo { nsid: 1, blocks: 8, lba_shift: 9, nguid: [1; 16], eui64: [1; 8], deallocated_zeroes: false, shared: true };
        namespace(&mut b, &ns);
        assert_eq!(b[30], 1);
        namespace(&mut b, &NamespaceInfo { shared: false, ..ns });
        assert_eq!(b[30], 0);
    }
}
