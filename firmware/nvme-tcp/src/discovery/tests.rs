//! Discovery Log Page tests: byte layout at the offsets the spec gives,
//! round trips, partial reads and range rendering.

use super::*;
use crate::consts::{DEFAULT_PORT, DISCOVERY_NQN};

const SUBNQN: &str = "nqn.2024-01.io.example:vol1";

fn entries() -> [EntryRepr<'static>; 3] {
    let nvm = EntryRepr {
        trtype: trtype::TCP,
        adrfam: adrfam::IPV4,
        subtype: subtype::NVM,
        treq: treq::SECURE_NOT_SPECIFIED | treq::DISABLE_SQ_FLOW_CONTROL,
        portid: 1,
        cntlid: 0xffff,
        asqsz: 32,
        eflags: 0,
        trsvcid: "4420",
        traddr: "10.0.0.2",
        subnqn: SUBNQN,
        tsas: &[0],
    };
    let disc = EntryRepr { subtype: subtype::CURRENT_DISCOVERY, trsvcid: "8009", subnqn: DISCOVERY_NQN, ..nvm };
    let other = EntryRepr { portid: 2, traddr: "10.0.0.3", eflags: 3, ..nvm };
    [nvm, disc, other]
}

#[test]
fn entry_layout_at_spec_offsets() {
    let mut b = [0xeeu8; 1024];
    entries()[0].emit(&mut b).unwrap();
    assert_eq!(&b[..12], &[3, 1, 2, 4, 1, 0, 0xff, 0xff, 32, 0, 0, 0]);
    assert!(b[12..32].iter().all(|&x| x == 0), "reserved 31:12");
    assert_eq!(&b[32..36], b"4420");
    assert!(b[36..64].iter().all(|&x| x == b' '), "TRSVCID space padded");
    assert!(b[64..256].iter().all(|&x| x == 0), "reserved 255:64");
    assert_eq!(&b[256..256 + SUBNQN.len()], SUBNQN.as_bytes());
    assert!(b[256 + SUBNQN.len()..512].iter().all(|&x| x == 0), "SUBNQN NUL padded");
    assert_eq!(&b[512..520], b"10.0.0.2");
    assert!(b[520..768].iter().all(|&x| x == b' '), "TRADDR space padded");
    assert!(b[768..].iter().all(|&x| x == 0), "TSAS: SECTYPE 0 (none)");
}

/// An entry as Linux nvmet writes it, byte by byte from `struct
/// nvmf_disc_rsp_page_entry` (include/linux/nvme.h) and the spec's
/// Discovery Log Page Entry: TRSVCID 63:32, reserved 255:64, SUBNQN
/// 511:256, TRADDR 767:512, TSAS 1023:768. nvmet pads its strings with
/// NULs (`memcpy` of the configfs value).
fn linux_entry() -> [u8; 1024] {
    let mut b = [0u8; 1024];
    b[0] = 3; // TRTYPE: TCP
    b[1] = 1; // ADRFAM: IPv4
    b[2] = 2; // SUBTYPE: NVM subsystem
    b[3] = 0x02 | 0x04; // TREQ: secure channel not required, SQ flow control disable
    b[4] = 1; // PORTID 1
    b[6] = 0xff; // CNTLID 0xffff (dynamic)
    b[7] = 0xff;
    b[8] = 128; // ASQSZ
    b[32..36].copy_from_slice(b"4420");
    b[256..256 + SUBNQN.len()].copy_from_slice(SUBNQN.as_bytes());
    b[512..520].copy_from_slice(b"10.0.0.2");
    b
}

#[test]
fn entry_view_reads_the_linux_layout() {
    let b = linux_entry();
    let e = EntryView::from_slice(&b).unwrap();
    assert_eq!((e.trtype(), e.adrfam(), e.subtype(), e.treq()), (3, 1, 2, 6));
    assert_eq!((e.portid(), e.cntlid(), e.asqsz()), (1, 0xffff, 128));
    assert_eq!(e.port(), Some(4420));
    assert_eq!(e.subnqn(), Ok(SUBNQN), "SUBNQN at bytes 511:256");
    assert_eq!(e.traddr(), Ok("10.0.0.2"), "TRADDR at bytes 767:512");
    assert_eq!(e.ipv4(), Some([10, 0, 0, 2]));
    // Rendering puts the fields at the same offsets (with space padding).
    let mut out = [0u8; 1024];
    EntryRepr { treq: 6, asqsz: 128, tsas: &[], ..entries()[0] }.emit(&mut out).unwrap();
    assert_eq!(&out[256..512], &b[256..512]);
    assert_eq!(&out[512..520], &b[512..520]);
    assert!(out[520..768].iter().all(|&x| x == b' '));
}

