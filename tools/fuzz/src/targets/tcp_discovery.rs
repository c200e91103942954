//! The Discovery Log Page a host reads from a discovery controller
//! (`dpu_nvme_tcp::discovery`): header, NUMREC entries possibly cut short,
//! every field accessor. Entries whose fields are well formed must render
//! back (as a target does) to a log that parses to the same entries, for
//! any byte range a Get Log Page may ask for.
//!
//! Input: the log bytes as read by the host (a 1 KiB header and entries);
//! the last 8 bytes also pick the range rendered for the round trip.

use dpu_nvme_tcp::discovery::{write_log_range, DiscoveryLog, EntryRepr, RECORD_LEN};

pub fn run(data: &[u8]) {
    let Ok(log) = DiscoveryLog::parse(data) else { return };
    let n = log.entries_present();
    assert!(n as u64 <= log.header.numrec);
    assert!(n * RECORD_LEN <= data.len() - RECORD_LEN);
    assert_eq!(log.entries().len(), n);
    let _ = log.is_complete();
    let _ = log.header.log_len();
    let mut reprs = Vec::new();
    for e in log.entries() {
        let (trsvcid, traddr, subnqn) = (e.trsvcid(), e.traddr(), e.subnqn());
        let _ = (e.port(), e.ipv4(), e.tsas(), e.trtype(), e.adrfam(), e.subtype(), e.treq(), e.portid(), e.cntlid(), e.asqsz(), e.eflags());
        if let Some(ip) = e.ipv4() {
            let octets: Vec<u8> = traddr.expect("ipv4() parsed the text").split('.').map(|o| o.parse().unwrap()).collect();
            assert_eq!(octets, ip, "ipv4() disagrees with traddr()");
        }
        if let (Ok(trsvcid), Ok(traddr), Ok(subnqn)) = (trsvcid, traddr, subnqn) {
            reprs.push(EntryRepr {
                trtype: e.trtype(),
                adrfam: e.adrfam(),
                subtype: e.subtype(),
                treq: e.treq(),
                portid: e.portid(),
                cntlid: e.cntlid(),
                asqsz: e.asqsz(),
                eflags: e.eflags(),
                trsvcid,
                traddr,
                subnqn,
                tsas: e.tsas(),
            });
        }
    }
    // Render what parsed and read it back, whole and from an offset.
    let genctr = log.header.genctr;
    let total = (reprs.len() + 1) * RECORD_LEN;
    let mut whole = vec![0u8; total];
    let written = write_log_range(genctr, &reprs, 0, &mut whole).unwrap_or_else(|e| panic!("entries that parsed do not render: {e:?}"));
    assert_eq!(written, total);
    let back = DiscoveryLog::parse(&whole).expect("a rendered log parses");
    assert_eq!(back.header.numrec, reprs.len() as u64);
    assert!(back.is_complete());
    for (r, e) in reprs.iter().zip(back.entries()) {
        assert_eq!((e.trsvcid(), e.traddr(), e.subnqn()), (Ok(r.trsvcid.trim_end_matches([' ', '\0'])), Ok(r.traddr.trim_end_matches([' ', '\0'])), Ok(r.subnqn)));
        assert_eq!((e.portid(), e.cntlid(), e.trtype(), e.adrfam(), e.subtype()), (r.portid, r.cntlid, r.trtype, r.adrfam, r.subtype));
    }
    let tail = data.len().saturating_sub(8);
    let pick = u64::from_le_bytes(data[tail..].try_into().unwrap_or([0; 8]));
    let offset = pick % (total as u64 + 64);
    let mut part = vec![0xeeu8; (pick >> 32) as usize % 3000];
    let got = write_log_range(genctr, &reprs, offset, &mut part).expect("the whole log rendered");
    let expect = (total as u64).saturating_sub(offset).min(part.len() as u64) as usize;
    assert_eq!(got, expect);
    if got > 0 {
        assert_eq!(&part[..got], &whole[offset as usize..offset as usize + got], "a range differs from the whole log");
    }
    assert!(part[got..].iter().all(|&b| b == 0), "bytes past the log are not zeroed");
}
