//! Renders a [`Config`] into the boot configuration blob
//! (`dpu_hal::regs::bootcfg`), the format the firmware's namespace table
//! is parsed from. (The blob was the simulator's boot-configuration
//! window; the configuration now lives in flash, and this keeps the
//! parser unchanged.) An encrypted namespace's key record is its wrapped
//! key ([`crate::NsKey`], `FLAG_KEYS_WRAPPED`): the blob, like the flash,
//! never holds a key in the clear.

use crate::{Backend, Config};
use dpu_hal::regs::bootcfg::{NQN_LEN, SUBSYS_RECORD};
use dpu_hal::regs::bootcfg as b;

const _: () = assert!(b::EC_M == b::EC_K + 1 && b::EC_SPARES == b::EC_K + 2);

/// An NQN as a record holds it (NUL terminated within `NQN_LEN`).
fn nqn_bytes(s: &str) -> &[u8] {
    &s.as_bytes()[..s.len().min(NQN_LEN - 1)]
}

/// Writes the blob into `out`; returns its length, `None` if it does not fit.
pub fn render(c: &Config, out: &mut [u8]) -> Option<usize> {
    let ns_off = b::HEADER;
    // The functions' namespaces, then the subsystems' (record s + 1).
    let records = c
        .namespaces
        .iter()
        .map(|n| (n.function, n.nsid, n.block_shift, n.blocks, n.backend, 0u8))
        .chain(c.subsystems.iter().enumerate().flat_map(|(s, sub)| {
            sub.namespaces.iter().enumerate().map(move |(i, n)| (u16::MAX, i as u32 + 1, n.block_shift, n.blocks, n.backend, s as u8 + 1))
        }));
    let nrec = c.namespaces.len() + c.subsystems.iter().map(|s| s.namespaces.len()).sum::<usize>();
    let port_off = ns_off + nrec * b::RECORD;
    let ctrl_off = port_off + c.ports.len() * b::PORT_RECORD;
    let host_off = ctrl_off + c.controllers.len() * b::CTRL_RECORD;
    // The wrapped keys, in the order of the namespaces they encrypt.
    let key_of = |function: u16, nsid: u32| c.ns_keys.iter().find(|k| (k.function, k.nsid) == (function, nsid));
    let keys = c.namespaces.iter().filter_map(|n| key_of(n.function, n.nsid));
    let nkeys = keys.clone().count();
    let key_off = host_off + b::HOST_RECORD;
    let ec_off = key_off + nkeys * b::KEY_RECORD_WRAPPED;
    let mgmt_off = ec_off + c.ec_volumes.len() * b::EC_RECORD;
    let sub_off = mgmt_off + usize::from(c.management.is_some()) * b::MGMT_RECORD;
    let len = sub_off + c.subsystems.len() * SUBSYS_RECORD;
    let out = out.get_mut(..len)?;
    out.fill(0);
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(b::HDR_MAGIC, &b::MAGIC.to_le_bytes());
    put(b::HDR_VERSION, &b::VERSION.to_le_bytes());
    put(b::HDR_COUNT, &(nrec as u16).to_le_bytes());
    put(b::HDR_SUBSYS, &(c.subsystems.len() as u16).to_le_bytes());
    put(b::HDR_PORTS, &(c.ports.len() as u16).to_le_bytes());
    put(b::HDR_CTRLS, &(c.controllers.len() as u16).to_le_bytes());
    let flags = u16::from(c.header_digest) * b::FLAG_HDGST
        | u16::from(c.data_digest) * b::FLAG_DDGST
        | u16::from(c.lro) * b::FLAG_LRO
        | u16::from(nkeys > 0) * b::FLAG_KEYS_WRAPPED;
    put(b::HDR_FLAGS, &flags.to_le_bytes());
    put(b::HDR_TCP_MIN_RTO_MS, &c.tcp_min_rto_ms.to_le_bytes());
    put(b::HDR_IO_TIMEOUT_US, &c.io_timeout_us.to_le_bytes());
    put(b::HDR_EC_VOLUMES, &(c.ec_volumes.len() as u16).to_le_bytes());
    put(b::HDR_KEYS, &(nkeys as u16).to_le_bytes());
    for (i, k) in keys.enumerate() {
        put(key_off + i * b::KEY_RECORD_WRAPPED, &k.wrapped);
    }
    let mut next_key = 0u16;
    for (i, (function, nsid, block_shift, blocks, backend, sub)) in records.enumerate() {
        let r = ns_off + i * b::RECORD;
        put(r + b::REC_FUNCTION, &function.to_le_bytes());
        put(r + b::REC_SUBSYS, &[sub]);
        put(r + b::REC_LBA_SHIFT, &[block_shift]);
        put(r + b::REC_NSID, &nsid.to_le_bytes());
        put(r + b::REC_BLOCKS, &blocks.to_le_bytes());
        if sub == 0 && key_of(function, nsid).is_some() {
            put(r + b::REC_CRYPTO, &[b::CRYPTO_AES_XTS]);
            put(r + b::REC_KEY, &next_key.to_le_bytes());
            next_key += 1;
        }
        match backend {
            Backend::Ram => put(r + b::REC_BACKEND, &[b::BACKEND_RAM]),
            Backend::Remote { controller, nsid } => {
                put(r + b::REC_BACKEND, &[b::BACKEND_NVMF]);
                put(r + b::REC_CTRL, &controller.to_le_bytes());
                put(r + b::REC_REMOTE_NSID, &nsid.to_le_bytes());
            }
            Backend::Local { ssd, nsid } => {
                put(r + b::REC_BACKEND, &[b::BACKEND_LOCAL]);
                put(r + b::REC_CTRL, &ssd.to_le_bytes());
                put(r + b::REC_REMOTE_NSID, &nsid.to_le_bytes());
            }
            Backend::Ec { volume } => {
                put(r + b::REC_BACKEND, &[b::BACKEND_EC]);
                put(r + b::REC_CTRL, &volume.to_le_bytes());
            }
        }
    }
    for (i, v) in c.ec_volumes.iter().enumerate() {
        let r = ec_off + i * b::EC_RECORD;
        put(r + b::EC_K, &[v.k, v.m, v.spares]);
        put(r + b::EC_SCRUB_AT_US, &v.scrub_at_us.to_le_bytes());
        put(r + b::EC_SCRUB_EVERY_MS, &v.scrub_every_ms.to_le_bytes());
        for (j, (ctrl, nsid)) in v.members.iter().enumerate() {
            let e = r + b::EC_MEMBERS + j * b::EC_MEMBER;
            put(e + b::EC_MEMBER_CTRL, &ctrl.to_le_bytes());
            put(e + b::EC_MEMBER_NSID, &nsid.to_le_bytes());
        }
    }
    for (i, p) in c.ports.iter().enumerate() {
        let r = port_off + i * b::PORT_RECORD;
        put(r + b::PORT_IP, &p.ip);
        put(r + b::PORT_PREFIX, &[p.prefix]);
        put(r + b::PORT_MTU, &p.mtu.to_le_bytes());
    }
    for (i, k) in c.controllers.iter().enumerate() {
        let r = ctrl_off + i * b::CTRL_RECORD;
        put(r + b::CTRL_TRADDR, &k.traddr);
        put(r + b::CTRL_TRSVCID, &k.trsvcid.to_le_bytes());
        put(r + b::CTRL_SUBNQN, k.subnqn.as_bytes());
    }
    put(host_off + b::HOST_NQN, c.host_nqn.as_bytes());
    put(host_off + b::HOST_ID, &c.host_id);
    if let Some(m) = &c.management {
        put(b::HDR_MGMT, &1u16.to_le_bytes());
        put(mgmt_off + b::MGMT_PORT, &[m.port, m.allow.len() as u8]);
        put(mgmt_off + b::MGMT_TCP_PORT, &m.tcp_port.to_le_bytes());
        put(mgmt_off + b::MGMT_REQUEST_TIMEOUT_MS, &m.request_timeout_ms.to_le_bytes());
        put(mgmt_off + b::MGMT_TOKEN_LEN_OFF, &[m.token.len() as u8]);
        put(mgmt_off + b::MGMT_TOKEN, m.token.as_bytes());
        for (i, (ip, prefix)) in m.allow.iter().enumerate() {
            let e = mgmt_off + b::MGMT_ALLOW + i * b::MGMT_ALLOW_ENTRY;
            put(e, ip);
            put(e + 4, &[*prefix]);
        }
    }
    for (i, sub) in c.subsystems.iter().enumerate() {
        let r = sub_off + i * SUBSYS_RECORD;
        put(r + b::SUBSYS_NQN, nqn_bytes(&sub.nqn));
        put(r + b::SUBSYS_TRSVCID, &sub.trsvcid.to_le_bytes());
        put(r + b::SUBSYS_PORTS, &[sub.ports, sub.allow_hosts.len() as u8]);
        for (k, h) in sub.allow_hosts.iter().enumerate() {
            put(r + b::SUBSYS_HOSTS + k * NQN_LEN, nqn_bytes(h));
        }
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sit_where_the_layout_says() {
        let c = crate::tests::sample();
        let mut v = [0u8; 8192];
        let len = render(&c, &mut v).unwrap();
        assert_eq!(&v[..4], b"DPUC");
        let u16_at = |at: usize| u16::from_le_bytes([v[at], v[at + 1]]);
        assert_eq!((u16_at(b::HDR_COUNT), u16_at(b::HDR_SUBSYS)), (4, 1), "2 function namespaces, 2 of the subsystem");
        assert_eq!(v[b::HDR_FLAGS], b::FLAG_LRO as u8);
        let r1 = b::HEADER + b::RECORD;
        assert_eq!((v[r1 + b::REC_BACKEND], v[r1 + b::REC_LBA_SHIFT]), (b::BACKEND_NVMF, 12));
        let (r2, r3) = (b::HEADER + 2 * b::RECORD, b::HEADER + 3 * b::RECORD);
        assert_eq!((u16_at(r2 + b::REC_FUNCTION), v[r2 + b::REC_SUBSYS], u16_at(r2 + b::REC_NSID)), (0xffff, 1, 1));
        assert_eq!((v[r3 + b::REC_BACKEND], u16_at(r3 + b::REC_CTRL), v[r3 + b::REC_SUBSYS], u16_at(r3 + b::REC_NSID)), (b::BACKEND_LOCAL, 2, 1, 2));
        let ports = b::HEADER + 4 * b::RECORD;
        assert_eq!(&v[ports..ports + 4], &[10, 0, 0, 1]);
        let ctrl = ports + b::PORT_RECORD;
        assert_eq!(&v[ctrl + b::CTRL_SUBNQN..ctrl + b::CTRL_SUBNQN + 4], b"nqn.");
        let mgmt = ctrl + b::CTRL_RECORD + b::HOST_RECORD;
        let sub = mgmt + b::MGMT_RECORD;
        assert_eq!(len, sub + SUBSYS_RECORD);
        assert!(v[sub + b::SUBSYS_NQN..].starts_with(b"nqn.2026-12.io.dpusim:aff0\0"));
        assert_eq!((u16_at(sub + b::SUBSYS_TRSVCID), v[sub + b::SUBSYS_PORTS], v[sub + b::SUBSYS_HOST_COUNT]), (4420, 1, 1));
        assert!(v[sub + b::SUBSYS_HOSTS..].starts_with(b"nqn.2014-08.org.nvmexpress:uuid:h1\0"));
        assert_eq!(u16::from_le_bytes([v[b::HDR_MGMT], v[b::HDR_MGMT + 1]]), 1);
        assert_eq!(&v[mgmt + b::MGMT_PORT..mgmt + b::MGMT_PORT + 4], &[0, 1, 0x8c, 0x14], "port 0, 1 allow entry, TCP 5260");
        assert_eq!(&v[mgmt + b::MGMT_ALLOW..mgmt + b::MGMT_ALLOW + 5], &[10, 0, 0, 240, 28]);
        assert_eq!(&v[mgmt + b::MGMT_TOKEN..mgmt + b::MGMT_TOKEN + 6], b"t0ken\0");
        assert_eq!(render(&c, &mut [0u8; 64]), None);
    }

    /// A namespace with a wrapped key: its record names key record 0,
    /// which is the blob as stored; the header says the keys are wrapped.
    #[test]
    fn wrapped_keys_become_key_records() {
        let mut c = crate::tests::sample();
        let mut wrapped = heapless::Vec::new();
        wrapped.extend_from_slice(&[0xc3; crate::WRAPPED_KEY_LEN]).unwrap();
        c.ns_keys.push(crate::NsKey { function: 1, nsid: 1, wrapped }).unwrap();
        let mut v = [0u8; 8192];
        let len = render(&c, &mut v).unwrap();
        let u16_at = |at: usize| u16::from_le_bytes([v[at], v[at + 1]]);
        assert_eq!(u16_at(b::HDR_KEYS), 1);
        assert_ne!(u16_at(b::HDR_FLAGS) & b::FLAG_KEYS_WRAPPED, 0);
        let (r0, r1) = (b::HEADER, b::HEADER + b::RECORD);
        assert_eq!((v[r0 + b::REC_CRYPTO], v[r1 + b::REC_CRYPTO], u16_at(r1 + b::REC_KEY)), (b::CRYPTO_NONE, b::CRYPTO_AES_XTS, 0));
        let key_off = b::HEADER + 4 * b::RECORD + b::PORT_RECORD + b::CTRL_RECORD + b::HOST_RECORD;
        assert_eq!(&v[key_off..key_off + b::KEY_RECORD_WRAPPED], &[0xc3; b::KEY_RECORD_WRAPPED]);
        let mut plain = [0u8; 8192];
        let plain_len = render(&crate::tests::sample(), &mut plain).unwrap();
        assert_eq!(len, plain_len + b::KEY_RECORD_WRAPPED);
        assert_eq!(v[key_off + b::KEY_RECORD_WRAPPED..len], plain[key_off..plain_len], "the records after the keys");
    }
}