#[test]
fn entry_view_reads_back() {
    let mut b = [0u8; 1024];
    entries()[0].emit(&mut b).unwrap();
    let e = EntryView::from_slice(&b).unwrap();
    assert_eq!((e.trtype(), e.adrfam(), e.subtype(), e.treq()), (3, 1, 2, 4));
    assert_eq!((e.portid(), e.cntlid(), e.asqsz(), e.eflags()), (1, 0xffff, 32, 0));
    assert_eq!(e.trsvcid(), Ok("4420"));
    assert_eq!(e.port(), Some(DEFAULT_PORT));
    assert_eq!(e.traddr(), Ok("10.0.0.2"));
    assert_eq!(e.ipv4(), Some([10, 0, 0, 2]));
    assert_eq!(e.subnqn(), Ok(SUBNQN));
    assert_eq!(e.tsas()[0], 0);
    assert_eq!(EntryView::from_slice(&b[..1023]), Err(DiscoveryError::Truncated { need: 1024 }));
}

#[test]
fn entry_view_tolerates_nul_padding_and_rejects_junk() {
    let mut b = [0u8; 1024];
    b[1] = adrfam::IPV4;
    b[32..36].copy_from_slice(b"4420"); // NUL padded rather than space
    b[512..523].copy_from_slice(b"192.168.1.1");
    let e = EntryView::from_slice(&b).unwrap();
    assert_eq!(e.port(), Some(4420));
    assert_eq!(e.ipv4(), Some([192, 168, 1, 1]));
    for bad in [&b"1.2.3"[..], b"1.2.3.4.5", b"256.1.1.1", b"1..2.3", b"+1.2.3.4", b"1.2.3.x"] {
        b[512..768].fill(b' ');
        b[512..512 + bad.len()].copy_from_slice(bad);
        assert_eq!(EntryView::from_slice(&b).unwrap().ipv4(), None, "{:?}", core::str::from_utf8(bad));
    }
    b[32] = 0xff;
    assert_eq!(EntryView::from_slice(&b).unwrap().trsvcid(), Err(DiscoveryError::BadText));
    b[256..512].fill(b'n');
    assert_eq!(EntryView::from_slice(&b).unwrap().subnqn(), Err(DiscoveryError::FieldTooLong));
    // Found by the tcp_discovery fuzz target: a NUL after byte 223 was
    // accepted, an NQN no entry (or Connect) can carry.
    b[256 + 224] = 0;
    assert_eq!(EntryView::from_slice(&b).unwrap().subnqn(), Err(DiscoveryError::FieldTooLong));
    b[256 + 223] = 0;
    assert_eq!(EntryView::from_slice(&b).unwrap().subnqn().map(str::len), Ok(223));
}

#[test]
fn entry_emit_rejects_oversized_fields() {
    let mut b = [0u8; 1024];
    let long = core::str::from_utf8(&[b'9'; 33]).unwrap();
    let e = EntryRepr { trsvcid: long, ..entries()[0] };
    assert_eq!(e.emit(&mut b), Err(DiscoveryError::FieldTooLong));
    let e = EntryRepr { tsas: &[0u8; 257], ..entries()[0] };
    assert_eq!(e.emit(&mut b), Err(DiscoveryError::FieldTooLong));
    assert_eq!(entries()[0].emit(&mut b[..1000]), Err(DiscoveryError::Truncated { need: 1024 }));
}

