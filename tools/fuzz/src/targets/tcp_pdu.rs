//! NVMe/TCP PDU headers (`dpu_nvme_tcp::pdu`), received by either role in
//! any connection state: the 8-byte common header check, the full header
//! parse, the data span it reports, and a round trip (a header that
//! parsed, emitted again with the same configuration, parses to the same
//! PDU and data length).
//!
//! Input: configuration (2 bytes: role, IC done, digests, PDA), then the
//! received bytes.

use crate::input::Input;
use dpu_nvme_tcp::pdu::{self, Digests, Pdu, Role, RxConfig, TxConfig, MAX_PDA};

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let c = i.u8();
    let pda = i.u8() % (MAX_PDA + 1);
    let role = if c & 1 == 0 { Role::Host } else { Role::Controller };
    let digests = Digests { header: c & 2 != 0, data: c & 4 != 0 };
    let cfg = if c & 8 == 0 { RxConfig::awaiting_ic(role) } else { RxConfig::established(role, digests, pda) };
    let b = i.rest();
    let total = match pdu::header_total_len(b, &cfg) {
        Ok(t) => t,
        Err(e) => {
            let _ = e.term_req();
            let _ = e.fes();
            return;
        }
    };
    assert!((8..=pdu::MAX_HEADER_LEN + 4).contains(&total), "header of {total} bytes");
    let r = match pdu::parse_header(b, &cfg) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.term_req();
            return;
        }
    };
    assert_eq!(r.header_len as usize, total);
    assert!(r.header_len <= r.plen, "{r:?}");
    if let Some(d) = r.data {
        assert!(d.offset_from_pdu_start >= r.header_len || matches!(r.pdu, Pdu::H2cTermReq(_) | Pdu::C2hTermReq(_)), "{r:?}");
        assert_eq!(d.end(), r.plen, "data span does not end at PLEN: {r:?}");
        assert!(d.len > 0, "empty data span: {r:?}");
        if !matches!(r.pdu, Pdu::H2cTermReq(_) | Pdu::C2hTermReq(_)) {
            assert_eq!(d.offset_from_pdu_start - d.pad_before, r.header_len, "{r:?}");
        }
    } else {
        assert_eq!(r.plen, r.header_len, "PLEN beyond the header without data: {r:?}");
    }
    round_trip(&r, &cfg);
}

/// Emits the parsed PDU with the receiver's configuration and parses it again.
fn round_trip(r: &pdu::Received, cfg: &RxConfig) {
    if matches!(r.pdu, Pdu::H2cTermReq(_) | Pdu::C2hTermReq(_)) {
        return;
    }
    let data_len = r.data.map_or(0, |d| d.len);
    let tx = TxConfig { digests: if cfg.ic_done { cfg.digests } else { Digests::NONE }, pda: cfg.pda };
    let mut buf = [0u8; 256];
    let n = match r.pdu.emit(data_len, &tx, &mut buf) {
        Ok(n) => n,
        // A header can parse that our emitter would not write (e.g. an
        // IC PDU with a PFV we do not speak is refused by the parse, but
        // PDO alignment is the sender's choice): nothing to compare.
        Err(_) => return,
    };
    let again = pdu::parse_header(&buf[..n], cfg).unwrap_or_else(|e| panic!("re-emitted {:?} does not parse: {e:?}", r.pdu));
    assert_eq!(again.pdu, r.pdu, "round trip changed the PDU");
    assert_eq!(again.data.map_or(0, |d| d.len), data_len, "round trip changed the data length");
}
