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
    assert_eq!(remote.stat, remote.index, "a boot namespace counts its I/O in the slot of its index");
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

#[test]
fn encrypted_namespaces_name_a_valid_key_record() {
    let mut blob = Blob::new();
    blob.ns.push((1, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    blob.ns.push((1, b::BACKEND_RAM, 12, 2, 8, 0, 0));
    let key: [u8; 64] = core::array::from_fn(|i| i as u8);
    // The blob with one key record appended, record 1 encrypted with it.
    let with = |crypto: u8, k: u16, key: &[u8; 64]| {
        let mut v = blob.bytes();
        v[b::HDR_KEYS..b::HDR_KEYS + 2].copy_from_slice(&1u16.to_le_bytes());
        let r = b::HEADER + b::RECORD;
        v[r + b::REC_CRYPTO] = crypto;
        v[r + b::REC_KEY..r + b::REC_KEY + 2].copy_from_slice(&k.to_le_bytes());
        v.extend_from_slice(key);
        v
    };
    let bytes = with(b::CRYPTO_AES_XTS, 0, &key);
    assert_eq!(blob_len(&bytes[..b::HEADER]), bytes.len());
    let (r, t, _) = parse_blob(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!((t.namespace(1, 1).unwrap().crypto, t.namespace(1, 2).unwrap().crypto), (None, Some(0)));
    assert_eq!(t.key_count(), 1);
    assert_eq!(&bytes[t.key_range(0).unwrap()], &key[..]);
    assert!(t.key_range(1).is_none());
    // A key record beyond the count, an unknown cipher, equal halves.
    assert_eq!(parse_blob(&with(b::CRYPTO_AES_XTS, 1, &key)).0, Err(ConfigError::BadKey { index: 1 }));
    assert_eq!(parse_blob(&with(9, 0, &key)).0, Err(ConfigError::BadKey { index: 1 }));
    assert_eq!(parse_blob(&with(b::CRYPTO_AES_XTS, 0, &[7; 64])).0, Err(ConfigError::BadKey { index: 1 }));
    // The key records do not fit the window.
    let bytes = with(b::CRYPTO_AES_XTS, 0, &key);
    assert_eq!(parse_blob(&bytes[..bytes.len() - 1]).0, Err(ConfigError::TooMany(2)));
}

/// Format 10 with `FLAG_KEYS_WRAPPED`: key records are 72-byte wrapped
/// keys (RFC 3394 blobs the engines unwrap), not 64-byte keys; the
/// parser cannot judge the key inside, the engine does.
#[test]
fn wrapped_key_records_are_72_bytes() {
    let mut blob = Blob::new();
    blob.ns.push((1, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    let with = |version: u16, nkeys: u16| {
        let mut v = blob.bytes();
        v[b::HDR_VERSION..b::HDR_VERSION + 2].copy_from_slice(&version.to_le_bytes());
        v[b::HDR_FLAGS..b::HDR_FLAGS + 2].copy_from_slice(&b::FLAG_KEYS_WRAPPED.to_le_bytes());
        v[b::HDR_KEYS..b::HDR_KEYS + 2].copy_from_slice(&nkeys.to_le_bytes());
        let r = b::HEADER;
        v[r + b::REC_CRYPTO] = b::CRYPTO_AES_XTS;
        v[r + b::REC_KEY..r + b::REC_KEY + 2].copy_from_slice(&(nkeys - 1).to_le_bytes());
        for k in 0..nkeys {
            v.extend_from_slice(&[0xa6 ^ k as u8; b::KEY_RECORD_WRAPPED]);
        }
        v
    };
    let bytes = with(b::VERSION, 2);
    assert_eq!(blob_len(&bytes[..b::HEADER]), bytes.len());
    let (r, t, _) = parse_blob(&bytes);
    assert_eq!(r, Ok(()), "equal 32-byte halves of a blob are not a key's halves");
    assert!(t.keys_wrapped());
    assert_eq!(t.namespace(1, 1).unwrap().crypto, Some(1));
    let range = t.key_range(1).unwrap();
    assert_eq!((range.len(), &bytes[range]), (b::KEY_RECORD_WRAPPED, &[0xa6 ^ 1; b::KEY_RECORD_WRAPPED][..]));
    assert_eq!(parse_blob(&bytes[..bytes.len() - 1]).0, Err(ConfigError::TooMany(1)), "the last record cut short");
    // Before format 10 the flag bit means nothing: 64-byte records.
    let old = with(9, 1);
    assert_eq!(blob_len(&old[..b::HEADER]), old.len() - dpu_hal::regs::crypto::WRAP_OVERHEAD);
}

#[test]
fn erasure_coded_namespaces_name_a_valid_volume() {
    let mut blob = Blob::new();
    for t in 0..6u8 {
        blob.ctrls.push(([10, 0, 0, 10 + t], 4420, b"nqn.2026-11.io.dpusim:t"));
    }
    // 4+2 stripes of 4 KiB fragments: 16 KiB of data = 32 blocks of 512 B.
    blob.ns.push((1, b::BACKEND_EC, 9, 1, 32 * 100, 0, 0));
    // The blob with one EC volume record appended (k, m, members).
    let with = |k: u8, m: u8, members: &[(u16, u32)], blocks: u64| {
        let mut b2 = Blob { ns: blob.ns.clone(), ports: blob.ports.clone(), ctrls: blob.ctrls.clone(), host_nqn: blob.host_nqn };
        b2.ns[0].4 = blocks;
        let mut v = b2.bytes();
        v[b::HDR_EC_VOLUMES..b::HDR_EC_VOLUMES + 2].copy_from_slice(&1u16.to_le_bytes());
        let mut rec = vec![0u8; b::EC_RECORD];
        rec[b::EC_K] = k;
        rec[b::EC_M] = m;
        for (j, &(c, n)) in members.iter().enumerate() {
            let e = b::EC_MEMBERS + j * b::EC_MEMBER;
            rec[e + b::EC_MEMBER_CTRL..e + b::EC_MEMBER_CTRL + 2].copy_from_slice(&c.to_le_bytes());
            rec[e + b::EC_MEMBER_NSID..e + b::EC_MEMBER_NSID + 4].copy_from_slice(&n.to_le_bytes());
        }
        v.extend_from_slice(&rec);
        v
    };
    let six: Vec<(u16, u32)> = (0..6).map(|c| (c, 1)).collect();
    let bytes = with(4, 2, &six, 3200);
    assert_eq!(blob_len(&bytes[..b::HEADER]), bytes.len());
    let (r, t, allocs) = parse_blob(&bytes);
    assert_eq!(r, Ok(()));
    assert!(allocs.is_empty(), "an EC volume takes no DPU RAM");
    let ns = t.namespace(1, 1).unwrap();
    assert_eq!(ns.backend, Backend::Ec { vol: 0 });
    let v = t.ec_volume(0).unwrap();
    assert_eq!((v.k, v.m, v.width(), &v.members[..6]), (4, 2, 6, &six[..]));
    // Fragments rotate: stripe 0 puts data 0 on member 0, stripe 1 on member 1;
    // parity 5 of stripe 3 sits on member (5 + 3) mod 6 = 2.
    assert_eq!((v.member_of(0, 0), v.member_of(1, 0), v.member_of(3, 5)), (0, 1, 2));
    let bad = |bytes: Vec<u8>| parse_blob(&bytes).0;
    // Not whole stripes; k or m zero or beyond the engine; a member on a
    // controller that does not exist, with nsid 0, twice; members missing.
    assert_eq!(bad(with(4, 2, &six, 3201)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(with(0, 2, &six[..2], 3200)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(with(4, 0, &six[..4], 3200)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(with(4, 5, &six, 3200)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(with(33, 1, &six, 33 * 8 * 100)), Err(ConfigError::BadEc { index: 0 }));
    let mut m = six.clone();
    m[5] = (6, 1);
    assert_eq!(bad(with(4, 2, &m, 3200)), Err(ConfigError::BadEc { index: 0 }));
    m[5] = (5, 0);
    assert_eq!(bad(with(4, 2, &m, 3200)), Err(ConfigError::BadEc { index: 0 }));
    m[5] = (0, 1);
    assert_eq!(bad(with(4, 2, &m, 3200)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(with(4, 2, &six[..5], 3200)), Err(ConfigError::BadEc { index: 0 }), "member 5 reads as controller 0 nsid 0");
    // A namespace naming a volume record that is not there.
    let mut v = with(4, 2, &six, 3200);
    v[b::HEADER + b::REC_CTRL] = 1;
    assert_eq!(bad(v), Err(ConfigError::BadEc { index: 0 }));
    // The volume record does not fit the window.
    let bytes = with(4, 2, &six, 3200);
    assert_eq!(parse_blob(&bytes[..bytes.len() - 1]).0, Err(ConfigError::TooMany(1)));

    // Format 6: two spares after the six members, and a scrub time.
    let eight: Vec<(u16, u32)> = (0..6).map(|c| (c, 1)).chain([(0, 2), (1, 2)]).collect();
    let spared = |members: &[(u16, u32)], spares: u8| {
        let mut v = with(4, 2, members, 3200);
        let r = v.len() - b::EC_RECORD;
        v[r + b::EC_SPARES] = spares;
        v[r + b::EC_SCRUB_AT_US..r + b::EC_SCRUB_AT_US + 4].copy_from_slice(&20_000u32.to_le_bytes());
        v
    };
    let (r, t, _) = parse_blob(&spared(&eight, 2));
    assert_eq!(r, Ok(()));
    let v = t.ec_volume(0).unwrap();
    assert_eq!((v.width(), v.spares, v.scrub_at_us), (6, 2, 20_000));
    assert_eq!((v.spare(0), v.spare(1), v.spare(2)), (Some((0, 2)), Some((1, 2)), None));
    // A spare that is also a member, or one past the member records.
    let mut dup = eight.clone();
    dup[7] = (3, 1);
    assert_eq!(bad(spared(&dup, 2)), Err(ConfigError::BadEc { index: 0 }));
    assert_eq!(bad(spared(&eight, 27)), Err(ConfigError::BadEc { index: 0 }));
    // Format 9: a scrub period after the member records.
    let mut v9 = spared(&eight, 2);
    let r = v9.len() - b::EC_RECORD;
    v9[r + b::EC_SCRUB_EVERY_MS..r + b::EC_SCRUB_EVERY_MS + 4].copy_from_slice(&86_400_000u32.to_le_bytes());
    let (r, t, _) = parse_blob(&v9);
    assert_eq!(r, Ok(()));
    assert_eq!((t.ec_volume(0).unwrap().scrub_at_us, t.ec_volume(0).unwrap().scrub_every_ms), (20_000, 86_400_000));
    // Format 8 records are 8 bytes shorter (no period): one still parses,
    // and its length is its header's.
    let mut v8 = spared(&eight, 2);
    v8.truncate(v8.len() - (b::EC_RECORD - b::EC_RECORD_V8));
    v8[b::HDR_VERSION..b::HDR_VERSION + 2].copy_from_slice(&8u16.to_le_bytes());
    assert_eq!(blob_len(&v8[..b::HEADER]), v8.len());
    let (r, t, _) = parse_blob(&v8);
    assert_eq!(r, Ok(()));
    assert_eq!((t.ec_volume(0).unwrap().spares, t.ec_volume(0).unwrap().scrub_every_ms), (2, 0));
    // A format 5 blob (no spares, no scrub) still parses.
    let mut v5 = with(4, 2, &six, 3200);
    v5.truncate(v5.len() - (b::EC_RECORD - b::EC_RECORD_V8));
    v5[b::HDR_VERSION..b::HDR_VERSION + 2].copy_from_slice(&5u16.to_le_bytes());
    let (r, t, _) = parse_blob(&v5);
    assert_eq!(r, Ok(()));
    assert_eq!((t.ec_volume(0).unwrap().spares, t.ec_volume(0).unwrap().scrub_at_us), (0, 0));
    v5[b::HDR_VERSION..b::HDR_VERSION + 2].copy_from_slice(&4u16.to_le_bytes());
    assert_eq!(parse_blob(&v5).0, Err(ConfigError::BadVersion(4)));
}

/// Appends a management record to a blob without keys or EC volumes.
fn with_mgmt(mut v: Vec<u8>, port: u8, tcp: u16, timeout: u16, allow: &[([u8; 4], u8)], token: &[u8]) -> Vec<u8> {
    let r = v.len();
    v.resize(r + b::MGMT_RECORD, 0);
    v[b::HDR_MGMT..b::HDR_MGMT + 2].copy_from_slice(&1u16.to_le_bytes());
    v[r + b::MGMT_PORT] = port;
    v[r + b::MGMT_ALLOW_COUNT] = allow.len() as u8;
    v[r + b::MGMT_TCP_PORT..r + b::MGMT_TCP_PORT + 2].copy_from_slice(&tcp.to_le_bytes());
    v[r + b::MGMT_REQUEST_TIMEOUT_MS..r + b::MGMT_REQUEST_TIMEOUT_MS + 2].copy_from_slice(&timeout.to_le_bytes());
    v[r + b::MGMT_TOKEN_LEN_OFF] = token.len() as u8;
    for (i, (ip, prefix)) in allow.iter().enumerate() {
        let e = r + b::MGMT_ALLOW + i * b::MGMT_ALLOW_ENTRY;
        v[e..e + 4].copy_from_slice(ip);
        v[e + 4] = *prefix;
    }
    v[r + b::MGMT_TOKEN..r + b::MGMT_TOKEN + token.len()].copy_from_slice(token);
    v
}

#[test]
fn the_management_record_is_parsed_and_checked() {
    // None in the header: no management server.
    let (r, t, _) = parse_blob(&Blob::new().bytes());
    assert_eq!(r, Ok(()));
    assert!(t.management().is_none());

    let blob = with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[([10, 0, 0, 0], 24), ([192, 168, 7, 7], 32)], b"s3cret");
    assert_eq!(blob_len(&blob), blob.len());
    let (r, t, _) = parse_blob(&blob);
    assert_eq!(r, Ok(()));
    let m = t.management().unwrap();
    assert_eq!((m.port, m.tcp_port, m.request_timeout_ms, m.token()), (0, 5260, 5000, &b"s3cret"[..]));
    assert!(m.allows([10, 0, 0, 200]));
    assert!(m.allows([192, 168, 7, 7]));
    assert!(!m.allows([192, 168, 7, 8]));
    assert!(!m.allows([10, 0, 1, 1]));
    // No allow-list: everyone; a /0 entry: everyone.
    let (_, t, _) = parse_blob(&with_mgmt(Blob::new().bytes(), 0, 1, 1, &[], b""));
    assert!(t.management().unwrap().allows([1, 2, 3, 4]) && t.management().unwrap().token().is_empty());
    let (_, t, _) = parse_blob(&with_mgmt(Blob::new().bytes(), 0, 1, 1, &[([0; 4], 0)], b""));
    assert!(t.management().unwrap().allows([9, 9, 9, 9]));

    // Changed at run time (`dpu_mgmt_set`): a new list and token replace
    // the old ones whole; too many entries or too long a token change
    // nothing.
    let mut m = *parse_blob(&blob).1.management().unwrap();
    assert!(m.set_allow(&[([172, 16, 0, 0], 16)]) && m.set_token(b"new"));
    assert!(m.allows([172, 16, 9, 9]) && !m.allows([10, 0, 0, 200]));
    assert_eq!(m.token(), b"new");
    assert!(!m.set_allow(&[([1, 1, 1, 1], 32); b::MGMT_ALLOW_MAX + 1]));
    assert!(!m.set_token(&[b'x'; b::MGMT_TOKEN_LEN + 1]));
    assert!(m.allows([172, 16, 9, 9]) && !m.allows([1, 1, 1, 1]) && m.token() == b"new");
    assert!(m.set_allow(&[]) && m.set_token(b""));
    assert!(m.allows([1, 1, 1, 1]) && m.token().is_empty());

    for bad in [
        with_mgmt(Blob::new().bytes(), 1, 5260, 5000, &[], b""),              // port 1 not configured
        with_mgmt(Blob::new().bytes(), 0, 0, 5000, &[], b""),                 // TCP port 0
        with_mgmt(Blob::new().bytes(), 0, 5260, 0, &[], b""),                 // no timeout
        with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[([10, 0, 0, 0], 33)], b""), // prefix > 32
        with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[], b"has space"),     // token not printable
    ] {
        assert_eq!(parse_blob(&bad).0, Err(ConfigError::BadMgmt));
    }
    let mut too_many = with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[], b"");
    let r = too_many.len() - b::MGMT_RECORD;
    too_many[r + b::MGMT_ALLOW_COUNT] = 9;
    assert_eq!(parse_blob(&too_many).0, Err(ConfigError::BadMgmt));
    let mut two = with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[], b"");
    two[b::HDR_MGMT] = 2;
    assert!(matches!(parse_blob(&two).0, Err(ConfigError::TooMany(_))));
    // A record cut short by the end of the blob.
    let short = with_mgmt(Blob::new().bytes(), 0, 5260, 5000, &[], b"");
    assert!(matches!(parse_blob(&short[..short.len() - 1]).0, Err(ConfigError::TooMany(_))));
}

#[test]
fn local_ssd_namespaces_from_format_7() {
    let mut blob = Blob::new();
    blob.ns.push((1, b::BACKEND_LOCAL, 9, 1, 2048, 3, 1));
    let bytes = blob.bytes();
    let (r, t, allocs) = parse_blob(&bytes);
    assert_eq!(r, Ok(()));
    assert!(allocs.is_empty(), "a local namespace takes no DDR");
    assert_eq!(t.namespace(1, 1).unwrap().backend, Backend::Local { ssd: 3, nsid: 1 });
    // Before format 7 there is no local backend.
    let mut v6 = bytes.clone();
    v6[b::HDR_VERSION..b::HDR_VERSION + 2].copy_from_slice(&6u16.to_le_bytes());
    assert_eq!(parse_blob(&v6).0, Err(ConfigError::BadRecord { index: 0 }));
    // A slot the chip's window lacks, NSID 0.
    let mut far = Blob::new();
    far.ns.push((1, b::BACKEND_LOCAL, 9, 1, 2048, dpu_hal::memory_map::SSD_SLOTS as u16, 1));
    assert_eq!(parse_blob(&far.bytes()).0, Err(ConfigError::BadRecord { index: 0 }));
    let mut zero = Blob::new();
    zero.ns.push((1, b::BACKEND_LOCAL, 9, 1, 2048, 0, 0));
    assert_eq!(parse_blob(&zero.bytes()).0, Err(ConfigError::BadRecord { index: 0 }));
}

/// Appends a target subsystem record to a blob built by `Blob::bytes`
/// (which has no management record) and names it in the header.
fn with_subsystem(mut v: Vec<u8>, nqn: &[u8], trsvcid: u16, ports: u8, hosts: &[&[u8]]) -> Vec<u8> {
    let n = u16::from_le_bytes([v[b::HDR_SUBSYS], v[b::HDR_SUBSYS + 1]]);
    let r = v.len();
    v.resize(r + b::SUBSYS_RECORD, 0);
    v[r..r + nqn.len()].copy_from_slice(nqn);
    v[r + b::SUBSYS_TRSVCID..r + b::SUBSYS_TRSVCID + 2].copy_from_slice(&trsvcid.to_le_bytes());
    v[r + b::SUBSYS_PORTS] = ports;
    v[r + b::SUBSYS_HOST_COUNT] = hosts.len() as u8;
    for (k, h) in hosts.iter().enumerate() {
        let at = r + b::SUBSYS_HOSTS + k * b::NQN_LEN;
        v[at..at + h.len()].copy_from_slice(h);
    }
    v[b::HDR_SUBSYS..b::HDR_SUBSYS + 2].copy_from_slice(&(n + 1).to_le_bytes());
    v
}

#[test]
fn target_subsystems_and_their_namespaces_from_format_8() {
    let mut blob = Blob::new();
    blob.ns.push((1, b::BACKEND_RAM, 9, 1, 2048, 0, 0));
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 4096, 0, 0));
    blob.ns.push((0, b::BACKEND_LOCAL, 12, 2, 256, 1, 1));
    let mut v = blob.bytes();
    for i in [1, 2] {
        v[b::HEADER + i * b::RECORD + b::REC_SUBSYS] = 1; // subsystem record 0
    }
    let v = with_subsystem(v, b"nqn.2026-12.io.dpu:ram", 4420, 0b1, &[b"nqn.host:a", b"nqn.host:b"]);
    assert_eq!(blob_len(&v[..b::HEADER]), v.len());
    let (r, t, _) = parse_blob(&v);
    assert_eq!(r, Ok(()));
    assert_eq!(t.subsystems(), 1);
    let s = t.subsystem(0).unwrap();
    assert_eq!((s.nqn(), s.trsvcid, s.ports), (&b"nqn.2026-12.io.dpu:ram"[..], 4420, 1));
    assert!(s.allows(b"nqn.host:a") && s.allows(b"nqn.host:b") && !s.allows(b"nqn.host:c") && !s.allows(b"nqn.host:"));
    // The subsystem's namespaces belong to no PCIe function.
    assert!(t.namespace(0, 1).is_none() && t.namespace(0, 2).is_none());
    assert_eq!(t.namespace(1, 1).unwrap().subsystem, None);
    let ns1 = t.subsystem_namespace(0, 1).unwrap();
    assert_eq!((ns1.function, ns1.geometry.blocks, ns1.subsystem), (u16::MAX, 4096, Some(0)));
    assert_eq!(t.subsystem_namespace(0, 2).unwrap().backend, Backend::Local { ssd: 1, nsid: 1 });
    assert!(t.subsystem_namespace(0, 3).is_none() && t.subsystem_namespace(1, 1).is_none());

    // Any host when the allow-list is empty.
    let mut blob = Blob::new();
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    let mut v = blob.bytes();
    v[b::HEADER + b::REC_SUBSYS] = 1;
    let any = with_subsystem(v.clone(), b"nqn.x:any", 4420, 1, &[]);
    let (r, t, _) = parse_blob(&any);
    assert_eq!(r, Ok(()));
    assert!(t.subsystem(0).unwrap().allows(b"nqn.whoever"));
    // Bad records: TCP port 0, no port, a port that is not configured,
    // an empty NQN; a namespace naming a missing subsystem.
    for (nqn, tcp, ports) in [(&b"nqn.x"[..], 0, 1), (b"nqn.x", 4420, 0), (b"nqn.x", 4420, 0b10), (b"", 4420, 1)] {
        let (r, _, _) = parse_blob(&with_subsystem(v.clone(), nqn, tcp, ports, &[]));
        assert_eq!(r, Err(ConfigError::BadSubsystem { index: 0 }), "{nqn:?} {tcp} {ports}");
    }
    v[b::HEADER + b::REC_SUBSYS] = 2;
    let (r, _, _) = parse_blob(&with_subsystem(v.clone(), b"nqn.x", 4420, 1, &[]));
    assert_eq!(r, Err(ConfigError::BadSubsystem { index: 1 }));
    // Two namespaces with one nsid in a subsystem.
    let mut blob = Blob::new();
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    blob.ns.push((0, b::BACKEND_RAM, 9, 1, 8, 0, 0));
    let mut v = blob.bytes();
    v[b::HEADER + b::REC_SUBSYS] = 1;
    v[b::HEADER + b::RECORD + b::REC_SUBSYS] = 1;
    let (r, _, _) = parse_blob(&with_subsystem(v, b"nqn.x", 4420, 1, &[]));
    assert_eq!(r, Err(ConfigError::BadRecord { index: 1 }));
}
