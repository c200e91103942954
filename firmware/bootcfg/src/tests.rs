extern crate std;

use super::*;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

/// A blob built field by field from the layout constants.
struct Blob {
    ns: Vec<(u16, u8, u8, u32, u64, u16, u32)>,
    ports: Vec<([u8; 4], u8, u16)>,
    ctrls: Vec<([u8; 4], u16, &'static [u8])>,
    host_nqn: &'static [u8],
}

impl Blob {
    fn new() -> Blob {
        Blob { ns: Vec::new(), ports: vec![([10, 0, 0, 1], 24, 1500)], ctrls: Vec::new(), host_nqn: b"nqn.2014-08.org.nvmexpress:uuid:h" }
    }

    fn bytes(&self) -> Vec<u8> {
        let port_off = b::HEADER + self.ns.len() * b::RECORD;
        let ctrl_off = port_off + self.ports.len() * b::PORT_RECORD;
        let host_off = ctrl_off + self.ctrls.len() * b::CTRL_RECORD;
        let mut v = vec![0u8; host_off + b::HOST_RECORD];
        let put = |v: &mut Vec<u8>, at: usize, x: &[u8]| v[at..at + x.len()].copy_from_slice(x);
        put(&mut v, b::HDR_MAGIC, &b::MAGIC.to_le_bytes());
        put(&mut v, b::HDR_VERSION, &b::VERSION.to_le_bytes());
        put(&mut v, b::HDR_COUNT, &(self.ns.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_PORTS, &(self.ports.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_CTRLS, &(self.ctrls.len() as u16).to_le_bytes());
        put(&mut v, b::HDR_FLAGS, &b::FLAG_LRO.to_le_bytes());
        put(&mut v, b::HDR_TCP_MIN_RTO_MS, &7u16.to_le_bytes());
        put(&mut v, b::HDR_IO_TIMEOUT_US, &30_000u32.to_le_bytes());
        for (i, &(f, backend, shift, nsid, blocks, ctrl, rnsid)) in self.ns.iter().enumerate() {
            let r = b::HEADER + i * b::RECORD;
            put(&mut v, r + b::REC_FUNCTION, &f.to_le_bytes());
            put(&mut v, r + b::REC_BACKEND, &[backend, shift]);
            put(&mut v, r + b::REC_NSID, &nsid.to_le_bytes());
            put(&mut v, r + b::REC_BLOCKS, &blocks.to_le_bytes());
            put(&mut v, r + b::REC_CTRL, &ctrl.to_le_bytes());
            put(&mut v, r + b::REC_REMOTE_NSID, &rnsid.to_le_bytes());
        }
        for (i, &(ip, prefix, mtu)) in self.ports.iter().enumerate() {
            let r = port_off + i * b::PORT_RECORD;
            put(&mut v, r + b::PORT_IP, &ip);
            put(&mut v, r + b::PORT_PREFIX, &[prefix]);
            put(&mut v, r + b::PORT_MTU, &mtu.to_le_bytes());
        }
        for (i, &(ip, port, nqn)) in self.ctrls.iter().enumerate() {
            let r = ctrl_off + i * b::CTRL_RECORD;
            put(&mut v, r + b::CTRL_TRADDR, &ip);
            put(&mut v, r + b::CTRL_TRSVCID, &port.to_le_bytes());
            put(&mut v, r + b::CTRL_SUBNQN, nqn);
        }
        put(&mut v, host_off + b::HOST_NQN, self.host_nqn);
        put(&mut v, host_off + b::HOST_ID, &[0xab; 16]);
        v
    }
}

fn parse_blob(blob: &[u8]) -> (Result<(), ConfigError>, Box<Table>, Vec<u64>) {
    let mut t = Box::new(Table::EMPTY);
    let mut allocs = Vec::new();
    let mut next = 0x4400_0000u64;
    let r = parse(blob, &mut t, |bytes| {
        allocs.push(bytes);
        let base = next;
        next += bytes;
        Some(base)
    });
    (r, t, allocs)
}

#[test]
fn ram_and_remote_namespaces() {
    let mut blob = Blob::new();
    blob.ctrls.push(([10, 0, 0, 10], 4420, b"nqn.2026-11.io.dpusim:t0"));
    blob.ns.push((1, b::BACKEND_RAM, 9, 1, 2048, 0, 0));
    blob.ns.push((2, b::BACKEND_NVMF, 12, 3, 256, 0, 7));
    let bytes = blob.bytes();
    assert_eq!(blob_len(&bytes[..b::HEADER]), bytes.len());
    let (r, t, allocs) = parse_blob(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(allocs, vec![2048 * 512], "one RAM namespace allocated, by its byte size");
    let ram = t.namespace(1, 1).unwrap();
    assert_eq!(ram.backend, Backend::Ram(RamBdev::new(0x4400_0000, 2048, 9)));
    let remote = t.namespace(2, 3).unwrap();
    assert_eq!((remote.backend, remote.index, remote.geometry.block_shift), (Backend::Remote { ctrl: 0, nsid: 7 }, 1, 12));
    assert!(t.namespace(1, 2).is_none() && t.namespace(999, 1).is_none() && t.namespace(1, u32::MAX).is_none());
    assert_eq!(t.namespaces().count(), 2);
    assert_eq!(t.ports(), &[PortCfg { ip: [10, 0, 0, 1], prefix: 24, mtu: 1500 }]);
    assert_eq!((t.controllers(), t.controller(0).unwrap().subnqn()), (1, &b"nqn.2026-11.io.dpusim:t0"[..]));
    assert_eq!(t.host(), (&b"nqn.2014-08.org.nvmexpress:uuid:h"[..], [0xab; 16]));
    assert_eq!((t.flags(), t.tcp_min_rto_ms(), t.io_timeout_us()), (b::FLAG_LRO, 7, 30_000));
}

#[test]
fn no_configuration_is_empty_not_an_error() {
    let (r, t, _) = parse_blob(&[0u8; 64]);
    assert_eq!(r, Ok(()));
    assert_eq!((t.namespaces().count(), t.ports().len()), (0, 0));
    assert_eq!(parse_blob(&[]).0, Ok(()), "an empty window reads as zeros");
}

#[test]
fn bad_headers_and_records_are_rejected() {
    let mut bytes = Blob::new().bytes();
    bytes[0] ^= 1;
    assert!(matches!(parse_blob(&bytes).0, Err(ConfigError::BadMagic(_))));
    let mut bytes = Blob::new().bytes();
    bytes[b::HDR_VERSION] = 99;
    assert_eq!(parse_blob(&bytes).0, Err(ConfigError::BadVersion(99)));
    // The records do not fit the window.
    let bytes = Blob::new().bytes();
    assert_eq!(parse_blob(&bytes[..bytes.len() - 1]).0, Err(ConfigError::TooMany(0)));
    let mut blob = Blob::new();
    blob.ports[0].1 = 31;
    assert_eq!(parse_blob(&blob.bytes()).0, Err(ConfigError::BadPort { index: 0 }));
    let mut blob = Blob::new();
    blob.ctrls.push(([10, 0, 0, 10], 4420, b"nqn with space"));
    assert_eq!(parse_blob(&blob.bytes()).0, Err(ConfigError::BadController { index: 0 }));
    for rec in [
        (MAX_FUNCTIONS as u16, b::BACKEND_RAM, 9, 1, 8, 0, 0),
        (0, b::BACKEND_RAM, 9, MAX_NSID + 1, 8, 0, 0),
        (0, b::BACKEND_RAM, 13, 1, 8, 0, 0),
        (0, b::BACKEND_RAM, 9, 1, 0, 0, 0),
        (0, b::BACKEND_RAM, 12, 1, u64::MAX >> 8, 0, 0),
        (0, b::BACKEND_NVMF, 9, 1, 8, 0, 1),
        (0, 7, 9, 1, 8, 0, 0),
    ] {
        let mut blob = Blob::new();
        blob.ns.push(rec);
        assert_eq!(parse_blob(&blob.bytes()).0, Err(ConfigError::BadRecord { index: 0 }), "{rec:?}");
    }
    let mut blob = Blob::new();
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    assert_eq!(parse_blob(&blob.bytes()).0, Err(ConfigError::BadRecord { index: 1 }), "nsid used twice");
    let mut blob = Blob::new();
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    let mut t = Box::new(Table::EMPTY);
    assert_eq!(parse(&blob.bytes(), &mut t, |_| None), Err(ConfigError::OutOfMemory { index: 0 }));
}

#[test]
fn blob_len_follows_the_header_counts() {
    let mut h = [0u8; b::HEADER];
    assert_eq!(blob_len(&h), b::HEADER + b::HOST_RECORD);
    h[b::HDR_COUNT] = 2;
    h[b::HDR_PORTS] = 1;
    h[b::HDR_CTRLS] = 3;
    assert_eq!(blob_len(&h), b::HEADER + 2 * b::RECORD + b::PORT_RECORD + 3 * b::CTRL_RECORD + b::HOST_RECORD);
    assert_eq!(blob_len(&[]), b::HEADER + b::HOST_RECORD, "a short header reads as zeros");
}
