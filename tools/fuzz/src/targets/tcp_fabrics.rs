//! NVMe over Fabrics structures a target or host receives
//! (`dpu_nvme_tcp::fabrics`, `sgl`, `cqe`): Connect SQEs and their 1024
//! bytes of data, Property Get/Set SQEs, Connect responses, SGL1
//! descriptors, CQEs. What parses must emit back to the same bytes'
//! meaning (a round trip), and NQNs that parse must be writable again.
//!
//! Input: a 64-byte SQE, a 16-byte CQE, then the Connect data (the rest).

use crate::input::Input;
use dpu_nvme::Sqe;
use dpu_nvme_tcp::cqe::{cqe_bytes, parse_cqe};
use dpu_nvme_tcp::fabrics::connect::ConnectResponse;
use dpu_nvme_tcp::fabrics::{check_nqn, ConnectCmd, ConnectData, FcType, PropertyGet, PropertySet, PropertySize};
use dpu_nvme_tcp::sgl::Dptr;

pub fn run(data: &[u8]) {
    let mut i = Input::new(data);
    let sqe = Sqe(i.fixed::<64>());
    let cqe_raw: [u8; 16] = i.fixed();
    let rest = i.rest();

    let _ = FcType::of(&sqe);
    if let Ok(c) = ConnectCmd::parse(&sqe) {
        let again = ConnectCmd::parse(&c.to_sqe(sqe.cid())).expect("a Connect SQE we emit parses");
        assert_eq!(again, c);
    }
    if let Ok(p) = PropertyGet::parse(&sqe) {
        assert_eq!(PropertyGet::parse(&p.to_sqe(sqe.cid())), Ok(p));
        let (lo, hi) = p.response_dwords(u64::from_le_bytes(cqe_raw[..8].try_into().unwrap()));
        if p.size == PropertySize::Four {
            assert_eq!(hi, 0);
        }
        let _ = lo;
    }
    if let Ok(p) = PropertySet::parse(&sqe) {
        assert_eq!(PropertySet::parse(&p.to_sqe(sqe.cid())), Ok(p));
        if p.size == PropertySize::Four {
            assert!(p.value <= u64::from(u32::MAX));
        }
    }
    if let Ok(d) = Dptr::of(&sqe) {
        let mut s = Sqe::ZERO;
        d.apply(&mut s);
        assert_eq!(Dptr::of(&s), Ok(d), "SGL1 round trip");
    }
    let _ = Dptr::from_bytes(&sqe.dptr());

    let cqe = parse_cqe(&cqe_raw);
    let again = parse_cqe(&cqe_bytes(&cqe));
    assert_eq!(again, cqe, "CQE round trip");
    let r = ConnectResponse::from_cqe(&cqe);
    let back = ConnectResponse::from_cqe(&r.to_cqe(cqe.cid, cqe.sq_id, cqe.sq_head));
    assert_eq!(back, r, "Connect response round trip");

    if let Ok(cd) = ConnectData::parse(rest) {
        assert!(check_nqn(cd.subnqn).is_ok() && check_nqn(cd.hostnqn).is_ok(), "a parsed NQN is not writable: {cd:?}");
        let mut out = [0u8; 1024];
        cd.emit(&mut out).expect("parsed Connect data emits");
        assert_eq!(ConnectData::parse(&out), Ok(cd), "Connect data round trip");
    }
}