#[test]
fn whole_log_round_trip() {
    let es = entries();
    let mut log = [0u8; 4 * 1024];
    assert_eq!(write_log_range(77, &es, 0, &mut log), Ok(4096));
    assert_eq!(&log[..8], &77u64.to_le_bytes());
    assert_eq!(&log[8..16], &3u64.to_le_bytes());
    assert_eq!(&log[16..18], &[0, 0]);
    let d = DiscoveryLog::parse(&log).unwrap();
    assert_eq!(d.header, LogHeader { genctr: 77, numrec: 3, recfmt: 0 });
    assert!(d.is_complete());
    assert_eq!(d.entries().len(), 3);
    let got: [(u16, &str, &str, u8); 3] = {
        let mut it = d.entries().map(|e| (e.portid(), e.traddr().unwrap(), e.subnqn().unwrap(), e.subtype()));
        [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
    };
    assert_eq!(got[0], (1, "10.0.0.2", SUBNQN, subtype::NVM));
    assert_eq!(got[1], (1, "10.0.0.2", DISCOVERY_NQN, subtype::CURRENT_DISCOVERY));
    assert_eq!(got[2], (2, "10.0.0.3", SUBNQN, subtype::NVM));
    assert_eq!(d.entries().nth(1).unwrap().port(), Some(8009));
}

#[test]
fn header_only_read_then_partial() {
    let es = entries();
    let mut log = [0u8; 4096];
    write_log_range(1, &es, 0, &mut log).unwrap();
    // The host's first read: the header only.
    let d = DiscoveryLog::parse(&log[..1024]).unwrap();
    assert_eq!(d.header.numrec, 3);
    assert_eq!(d.header.log_len(), 4096);
    assert_eq!(d.entries().count(), 0);
    assert!(!d.is_complete());
    // A read that ends inside entry 2 yields entry 1 only.
    let d = DiscoveryLog::parse(&log[..2048 + 1000]).unwrap();
    assert_eq!(d.entries_present(), 1);
    // Bytes past NUMREC entries are not entries.
    let mut more = [0u8; 5 * 1024];
    more[..4096].copy_from_slice(&log);
    more[4096] = 3;
    assert_eq!(DiscoveryLog::parse(&more).unwrap().entries().count(), 3);
}

#[test]
fn header_errors() {
    let mut h = [0u8; 1024];
    for n in 0..1024 {
        assert_eq!(DiscoveryLog::parse(&h[..n]), Err(DiscoveryError::Truncated { need: 1024 }));
    }
    h[16] = 1;
    assert_eq!(DiscoveryLog::parse(&h), Err(DiscoveryError::UnsupportedRecfmt(1)));
    // A NUMREC far beyond the buffer is not trusted.
    h[16] = 0;
    h[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let d = DiscoveryLog::parse(&h).unwrap();
    assert_eq!(d.entries().count(), 0);
    assert_eq!(d.header.log_len(), u64::MAX);
}

#[test]
fn ranges_match_the_whole_log() {
    let es = entries();
    let mut whole = [0u8; 4096];
    write_log_range(9, &es, 0, &mut whole).unwrap();
    // Odd offsets and lengths straddling record boundaries, as Get Log
    // Page with LPO may ask.
    for &(off, len) in &[(0usize, 20usize), (1020, 8), (1024, 1024), (1500, 2000), (3000, 1096), (4092, 4)] {
        let mut out = [0xaau8; 2048];
        let n = write_log_range(9, &es, off as u64, &mut out[..len.min(2048)]).unwrap();
        assert_eq!(n, len.min(2048).min(4096 - off));
        assert_eq!(&out[..n], &whole[off..off + n], "range {off}+{len}");
    }
    // Past the end: nothing, and the buffer is zeroed.
    let mut out = [0xaau8; 64];
    assert_eq!(write_log_range(9, &es, 4096, &mut out), Ok(0));
    assert!(out.iter().all(|&x| x == 0));
    // A read longer than the log: log bytes then zeros.
    let mut out = [0xaau8; 1100];
    assert_eq!(write_log_range(9, &es, 3072, &mut out), Ok(1024));
    assert_eq!(&out[..1024], &whole[3072..]);
    assert!(out[1024..].iter().all(|&x| x == 0));
    // An empty log is just a header.
    let mut out = [0u8; 2048];
    assert_eq!(write_log_range(5, &[], 0, &mut out), Ok(1024));
    assert_eq!(DiscoveryLog::parse(&out).unwrap().entries().count(), 0);
}
