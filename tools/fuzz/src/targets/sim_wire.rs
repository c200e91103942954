//! The simulator's own NVMe/TCP wire code (`dpu_sim::net::nvmf_wire`, the
//! test peers' parser, independent of the firmware's): a byte stream
//! received by either role, PDU after PDU, switching to the negotiated
//! digests after ICReq/ICResp as a connection does. Every PDU taken must
//! lie inside the stream and advance it; one whose data digest matched,
//! built again with `emit` under the same configuration, parses to the
//! same PDU and data; a rejected PDU gives a TermReq. Capsules go through
//! the Fabrics, Identify and Get Log Page decoders, data through the
//! discovery log and Identify parsers.
//!
//! Input: a configuration byte (bit 0: the receiver is the controller,
//! else the host; bit 3: IC already exchanged, with the digests of bits
//! 1-2), the PDA byte, then the stream.

use crate::input::Input;
use dpu_sim::net::nvmf_wire::commands::{GetLogPage, Identify};
use dpu_sim::net::nvmf_wire::discovery;
use dpu_sim::net::nvmf_wire::fabrics::{Connect, ConnectData, FcType, PropertyCommand};
use dpu_sim::net::nvmf_wire::identify::{ControllerIdentity, NamespaceIdentity};
use dpu_sim::net::nvmf_wire::pdu::{self, Digests, Pdu, Role, RxConfig, TxConfig, MAX_PDA, TERM_MAX_DATA};

/// Most PDUs taken from one input (bounds the time an input takes).
const MAX_PDUS: usize = 256;

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let c = i.u8();
    let pda = i.u8() % (MAX_PDA + 1);
    let role = if c & 1 == 0 { Role::Host } else { Role::Controller };
    let mut cfg = if c & 8 == 0 { RxConfig::awaiting_ic(role) } else { RxConfig::established(role, Digests { header: c & 2 != 0, data: c & 4 != 0 }, pda) };
    let stream = i.rest();
    let mut off = 0;
    for _ in 0..MAX_PDUS {
        let b = &stream[off..];
        let r = match pdu::parse(b, &cfg) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let (term, error_data) = pdu::term_req_for(&e, b);
                assert_eq!(term.fes, e.fes().code());
                assert!(error_data.len() <= TERM_MAX_DATA && b.starts_with(&error_data));
                return;
            }
        };
        assert!(r.len >= r.header.header_len() && r.len <= b.len(), "PDU of {} bytes ({:?}) in {} received", r.len, r.header, b.len());
        assert!(r.data.len() <= r.len - r.header.header_len() || r.pdu.pdu_type().is_term(), "{r:?}");
        if r.data_digest_ok != Some(false) && !r.pdu.pdu_type().is_term() {
            round_trip(&r, &cfg);
        }
        look_inside(&r);
        match r.pdu {
            Pdu::IcReq(ic) if !cfg.ic_done => cfg = RxConfig::established(role, Digests { header: ic.hdgst, data: ic.ddgst }, pda),
            Pdu::IcResp(ic) if !cfg.ic_done => cfg = RxConfig::established(role, Digests { header: ic.hdgst, data: ic.ddgst }, pda),
            _ => {}
        }
        off += r.len;
    }
}

/// Builds the PDU again as a sender with the receiver's configuration
/// would, and parses it.
fn round_trip(r: &pdu::Received, cfg: &RxConfig) {
    let tx = TxConfig { digests: if cfg.ic_done { cfg.digests } else { Digests::NONE }, pda: cfg.pda };
    let mut out = Vec::new();
    // A PDU can parse that this emitter refuses to build (e.g. PDO
    // alignment is the sender's choice): nothing to compare then.
    if pdu::emit(&r.pdu, r.data, &tx, &mut out).is_err() {
        return;
    }
    let again = match pdu::parse(&out, cfg) {
        Ok(Some(a)) => a,
        other => panic!("re-emitted {:?} does not parse: {other:?}", r.pdu),
    };
    assert_eq!(again.pdu, r.pdu, "round trip changed the PDU");
    assert_eq!(again.data, r.data, "round trip changed the data");
    assert_eq!(again.len, out.len());
}

/// Decodes what a peer would decode from this PDU.
fn look_inside(r: &pdu::Received) {
    match r.pdu {
        Pdu::CapsuleCmd(c) => {
            let _ = (FcType::of(&c), Connect::parse(&c), PropertyCommand::parse(&c), Identify::parse(&c), GetLogPage::parse(&c), c.sgl());
            if let Some(bytes) = ConnectData::parse(r.data).ok().and_then(|cd| Some((cd.clone(), cd.to_bytes()?))) {
                assert_eq!(ConnectData::parse(&bytes.1).as_ref(), Ok(&bytes.0), "Connect data round trip");
            }
        }
        Pdu::C2hData(_) => {
            if let Ok((_, entries)) = discovery::entries(r.data) {
                for e in entries {
                    let _ = (e.trsvcid(), e.subnqn(), e.traddr(), e.tsas(), e.trtype(), e.adrfam(), e.portid(), e.cntlid());
                }
            }
            let _ = (ControllerIdentity::parse(r.data), NamespaceIdentity::parse(r.data));
        }
        _ => {}
    }
}
