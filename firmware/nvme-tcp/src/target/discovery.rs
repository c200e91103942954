//! The target's discovery controller (NVMe Base 2.0 §3.1.3.3 "Discovery
//! Controller", NVMe over Fabrics 1.1 §5; NVMe/TCP Transport 1.0: TCP port
//! 8009): what a host that connects to the well-known discovery NQN may
//! ask (Property Get/Set, Identify Controller with CNTRLTYPE 2 and no
//! namespaces, Keep Alive, Get/Set Features, Asynchronous Event Request)
//! and the Discovery Log Page (LID 70h, §5.16.1.23) it reads: one entry
//! per (subsystem, DPU port) whose allow-list admits the host, as Linux
//! nvmet lists only the subsystems a host may connect to.
//!
//! * [`discovery_command`]: one admin command of a discovery controller;
//!   a Get Log Page of the discovery log is answered with
//!   [`DiscoveryReply::Log`] (the caller streams the bytes with
//!   [`log_page`], piece by piece, so a log longer than one output page
//!   needs no buffer of its size).
//! * [`log_page`]: bytes `offset..` of the log for a host.

use super::{admin_command, opc, AdminReply, AdminState, Identity};
use crate::discovery::{adrfam, subtype, treq, trtype, write_log_range, DiscoveryError, EntryRepr, LID_DISCOVERY};
use crate::sgl::Dptr;
use dpu_nvme::{Sqe, Status};

/// GENCTR of the log of a card whose subsystems come from its boot
/// configuration only (they never change while it runs): the caller
/// passes one more for each change of the subsystems made at run time.
pub const GENCTR: u64 = 1;
/// Most entries a log holds (8 subsystems x 2 ports fit easily).
pub const MAX_ENTRIES: usize = 32;
/// Most DPU ports [`log_page`] takes.
pub const MAX_PORTS: usize = 4;
/// MDTS of a discovery controller (2^3 x 4 KiB = 32 KiB): a Get Log Page
/// asking for more is Invalid Field; 32 KiB holds a log of 31 entries.
pub const DISCOVERY_MDTS: u8 = 3;
/// Bytes a discovery controller transfers per command at most.
pub const MAX_LOG_READ: u32 = 4096 << DISCOVERY_MDTS;
/// CNTRLTYPE of a discovery controller (Identify Controller byte 111).
pub const CNTRLTYPE_DISCOVERY: u8 = 2;

/// A subsystem as the discovery log lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer<'a> {
    pub subnqn: &'a str,
    /// Its TCP port (TRSVCID).
    pub trsvcid: u16,
    /// Bit p: it listens on DPU port p.
    pub ports: u32,
}

/// How a discovery controller's command ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryReply {
    /// As an I/O controller's admin command ends.
    Admin(AdminReply),
    /// Get Log Page of the Discovery Log Page: send `len` bytes of the
    /// log from byte `offset` (one C2HData, [`log_page`] renders them),
    /// then a successful completion.
    Log { offset: u64, len: u32 },
}

fn text<'b>(buf: &'b mut [u8; 16], parts: &[u32], sep: u8) -> &'b str {
    let mut n = 0;
    for (i, &v) in parts.iter().enumerate() {
        if i > 0 {
            buf[n] = sep;
            n += 1;
        }
        let mut digits = [0u8; 10];
        let mut k = 0;
        let mut v = v;
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..k].iter().rev() {
            if n < buf.len() {
                buf[n] = *d;
                n += 1;
            }
        }
    }
    // Only ASCII digits and the separator were written.
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// Entries a host sees: the (offer, port) pairs, in subsystem then port
/// order, of offers `admits` takes.
pub fn entries_for(offers: &[Offer<'_>], ports: usize, admits: impl Fn(usize) -> bool) -> usize {
    let ports = ports.min(MAX_PORTS);
    (0..offers.len()).filter(|&s| admits(s)).map(|s| (0..ports).filter(|&p| offers[s].ports & (1 << p) != 0).count()).sum()
}

/// Renders bytes `offset..offset + out.len()` of the Discovery Log Page a
/// host sees (NVMe Base 2.0 §5.16.1.23): header (GENCTR `genctr`: the
/// log's generation, which the caller bumps whenever it may have changed,
/// NUMREC, RECFMT 0), then per offer `admits` takes and per DPU port `p`
/// in its mask (`ports[p]` = the port's IPv4 address): TRTYPE TCP, ADRFAM
/// IPv4, SUBTYPE NVM subsystem, TREQ secure channel not required, PORTID
/// p, CNTLID FFFFh (dynamic controllers), ASQSZ `asqsz`, TRSVCID the
/// offer's TCP port and TRADDR the port's address (ASCII, space padded),
/// SUBNQN, TSAS SECTYPE 0 (no security). Past the log's end `out` is
/// zero. Returns the log bytes written.
pub fn log_page(genctr: u64, offers: &[Offer<'_>], ports: &[[u8; 4]], admits: impl Fn(usize) -> bool, asqsz: u16, offset: u64, out: &mut [u8]) -> Result<usize, DiscoveryError> {
    let ports = &ports[..ports.len().min(MAX_PORTS)];
    let mut addr = [[0u8; 16]; MAX_PORTS];
    let mut addr_len = [0usize; MAX_PORTS];
    for (p, ip) in ports.iter().enumerate() {
        let mut b = [0u8; 16];
        addr_len[p] = text(&mut b, &[ip[0].into(), ip[1].into(), ip[2].into(), ip[3].into()], b'.').len();
        addr[p] = b;
    }
    let mut svc = [[0u8; 16]; MAX_ENTRIES];
    let mut svc_len = [0usize; MAX_ENTRIES];
    let mut which = [(0usize, 0usize); MAX_ENTRIES];
    let mut n = 0;
    for (s, o) in offers.iter().enumerate() {
        if !admits(s) {
            continue;
        }
        for p in 0..ports.len() {
            if o.ports & (1 << p) == 0 {
                continue;
            }
            if n == MAX_ENTRIES {
                return Err(DiscoveryError::FieldTooLong);
            }
            let mut b = [0u8; 16];
            svc_len[n] = text(&mut b, &[o.trsvcid.into()], b' ').len();
            svc[n] = b;
            which[n] = (s, p);
            n += 1;
        }
    }
    let tsas = [0u8; 1]; // SECTYPE 0: no security (NVMe/TCP Transport 1.0 §3.7)
    let entry = |k: usize| {
        let (s, p) = which[k];
        EntryRepr {
            trtype: trtype::TCP,
            adrfam: adrfam::IPV4,
            subtype: subtype::NVM,
            treq: treq::SECURE_NOT_REQUIRED,
            portid: p as u16,
            cntlid: crate::fabrics::connect::CNTLID_DYNAMIC,
            asqsz,
            eflags: 0,
            trsvcid: core::str::from_utf8(&svc[k][..svc_len[k]]).unwrap_or(""),
            traddr: core::str::from_utf8(&addr[p][..addr_len[p]]).unwrap_or(""),
            subnqn: offers[s].subnqn,
            tsas: &tsas,
        }
    };
    if n == 0 {
        return write_log_range(genctr, &[], offset, out);
    }
    // Slots past `n` repeat the last entry and are not rendered.
    let list: [EntryRepr<'_>; MAX_ENTRIES] = core::array::from_fn(|k| entry(k.min(n - 1)));
    write_log_range(genctr, &list[..n], offset, out)
}

/// Serves admin command `sqe` (not Connect) of a discovery controller in
/// `st` (`id` with the discovery NQN and no namespaces), writing Identify
/// data to `out`. A discovery controller has no I/O queues and no
/// namespaces (NVMe Base 2.0 §3.1.3.3): Identify serves CNS 01h only (with
/// CNTRLTYPE 2, MDTS [`DISCOVERY_MDTS`], no asynchronous events
/// announced), Get Log Page the discovery log only (LID 70h; the offset a
/// dword multiple, at most [`MAX_LOG_READ`] bytes), Number of Queues is
/// Invalid Field; properties, Keep Alive, the other features, Abort and
/// AERs (held) are served as for an I/O controller.
pub fn discovery_command(st: &mut AdminState, id: &Identity, sqe: &Sqe, out: &mut [u8; 4096]) -> DiscoveryReply {
    let none = |_: u32| None;
    let fail = |s: Status| DiscoveryReply::Admin(AdminReply::Complete { status: s, dw0: 0, dw1: 0, data_len: 0 });
    match sqe.opcode() {
        opc::IDENTIFY if st.props.ready() => {
            if sqe.cdw10() as u8 != crate::fabrics::admin::cns::CONTROLLER {
                return fail(Status::INVALID_FIELD);
            }
            let r = admin_command(st, id, sqe, &none, out);
            if let AdminReply::Complete { status, .. } = r {
                if status.is_success() {
                    out[111] = CNTRLTYPE_DISCOVERY;
                    out[77] = DISCOVERY_MDTS;
                    out[92..96].fill(0); // OAES: no events
                    out[516..520].fill(0); // NN: no namespaces
                    out[520..522].fill(0); // ONCS: no I/O commands
                }
            }
            DiscoveryReply::Admin(r)
        }
        opc::GET_LOG_PAGE if st.props.ready() => {
            if sqe.cdw10() as u8 != LID_DISCOVERY {
                return fail(Status::INVALID_LOG_PAGE);
            }
            let host_len = match Dptr::of(sqe) {
                Ok(Dptr::Transport { len }) => len,
                _ => return fail(Status::SGL_TYPE_INVALID),
            };
            // NUMDL 31:16 of CDW10, NUMDU 15:0 of CDW11 (0's based
            // dwords); LPOL/LPOU in CDW12/13 (§5.16).
            let numd = u64::from(sqe.cdw10() >> 16) | u64::from(sqe.cdw11() & 0xffff) << 16;
            let len = (numd + 1) * 4;
            let offset = u64::from(sqe.cdw12()) | u64::from(sqe.cdw13()) << 32;
            if offset % 4 != 0 || len > u64::from(MAX_LOG_READ) || len > u64::from(host_len) {
                return fail(Status::INVALID_FIELD);
            }
            DiscoveryReply::Log { offset, len: len as u32 }
        }
        opc::SET_FEATURES | opc::GET_FEATURES if sqe.cdw10() as u8 == dpu_nvme::features::FID_NUMBER_OF_QUEUES => fail(Status::INVALID_FIELD),
        opc::FABRICS | opc::IDENTIFY | opc::GET_LOG_PAGE | opc::SET_FEATURES | opc::GET_FEATURES | opc::KEEP_ALIVE | opc::ABORT | opc::ASYNC_EVENT_REQUEST => {
            DiscoveryReply::Admin(admin_command(st, id, sqe, &none, out))
        }
        _ => fail(Status::INVALID_OPCODE),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fabrics::admin::{self, GetLogPage};
    use crate::fabrics::{command_sqe, PropertySet, PropertySize};
    use std::vec;

    const RAM: &str = "nqn.2026-12.io.dpusim:ram";
    const SSD: &str = "nqn.2026-12.io.dpusim:ssd";
    const OFFERS: [Offer<'static>; 2] = [Offer { subnqn: RAM, trsvcid: 4420, ports: 0b11 }, Offer { subnqn: SSD, trsvcid: 4421, ports: 0b10 }];
    const PORTS: [[u8; 4]; 2] = [[10, 0, 0, 1], [10, 0, 1, 1]];

    fn whole(admits: impl Fn(usize) -> bool + Copy) -> std::vec::Vec<u8> {
        let n = entries_for(&OFFERS, PORTS.len(), admits);
        let mut b = vec![0u8; (n + 1) * 1024];
        assert_eq!(log_page(GENCTR, &OFFERS, &PORTS, admits, 128, 0, &mut b), Ok(b.len()));
        b
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn one_entry_per_subsystem_and_port_at_the_spec_offsets() {
        let b = whole(|_| true);
        assert_eq!(&b[0..8], &GENCTR.to_le_bytes(), "GENCTR");
        assert_eq!(&b[8..16], &3u64.to_le_bytes(), "NUMREC: ram on ports 0 and 1, ssd on port 1");
        assert_eq!(u16_at(&b, 16), 0, "RECFMT");
        // The third entry (ssd, port 1), byte by byte (figure "Discovery
        // Log Page Entry").
        let e = &b[3 * 1024..4 * 1024];
        assert_eq!((e[0], e[1], e[2], e[3]), (3, 1, 2, 2), "TRTYPE TCP, ADRFAM IPv4, SUBTYPE NVM, TREQ not required");
        assert_eq!((u16_at(e, 4), u16_at(e, 6), u16_at(e, 8), u16_at(e, 10)), (1, 0xffff, 128, 0), "PORTID, CNTLID, ASQSZ, EFLAGS");
        assert_eq!(&e[32..36], b"4421");
        assert!(e[36..64].iter().all(|&c| c == b' '), "TRSVCID space padded");
        assert_eq!(&e[256..256 + SSD.len()], SSD.as_bytes());
        assert!(e[256 + SSD.len()..512].iter().all(|&c| c == 0), "SUBNQN NUL padded");
        assert_eq!(&e[512..520], b"10.0.1.1");
        assert!(e[520..768].iter().all(|&c| c == b' '), "TRADDR space padded");
        assert!(e[768..].iter().all(|&c| c == 0), "TSAS: SECTYPE 0");
        let first = &b[1024..2048];
        assert_eq!((&first[256..256 + RAM.len()], &first[512..520], u16_at(first, 4)), (RAM.as_bytes(), &b"10.0.0.1"[..], 0));
    }

    #[test]
    fn a_host_sees_only_the_subsystems_that_admit_it() {
        let b = whole(|s| s == 0);
        assert_eq!(&b[8..16], &2u64.to_le_bytes());
        assert!(!b.windows(SSD.len()).any(|w| w == SSD.as_bytes()), "the allow-listed subsystem is hidden");
        let b = whole(|_| false);
        assert_eq!(b.len(), 1024);
        assert_eq!(&b[8..16], &0u64.to_le_bytes(), "nothing to list");
    }

    #[test]
    fn the_log_reads_in_pieces() {
        let all = whole(|_| true);
        // Header first (as Linux does), then any range: the same bytes.
        for (off, len) in [(0usize, 1024usize), (0, 4096), (1000, 100), (2048, 2048), (4092, 4)] {
            let mut b = vec![0xaa; len];
            let n = log_page(GENCTR, &OFFERS, &PORTS, |_| true, 128, off as u64, &mut b).unwrap();
            assert_eq!(n, len.min(all.len() - off));
            assert_eq!(&b[..n], &all[off..off + n], "bytes {off}..+{len}");
        }
        // The generation is the caller's (one more per change).
        let mut h = [0u8; 16];
        log_page(GENCTR + 6, &OFFERS, &PORTS, |_| true, 128, 0, &mut h).unwrap();
        assert_eq!(&h[0..8], &(GENCTR + 6).to_le_bytes(), "GENCTR");
        let mut b = vec![0xaa; 512];
        assert_eq!(log_page(GENCTR, &OFFERS, &PORTS, |_| true, 128, 8192, &mut b), Ok(0));
        assert!(b.iter().all(|&c| c == 0), "past the end: zeroes");
    }

    fn enabled() -> AdminState {
        let mut st = AdminState::new(0);
        st.props.set(&PropertySet { size: PropertySize::Four, offset: crate::fabrics::property::offset::CC, value: 1 | 6 << 16 | 4 << 20 }).unwrap();
        st
    }

    fn id() -> Identity<'static> {
        Identity { subnqn: crate::DISCOVERY_NQN, serial: "DPUDISC", model: "m", firmware: "1", cntlid: 3, ioccsz_bytes: 64, namespaces: 0 }
    }

    #[test]
    fn a_discovery_controller_serves_identify_and_the_log() {
        let mut out = [0u8; 4096];
        let mut st = AdminState::new(0);
        let idc = admin::identify(1, 0, admin::cns::CONTROLLER, 0);
        assert!(matches!(discovery_command(&mut st, &id(), &idc, &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::COMMAND_SEQUENCE_ERROR, .. })), "before CC.EN");
        let mut st = enabled();
        assert!(matches!(discovery_command(&mut st, &id(), &idc, &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::SUCCESS, data_len: 4096, .. })));
        assert_eq!(out[111], 2, "CNTRLTYPE discovery");
        assert_eq!(u32::from_le_bytes(out[516..520].try_into().unwrap()), 0, "NN");
        assert!(out[768..].starts_with(crate::DISCOVERY_NQN.as_bytes()), "SUBNQN");
        assert_eq!(out[77], DISCOVERY_MDTS);
        let idn = admin::identify(2, 1, admin::cns::NAMESPACE, 0);
        assert!(matches!(discovery_command(&mut st, &id(), &idn, &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_FIELD, .. })), "no namespaces");
        let glp = |lid, offset, len| GetLogPage { nsid: 0, lid, lsp: 0, rae: true, offset, len }.to_sqe(3).unwrap();
        assert_eq!(discovery_command(&mut st, &id(), &glp(0x70, 0, 1024), &mut out), DiscoveryReply::Log { offset: 0, len: 1024 });
        assert_eq!(discovery_command(&mut st, &id(), &glp(0x70, 2048, 5120), &mut out), DiscoveryReply::Log { offset: 2048, len: 5120 });
        let mut odd = glp(0x70, 0, 1024);
        odd.set_dw(12, 2);
        assert!(matches!(discovery_command(&mut st, &id(), &odd, &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_FIELD, .. })), "offset not a dword multiple");
        assert!(matches!(discovery_command(&mut st, &id(), &glp(0x70, 0, MAX_LOG_READ + 4), &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_FIELD, .. })), "above MDTS");
        assert!(matches!(discovery_command(&mut st, &id(), &glp(2, 0, 512), &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_LOG_PAGE, .. })), "SMART is an I/O controller's");
        let mut noq = command_sqe(opc::SET_FEATURES, 4, 0, Dptr::None);
        noq.set_dw(10, 7);
        noq.set_dw(11, 3 | 3 << 16);
        assert!(matches!(discovery_command(&mut st, &id(), &noq, &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_FIELD, .. })), "no I/O queues");
        assert!(matches!(discovery_command(&mut st, &id(), &admin::keep_alive(5), &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::SUCCESS, .. })));
        assert!(matches!(discovery_command(&mut st, &id(), &command_sqe(0x01, 6, 1, Dptr::None), &mut out), DiscoveryReply::Admin(AdminReply::Complete { status: Status::INVALID_OPCODE, .. })));
    }

    #[test]
    fn any_host_connects_to_discovery_but_no_io_queue() {
        use crate::fabrics::{ConnectCmd, ConnectData, ConnectResponse};
        use super::super::{check_connect, Connect, MQES};
        let host = "nqn.2014-08.org.nvmexpress:uuid:nobody";
        let connect = |qid| {
            let sqe = ConnectCmd { recfmt: 0, qid, sqsize: 31, cattr: 0, kato: 0 }.to_sqe(1);
            let mut data = [0u8; 1024];
            ConnectData { hostid: [4; 16], cntlid: 0xffff, subnqn: crate::DISCOVERY_NQN, hostnqn: host }.emit(&mut data).unwrap();
            (sqe, data)
        };
        let (s, d) = connect(0);
        // No subsystem is found and none allows the host: discovery still connects.
        let r = check_connect(&s, &d, MQES, |_| None, |_, _| false);
        assert_eq!(r, Ok(Connect::Discovery { sqsize: 31, kato_ms: 0, hostnqn: host, hostid: [4; 16] }));
        let (s, d) = connect(1);
        let r = check_connect(&s, &d, MQES, |_| None, |_, _| true);
        assert_eq!(r, Err(ConnectResponse::InvalidParameter { in_data: false, offset: 42 }), "an I/O queue: Invalid Parameters on QID");
    }
}
