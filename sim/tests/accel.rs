//! The accelerators driven through their registers (`dpu_hal::regs::{queue,
//! crypto, ec, trng, dma}`), as the firmware drivers do: key slots, XTS /
//! GCM / SHA-256 against independent RustCrypto computations, host
//! sources and destinations behind the IOMMU, error statuses for bad
//! descriptors, engine contention, erasure-coding parity and rebuild,
//! CRC32C in the DMA engines, the TRNG's health tests.

mod common;

use aes::cipher::KeyInit;
use common::{data_addr, machine_on, Prog};
use dpu_hal::regs::{accel as st, crypto as cr, dma as dr, ec as er, queue as q, trng as tr};
use dpu_sim::pcie::HostOp;
use dpu_sim::Machine;

fn machine() -> Machine {
    let mut m = machine_on(&Prog::new().halt(), 1, 1);
    m.run_slice(1000);
    m
}

fn wr(m: &mut Machine, addr: u64, size: u8, v: u64) {
    let now = m.now;
    assert!(m.bus.mmio_write(0, now, addr, size, v), "register {addr:#x} refused");
}

fn rd(m: &mut Machine, addr: u64, size: u8) -> u64 {
    let now = m.now;
    m.bus.mmio_read(0, now, addr, size).expect("register readable")
}

fn put(m: &mut Machine, addr: u64, data: &[u8]) {
    m.bus.mem.write_bytes(addr, data).unwrap();
}

fn get(m: &mut Machine, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    m.bus.mem.read_bytes(addr, &mut v).unwrap();
    v
}

/// One accelerator queue as the firmware sees it.
struct Queue {
    regs: u64,
    ring: u64,
    comp: u64,
    size: u32,
    tail: u32,
    head: u32,
}

impl Queue {
    fn start(m: &mut Machine, regs: u64, mem: u64) -> Queue {
        let size = 16;
        let comp = mem + 64 * u64::from(size);
        put(m, comp, &vec![0u8; 16 * size as usize]);
        wr(m, regs + q::RING_BASE, 8, mem);
        wr(m, regs + q::RING_SIZE, 4, u64::from(size));
        wr(m, regs + q::COMP_BASE, 8, comp);
        wr(m, regs + q::NOTIFY, 4, 0);
        wr(m, regs + q::CONTROL, 4, 1);
        assert_eq!(rd(m, regs + q::STATUS, 4), u64::from(q::STATUS_RUNNING));
        Queue { regs, ring: mem, comp, size, tail: 0, head: 0 }
    }

    fn push(&mut self, m: &mut Machine, d: &[u8; 64]) {
        let slot = u64::from(self.tail % self.size);
        put(m, self.ring + 64 * slot, d);
        self.tail += 1;
    }

    fn kick(&mut self, m: &mut Machine) {
        wr(m, self.regs + q::TAIL, 4, u64::from(self.tail));
    }

    /// Waits for the next completion: (cookie, status, bytes, cycle seen).
    fn wait(&mut self, m: &mut Machine) -> (u32, u32, u32, u64) {
        let at = self.comp + 16 * u64::from(self.head % self.size);
        let phase = (self.head / self.size) % 2 == 0;
        for _ in 0..10_000 {
            let e = get(m, at, 16);
            if (e[15] & 1 == 1) == phase {
                self.head += 1;
                let w = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().unwrap());
                return (w(0), w(4), w(8), m.now);
            }
            m.run_slice(50);
        }
        panic!("no completion");
    }
}

#[derive(Default, Clone, Copy)]
struct Cd {
    src: u64,
    dst: u64,
    len: u32,
    op: u8,
    flags: u8,
    key: u16,
    src_fn: u16,
    dst_fn: u16,
    cookie: u32,
    param: [u8; 16],
    aad: u64,
    aad_len: u32,
}

impl Cd {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[cr::DESC_SRC..][..8].copy_from_slice(&self.src.to_le_bytes());
        b[cr::DESC_DST..][..8].copy_from_slice(&self.dst.to_le_bytes());
        b[cr::DESC_LEN..][..4].copy_from_slice(&self.len.to_le_bytes());
        b[cr::DESC_OP] = self.op;
        b[cr::DESC_FLAGS] = self.flags | q::FLAG_END;
        b[cr::DESC_KEY..][..2].copy_from_slice(&self.key.to_le_bytes());
        b[cr::DESC_SRC_FN..][..2].copy_from_slice(&self.src_fn.to_le_bytes());
        b[cr::DESC_DST_FN..][..2].copy_from_slice(&self.dst_fn.to_le_bytes());
        b[cr::DESC_COOKIE..][..4].copy_from_slice(&self.cookie.to_le_bytes());
        b[cr::DESC_PARAM..][..16].copy_from_slice(&self.param);
        b[cr::DESC_AAD..][..8].copy_from_slice(&self.aad.to_le_bytes());
        b[cr::DESC_AAD_LEN..][..4].copy_from_slice(&self.aad_len.to_le_bytes());
        b
    }
    /// Without FLAG_END (the middle of a chain).
    fn open(&self) -> [u8; 64] {
        let mut b = self.bytes();
        b[cr::DESC_FLAGS] &= !q::FLAG_END;
        b
    }
}

fn engine_base(m: &Machine, e: u64) -> u64 {
    m.chip.devices.crypto.base + e * cr::ENGINE
}

fn crypto_queue(m: &mut Machine, e: u64, qi: u64, mem: u64) -> Queue {
    let regs = engine_base(m, e) + cr::QUEUES + qi * q::SIZE;
    Queue::start(m, regs, mem)
}

const KEY_AREA: u64 = 0x8_0000;

fn xts_key() -> [u8; 64] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
}

/// Loads `key` of `kind` into `slot` through queue `qu`; the status.
fn load_key(m: &mut Machine, qu: &mut Queue, slot: u16, kind: u8, key: &[u8]) -> u32 {
    let at = data_addr() + KEY_AREA;
    put(m, at, key);
    let mut param = [0u8; 16];
    param[0] = kind;
    qu.push(m, &Cd { src: at, len: key.len() as u32, op: cr::OP_KEY_LOAD, key: slot, param, ..Cd::default() }.bytes());
    qu.kick(m);
    let s = qu.wait(m).1;
    put(m, at, &vec![0u8; key.len()]);
    s
}

fn reference_xts(key: &[u8; 64], dun: u64, du: usize, data: &mut [u8], encrypt: bool) {
    let x = xts_mode::Xts128::<aes::Aes256>::new(aes::Aes256::new_from_slice(&key[..32]).unwrap(), aes::Aes256::new_from_slice(&key[32..]).unwrap());
    if encrypt {
        x.encrypt_area(data, du, u128::from(dun), xts_mode::get_tweak_default);
    } else {
        x.decrypt_area(data, du, u128::from(dun), xts_mode::get_tweak_default);
    }
}

#[test]
fn xts_in_dpu_memory_matches_the_reference_and_round_trips() {
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 3, 0, base);
    assert_eq!(load_key(&mut m, &mut qu, 5, cr::KEY_XTS_AES256, &xts_key()), st::ST_OK);
    let eng = engine_base(&m, 3);
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 1);
    let pt: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 1) as u8).collect();
    let (src, dst) = (base + 0x1_0000, base + 0x2_0000);
    put(&mut m, src, &pt);
    for (du, flag) in [(512usize, 0u8), (4096, cr::FLAG_DU_4K)] {
        let mut param = [0u8; 16];
        param[..8].copy_from_slice(&1000u64.to_le_bytes());
        qu.push(&mut m, &Cd { src, dst, len: 8192, op: cr::OP_XTS_ENCRYPT, flags: flag, key: 5, cookie: 77, param, ..Cd::default() }.bytes());
        qu.kick(&mut m);
        let (cookie, status, bytes, _) = qu.wait(&mut m);
        assert_eq!((cookie, status, bytes), (77, st::ST_OK, 8192));
        let mut want = pt.clone();
        reference_xts(&xts_key(), 1000, du, &mut want, true);
        assert_eq!(get(&mut m, dst, 8192), want, "data unit {du}");
        // Decrypt in place.
        qu.push(&mut m, &Cd { src: dst, dst, len: 8192, op: cr::OP_XTS_DECRYPT, flags: flag, key: 5, param, ..Cd::default() }.bytes());
        qu.kick(&mut m);
        assert_eq!(qu.wait(&mut m).1, st::ST_OK);
        assert_eq!(get(&mut m, dst, 8192), pt);
    }
}

/// With FLAG_ZERO_PASS, an all-zero ciphertext unit decrypts to zeros (a
/// block never written), the others as usual.
#[test]
fn xts_zero_pass_leaves_unwritten_units_zero() {
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 1, 0, base);
    assert_eq!(load_key(&mut m, &mut qu, 0, cr::KEY_XTS_AES256, &xts_key()), st::ST_OK);
    let pt: Vec<u8> = (0..1024u32).map(|i| (i * 5 + 3) as u8).collect();
    let mut ct = pt.clone();
    reference_xts(&xts_key(), 40, 512, &mut ct, true);
    ct[512..].fill(0); // unit 41 never written
    let (src, dst) = (base + 0x1_0000, base + 0x2_0000);
    put(&mut m, src, &ct);
    let mut param = [0u8; 16];
    param[..8].copy_from_slice(&40u64.to_le_bytes());
    for (flags, second) in [(cr::FLAG_ZERO_PASS, vec![0u8; 512]), (0, {
        let mut z = vec![0u8; 512];
        reference_xts(&xts_key(), 41, 512, &mut z, false);
        z
    })] {
        qu.push(&mut m, &Cd { src, dst, len: 1024, op: cr::OP_XTS_DECRYPT, flags, param, ..Cd::default() }.bytes());
        qu.kick(&mut m);
        assert_eq!(qu.wait(&mut m).1, st::ST_OK);
        let out = get(&mut m, dst, 1024);
        assert_eq!(&out[..512], &pt[..512]);
        assert_eq!(&out[512..], &second[..], "flags {flags:#x}");
    }
}

#[test]
fn bad_descriptors_get_error_statuses_and_write_nothing() {
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 0, 0, base);
    let (src, dst) = (base + 0x1_0000, base + 0x2_0000);
    put(&mut m, src, &[0x5a; 4096]);
    put(&mut m, dst, &[0xee; 4096]);
    let xts = |len, key, src, dst, flags| Cd { src, dst, len, op: cr::OP_XTS_ENCRYPT, key, flags, ..Cd::default() };
    // No key in the slot, slot out of range, a GCM key used for XTS.
    assert_eq!(load_key(&mut m, &mut qu, 1, cr::KEY_GCM_AES256, &[3u8; 32]), st::ST_OK);
    for (d, want) in [
        (xts(512, 0, src, dst, 0), st::ST_BAD_KEY),
        (xts(512, 9999, src, dst, 0), st::ST_BAD_KEY),
        (xts(512, 1, src, dst, 0), st::ST_BAD_KEY),
    ] {
        qu.push(&mut m, &d.bytes());
        qu.kick(&mut m);
        assert_eq!(qu.wait(&mut m).1, want);
    }
    // Key material of the wrong length or kind; an XTS key with Key1 = Key2.
    assert_eq!(load_key(&mut m, &mut qu, 2, cr::KEY_XTS_AES256, &[1u8; 32]), st::ST_BAD_KEY);
    assert_eq!(load_key(&mut m, &mut qu, 2, 99, &[1u8; 64]), st::ST_BAD_KEY);
    assert_eq!(load_key(&mut m, &mut qu, 2, cr::KEY_XTS_AES256, &[7u8; 64]), st::ST_BAD_KEY);
    assert_eq!(load_key(&mut m, &mut qu, 2, cr::KEY_XTS_AES256, &xts_key()), st::ST_OK);
    for (d, want) in [
        // Not a whole number of data units; too long; zero length.
        (xts(500, 2, src, dst, 0), st::ST_BAD_LENGTH),
        (xts(512, 2, src, dst, cr::FLAG_DU_4K), st::ST_BAD_LENGTH),
        (xts(cr::MAX_LEN + 512, 2, src, dst, 0), st::ST_BAD_LENGTH),
        (xts(0, 2, src, dst, 0), st::ST_BAD_LENGTH),
        // Source or destination outside memory; the boot ROM is not writable.
        (xts(512, 2, 0x10, dst, 0), st::ST_LOCAL_FAULT),
        (xts(512, 2, src, 0xdead_0000_0000, 0), st::ST_LOCAL_FAULT),
        (xts(512, 2, src, m.chip.memory.bootrom.base, 0), st::ST_LOCAL_FAULT),
        // Host memory the function was never granted; an absent function.
        (Cd { src_fn: 0, ..xts(512, 2, 0x1000, dst, cr::FLAG_SRC_HOST) }, st::ST_NO_BUS_MASTER),
        // Unknown operation.
        (Cd { op: 42, ..xts(512, 2, src, dst, 0) }, st::ST_BAD_DESCRIPTOR),
    ] {
        qu.push(&mut m, &d.bytes());
        qu.kick(&mut m);
        assert_eq!(qu.wait(&mut m).1, want, "{:?}", (d.len, d.src, d.dst, d.flags, d.op));
    }
    assert_eq!(get(&mut m, dst, 4096), vec![0xee; 4096], "a failed descriptor wrote nothing");
    // A chain fails as a whole: the first error is reported and the
    // descriptors after it are skipped.
    qu.push(&mut m, &xts(512, 0, src, dst, 0).open());
    qu.push(&mut m, &xts(512, 2, src, dst, 0).bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_BAD_KEY);
    assert_eq!(get(&mut m, dst, 512), vec![0xee; 512]);
    // A bad ring (descriptor fetch faults) completes as a bad descriptor.
    let eng1 = engine_base(&m, 1);
    let mut bad = Queue::start(&mut m, eng1 + cr::QUEUES, base + 0x4_0000);
    wr(&mut m, bad.regs + q::RING_BASE, 8, 0x40);
    wr(&mut m, bad.regs + q::CONTROL, 4, 1);
    bad.tail = 1;
    bad.kick(&mut m);
    assert_eq!(bad.wait(&mut m).1, st::ST_BAD_DESCRIPTOR);
}

#[test]
fn key_slots_are_never_readable_and_reset_zeroizes_them() {
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 0, 0, base);
    let key: [u8; 64] = core::array::from_fn(|i| 0x80 + i as u8);
    assert_eq!(load_key(&mut m, &mut qu, 3, cr::KEY_XTS_AES256, &key), st::ST_OK);
    assert_eq!(get(&mut m, data_addr() + KEY_AREA, 64), vec![0; 64], "the driver's copy was wiped");
    let eng = engine_base(&m, 0);
    for off in (0..cr::QUEUES + 2 * q::SIZE).step_by(4) {
        for size in [4u8, 8] {
            if let Some(v) = m.bus.mmio_read(0, m.now, eng + off, size) {
                let b = v.to_le_bytes();
                assert!(!b.windows(3).any(|w| key.windows(3).any(|k| k == w)), "offset {off:#x} shows key bytes");
            }
        }
    }
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 1);
    wr(&mut m, eng + cr::ENGINE_CONTROL, 4, u64::from(cr::CTRL_RESET));
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 0);
    assert_eq!(rd(&mut m, qu.regs + q::STATUS, 4), 0, "reset stops the queues");
    // Restarted, the queue finds the slot empty.
    let mut qu = crypto_queue(&mut m, 0, 0, base);
    let (src, dst) = (base + 0x1_0000, base + 0x2_0000);
    qu.push(&mut m, &Cd { src, dst, len: 512, op: cr::OP_XTS_ENCRYPT, key: 3, ..Cd::default() }.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_BAD_KEY);
    // Key clear empties one slot.
    assert_eq!(load_key(&mut m, &mut qu, 4, cr::KEY_GCM_AES256, &[9; 32]), st::ST_OK);
    qu.push(&mut m, &Cd { op: cr::OP_KEY_CLEAR, key: 4, ..Cd::default() }.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 0);
}

#[test]
fn gcm_seal_open_and_a_forged_tag() {
    use aes_gcm::aead::AeadInPlace;
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 2, 7, base);
    let key = [0x42u8; 32];
    assert_eq!(load_key(&mut m, &mut qu, 0, cr::KEY_GCM_AES256, &key), st::ST_OK);
    let pt: Vec<u8> = (0..1000u32).map(|i| (i * 3) as u8).collect();
    let aad = b"nvme/tcp pdu header";
    let (src, dst, back, aad_at) = (base + 0x1_0000, base + 0x2_0000, base + 0x3_0000, base + 0x4_0000);
    put(&mut m, src, &pt);
    put(&mut m, aad_at, aad);
    let mut param = [0u8; 16];
    param[..12].copy_from_slice(b"unique nonce");
    let seal = Cd { src, dst, len: 1000, op: cr::OP_GCM_SEAL, param, aad: aad_at, aad_len: aad.len() as u32, ..Cd::default() };
    qu.push(&mut m, &seal.bytes());
    qu.kick(&mut m);
    let (_, s, bytes, _) = qu.wait(&mut m);
    assert_eq!((s, bytes), (st::ST_OK, 1016));
    let mut want = pt.clone();
    let c = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let tag = c.encrypt_in_place_detached(aes_gcm::Nonce::from_slice(b"unique nonce"), aad, &mut want).unwrap();
    want.extend_from_slice(&tag);
    assert_eq!(get(&mut m, dst, 1016), want);
    let open = Cd { src: dst, dst: back, op: cr::OP_GCM_OPEN, ..seal };
    qu.push(&mut m, &open.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    assert_eq!(get(&mut m, back, 1000), pt);
    // One flipped ciphertext bit: refused, nothing written.
    put(&mut m, back, &[0u8; 1000]);
    let mut forged = want.clone();
    forged[10] ^= 4;
    put(&mut m, dst, &forged);
    qu.push(&mut m, &open.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_AUTH_FAILED);
    assert_eq!(get(&mut m, back, 1000), vec![0u8; 1000]);
    assert_eq!(m.bus.crypto.stats.auth_failures, 1);
}

#[test]
fn sha256_over_a_chain() {
    use sha2::Digest;
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 9, 79, base);
    let msg: Vec<u8> = (0..3000u32).map(|i| (i ^ (i >> 3)) as u8).collect();
    let (src, dst) = (base + 0x1_0000, base + 0x2_0000);
    put(&mut m, src, &msg);
    let sha = |s, len| Cd { src: s, dst, len, op: cr::OP_SHA256, ..Cd::default() };
    qu.push(&mut m, &sha(src, 1000).open());
    qu.push(&mut m, &sha(src + 1000, 1).open());
    qu.push(&mut m, &sha(src + 1001, 1999).bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    assert_eq!(get(&mut m, dst, 32), sha2::Sha256::digest(&msg).to_vec());
    // FIPS 180-4 "abc" in one descriptor; the next chain starts afresh.
    put(&mut m, src, b"abc");
    qu.push(&mut m, &sha(src, 3).bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    let want: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"[2 * i..2 * i + 2], 16).unwrap()).collect();
    assert_eq!(get(&mut m, dst, 32), want);
}

/// Encrypt straight from the host's pages and decrypt straight into
/// them (the crypto block device's write and read paths), through the
/// IOMMU grant of the function.
#[test]
fn host_source_and_destination_through_the_iommu() {
    let mut m = machine();
    let base = data_addr();
    // The firmware declares the PF ready; the host enables bus mastering.
    let pcie = m.chip.devices.pcie.base;
    wr(&mut m, pcie + dpu_hal::regs::pcie::FN_CTRL + dpu_hal::regs::pcie::FN_READY, 4, 1);
    let now = m.now;
    let r = m.bus.host_access(HostOp::CfgWrite { function: 0, off: 4, size: 2, value: 0x6 }, now);
    assert_eq!(r, dpu_sim::pcie::HostReply::Done);
    let host_page = 0x20_0000u64;
    m.bus.host_mem.borrow_mut().grant(0, host_page, 8192);
    let pt: Vec<u8> = (0..8192u32).map(|i| (i * 13) as u8).collect();
    m.bus.host_mem.borrow_mut().write(host_page, &pt);
    let mut qu = crypto_queue(&mut m, 4, 1, base);
    assert_eq!(load_key(&mut m, &mut qu, 0, cr::KEY_XTS_AES256, &xts_key()), st::ST_OK);
    let staging = base + 0x1_0000;
    let mut param = [0u8; 16];
    param[..8].copy_from_slice(&7u64.to_le_bytes());
    let enc = Cd { src: host_page, dst: staging, len: 8192, op: cr::OP_XTS_ENCRYPT, flags: cr::FLAG_SRC_HOST | cr::FLAG_DU_4K, param, ..Cd::default() };
    qu.push(&mut m, &enc.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    let mut want = pt.clone();
    reference_xts(&xts_key(), 7, 4096, &mut want, true);
    assert_eq!(get(&mut m, staging, 8192), want);
    // Decrypt into the host page.
    m.bus.host_mem.borrow_mut().write(host_page, &[0u8; 8192]);
    let dec = Cd { src: staging, dst: host_page, len: 8192, op: cr::OP_XTS_DECRYPT, flags: cr::FLAG_DST_HOST | cr::FLAG_DU_4K, param, ..Cd::default() };
    qu.push(&mut m, &dec.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    let mut back = vec![0u8; 8192];
    m.bus.host_mem.borrow_mut().read(host_page, &mut back);
    assert_eq!(back, pt);
    // A page the function was not granted: refused, nothing written there.
    let denied = Cd { dst: host_page + 0x10_0000, ..dec };
    qu.push(&mut m, &denied.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_HOST_DENIED);
    assert_eq!(m.bus.crypto.stats.bytes_from_host, 8192);
    assert_eq!(m.bus.crypto.stats.bytes_to_host, 8192);
}

/// Work on one engine queues behind other queues' work on it; spread over
/// two engines it runs side by side. Cycle counts follow the chip file.
#[test]
fn queues_sharing_an_engine_contend() {
    let run = |engines: [u64; 2]| -> (u64, u64) {
        let mut m = machine();
        let base = data_addr();
        let mut qs: Vec<Queue> = (0..2).map(|i| crypto_queue(&mut m, engines[i], i as u64, base + 0x10_0000 * i as u64)).collect();
        for (i, qu) in qs.iter_mut().enumerate() {
            assert_eq!(load_key(&mut m, qu, 0, cr::KEY_XTS_AES256, &xts_key()), st::ST_OK);
            let _ = i;
        }
        let start = m.now;
        for (i, qu) in qs.iter_mut().enumerate() {
            let b = base + 0x10_0000 * i as u64;
            qu.push(&mut m, &Cd { src: b + 0x1_0000, dst: b + 0x2_0000, len: 65536, op: cr::OP_XTS_ENCRYPT, flags: cr::FLAG_DU_4K, ..Cd::default() }.bytes());
            qu.kick(&mut m);
        }
        let t0 = qs[0].wait(&mut m).3 - start;
        let t1 = qs[1].wait(&mut m).3 - start;
        (t0.max(t1), m.bus.crypto.stats.contended)
    };
    let c = &common::chip(1, 1).devices.crypto;
    let one = u64::from(c.descriptor_cycles) + 65536 / u64::from(c.aes_bytes_per_cycle) + 16 * u64::from(c.data_unit_cycles);
    let (apart, contended_apart) = run([0, 1]);
    let (shared, contended_shared) = run([5, 5]);
    assert_eq!(contended_apart, 0);
    assert_eq!(contended_shared, 1);
    assert!(apart >= one && apart < one + 200, "two engines: {apart} cycles, one descriptor takes {one}");
    assert!(shared >= 2 * one && shared < 2 * one + 200, "one engine: {shared} cycles for two descriptors of {one}");
}

// ------------------------------------------------------------ erasure coding

fn ec_desc(frags: u64, len: u32, k: u8, m_: u8, op: u8, present: u64, rebuild: u64) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[er::DESC_FRAGS..][..8].copy_from_slice(&frags.to_le_bytes());
    b[er::DESC_LEN..][..4].copy_from_slice(&len.to_le_bytes());
    b[er::DESC_K] = k;
    b[er::DESC_M] = m_;
    b[er::DESC_OP] = op;
    b[er::DESC_FLAGS] = er::FLAG_END;
    b[er::DESC_PRESENT..][..8].copy_from_slice(&present.to_le_bytes());
    b[er::DESC_REBUILD..][..8].copy_from_slice(&rebuild.to_le_bytes());
    b
}

#[test]
fn ec_encode_matches_isal_and_rebuilds_lost_fragments() {
    let mut m = machine();
    let base = data_addr();
    let regs = m.chip.devices.ec.base + er::QUEUES + 3 * q::SIZE;
    let mut qu = Queue::start(&mut m, regs, base);
    let (k, mm, len) = (4usize, 2usize, 4096usize);
    let table = base + 0x1_0000;
    let frag = |i: usize| base + 0x2_0000 + (i as u64) * 0x1000;
    // ISA-L 2.30 parity of the pattern data (see accel::gf's fixture):
    // len 16 there; here the first 16 bytes of each fragment repeat it.
    let data: Vec<Vec<u8>> = (0..k).map(|j| (0..len).map(|b| (((j * 16 + b % 16) * 7 + 3) % 256) as u8).collect()).collect();
    for i in 0..k + mm {
        put(&mut m, table + 8 * i as u64, &frag(i).to_le_bytes());
    }
    for (j, d) in data.iter().enumerate() {
        put(&mut m, frag(j), d);
    }
    qu.push(&mut m, &ec_desc(table, len as u32, k as u8, mm as u8, er::OP_ENCODE, 0, 0));
    qu.kick(&mut m);
    let (_, s, bytes, _) = qu.wait(&mut m);
    assert_eq!((s, bytes), (st::ST_OK, (mm * len) as u32));
    let p0 = get(&mut m, frag(4), 16);
    assert_eq!(p0.iter().map(|b| format!("{b:02x}")).collect::<String>(), "3c010a37d7037e00fd196456b68bd4e9");
    let all: Vec<Vec<u8>> = (0..k + mm).map(|i| get(&mut m, frag(i), len)).collect();
    // Lose data fragment 1 and parity 5; rebuild both from the rest.
    put(&mut m, frag(1), &vec![0u8; len]);
    put(&mut m, frag(5), &vec![0u8; len]);
    qu.push(&mut m, &ec_desc(table, len as u32, k as u8, mm as u8, er::OP_RECONSTRUCT, 0b011101, 0b100010));
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    assert_eq!(get(&mut m, frag(1), len), all[1]);
    assert_eq!(get(&mut m, frag(5), len), all[5]);
    // Three lost of m = 2: not recoverable; bad geometry; bad length.
    for (d, want) in [
        (ec_desc(table, len as u32, 4, 2, er::OP_RECONSTRUCT, 0b000111, 0b111000), st::ST_NOT_RECOVERABLE),
        (ec_desc(table, len as u32, 33, 2, er::OP_ENCODE, 0, 0), st::ST_BAD_GEOMETRY),
        (ec_desc(table, len as u32, 4, 5, er::OP_ENCODE, 0, 0), st::ST_BAD_GEOMETRY),
        (ec_desc(table, len as u32, 4, 2, er::OP_RECONSTRUCT, 0b1111111, 0b1), st::ST_BAD_GEOMETRY),
        (ec_desc(table, 100, 4, 2, er::OP_ENCODE, 0, 0), st::ST_BAD_LENGTH),
        (ec_desc(0x10, len as u32, 4, 2, er::OP_ENCODE, 0, 0), st::ST_LOCAL_FAULT),
        (ec_desc(table, len as u32, 4, 2, 9, 0, 0), st::ST_BAD_DESCRIPTOR),
    ] {
        qu.push(&mut m, &d);
        qu.kick(&mut m);
        assert_eq!(qu.wait(&mut m).1, want);
    }
    assert_eq!(get(&mut m, frag(4), len), all[4], "failed descriptors wrote no parity");
}

// ------------------------------------------------------------ DMA CRC32C

#[test]
fn dma_crc32c_chain_computes_the_digest_of_its_ranges() {
    let mut m = machine();
    let base = data_addr();
    let dma = m.chip.devices.dma.base;
    let ring = base;
    let comp = base + 32 * 16;
    put(&mut m, comp, &[0u8; 256]);
    wr(&mut m, dma + dr::RING_BASE, 8, ring);
    wr(&mut m, dma + dr::RING_SIZE, 4, 16);
    wr(&mut m, dma + dr::COMP_BASE, 8, comp);
    wr(&mut m, dma + dr::CONTROL, 4, 1);
    let data: Vec<u8> = (0..9000u32).map(|i| (i * 31 + (i >> 8)) as u8).collect();
    let (src, word) = (base + 0x1_0000, base + 0x8000);
    put(&mut m, src, &data);
    put(&mut m, word, &0u32.to_le_bytes());
    let desc = |local: u64, len: u32, host: u64, end: bool| {
        let mut b = [0u8; 32];
        b[dr::DESC_HOST..][..8].copy_from_slice(&host.to_le_bytes());
        b[dr::DESC_LOCAL..][..8].copy_from_slice(&local.to_le_bytes());
        b[dr::DESC_LEN..][..4].copy_from_slice(&len.to_le_bytes());
        b[dr::DESC_OP] = dr::OP_CRC32C;
        b[dr::DESC_FLAGS] = if end { dr::FLAG_END } else { 0 };
        b
    };
    // Three ranges (as a PDU's data spread over staging pages).
    put(&mut m, ring, &desc(src, 4096, word, false));
    put(&mut m, ring + 32, &desc(src + 4096, 4096, word, false));
    put(&mut m, ring + 64, &desc(src + 8192, 808, word, true));
    // A misaligned CRC word: a bad descriptor.
    put(&mut m, ring + 96, &desc(src, 16, word + 1, true));
    wr(&mut m, dma + dr::TAIL, 4, 4);
    m.run_slice(5000);
    let e = get(&mut m, comp, 32);
    assert_eq!(e[15] & 1, 1, "first completion written");
    assert_eq!(u32::from_le_bytes(e[4..8].try_into().unwrap()), dr::ST_OK);
    let want = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&data);
    assert_eq!(u32::from_le_bytes(get(&mut m, word, 4).try_into().unwrap()), want);
    assert_eq!(u32::from_le_bytes(e[20..24].try_into().unwrap()), dr::ST_BAD_DESCRIPTOR);
    assert_eq!(m.bus.dma.stats.bytes_crc, 9000);
}

// ------------------------------------------------------------ TRNG

#[test]
fn trng_output_and_health_failure_interrupt() {
    let mut m = machine();
    let t = m.chip.devices.trng.base;
    assert_eq!(rd(&mut m, t + tr::STATUS, 4), 0, "off until enabled");
    assert_eq!(rd(&mut m, t + tr::DATA, 8), 0);
    wr(&mut m, t + tr::CONTROL, 4, u64::from(tr::CTL_ENABLE));
    assert_eq!(rd(&mut m, t + tr::STATUS, 4), u64::from(tr::ST_READY));
    let words: Vec<u64> = (0..16).map(|_| rd(&mut m, t + tr::DATA, 8)).collect();
    assert!(words.iter().all(|&w| w != 0));
    let mut sorted = words.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 16, "no repeats");
    assert_eq!(rd(&mut m, t + tr::RCT_CUTOFF, 4), 6);
    assert!(rd(&mut m, t + tr::SAMPLES, 8) >= u64::from(tr::STARTUP_SAMPLES));
    // A stuck source: the repetition count test stops the output and
    // raises the TRNG's interrupt (pending at the PLIC).
    let irq = m.chip.devices.trng.irq;
    m.bus.trng = dpu_sim::accel::trng::Trng::new(1, 4, irq, dpu_sim::accel::trng::TrngFault::Stuck);
    wr(&mut m, t + tr::IRQ_ENABLE, 4, 1);
    wr(&mut m, t + tr::CONTROL, 4, u64::from(tr::CTL_ENABLE));
    assert_eq!(rd(&mut m, t + tr::STATUS, 4), u64::from(tr::ST_RCT_FAIL));
    assert_eq!(rd(&mut m, t + tr::DATA, 8), 0);
    let plic = m.chip.devices.plic.base;
    let pending = rd(&mut m, plic + 0x1000 + 4 * u64::from(irq / 32), 4);
    assert_ne!(pending & 1 << (irq % 32), 0, "TRNG interrupt pending");
}

// ------------------------------------------------------------ media check

/// The at-rest check tells ciphertext of the host's pattern from
/// plaintext and from anything else (so the system test's zero counts
/// mean something).
#[test]
fn at_rest_check_tells_ciphertext_plaintext_and_garbage_apart() {
    let mut m = machine();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/scenarios/adapter-secure.toml");
    let sc = dpu_targets::Scenario::load(&path).unwrap();
    m.configure(&sc).unwrap();
    let key = sc.namespace_cfgs()[0].encryption.clone().unwrap();
    let t0 = m.bus.net.targets.iter().position(|t| t.params.name == "t0").unwrap();
    let xts = xts_mode::Xts128::<aes::Aes256>::new(aes::Aes256::new_from_slice(&key.0[..32]).unwrap(), aes::Aes256::new_from_slice(&key.0[32..]).unwrap());
    let mut block = vec![0u8; 512];
    // LBA 3: ciphertext of the pattern; LBA 9: the pattern in plaintext;
    // LBA 20: the ciphertext of LBA 3 (wrong tweak); LBA 21: garbage.
    dpu_sim::host::workload::fill_sector(&mut block, 3, 1, 0x77);
    let mut ct = block.clone();
    xts.encrypt_sector(&mut ct, 3u128.to_le_bytes());
    let mut plain9 = vec![0u8; 512];
    dpu_sim::host::workload::fill_sector(&mut plain9, 9, 1, 0x77);
    let ns = &mut m.bus.net.targets[t0].subsystem.namespaces[0];
    ns.write(3 * 512, &ct);
    ns.write(9 * 512, &plain9);
    ns.write(20 * 512, &ct);
    ns.write(21 * 512, &[0xa5; 512]);
    let r = m.at_rest();
    let a = r.iter().find(|a| a.target == "t0").unwrap();
    assert_eq!((a.written, a.ciphertext_ok, a.plaintext, a.bad), (4, 1, 1, 2));
}

/// RFC 3394 §2.2.1 key wrap, written here from the RFC's index-based
/// description (independent of the engine model's `aes-kw`).
fn reference_kw(kek: &[u8; 32], key: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, generic_array::GenericArray};
    let aes = aes::Aes256::new_from_slice(kek).unwrap();
    let n = key.len() / 8;
    let mut a = [0xa6u8; 8];
    let mut r: Vec<[u8; 8]> = key.chunks(8).map(|c| c.try_into().unwrap()).collect();
    for j in 0..6 {
        for i in 0..n {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&a);
            b[8..].copy_from_slice(&r[i]);
            let mut blk = GenericArray::clone_from_slice(&b);
            aes.encrypt_block(&mut blk);
            let t = (n * j + i + 1) as u64;
            a.copy_from_slice(&blk[..8]);
            for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                *x ^= y;
            }
            r[i].copy_from_slice(&blk[8..]);
        }
    }
    let mut out = a.to_vec();
    r.iter().for_each(|b| out.extend_from_slice(b));
    out
}

/// Runs a key-ladder descriptor (`op`, PARAM kind XTS) on `qu`; its status.
fn ladder(m: &mut Machine, qu: &mut Queue, op: u8, slot: u16, input: &[u8], dst: u64) -> u32 {
    let at = data_addr() + KEY_AREA;
    put(m, at, input);
    let mut param = [0u8; 16];
    param[0] = cr::KEY_XTS_AES256;
    qu.push(m, &Cd { src: at, dst, len: input.len() as u32, op, key: slot, param, ..Cd::default() }.bytes());
    qu.kick(m);
    qu.wait(m).1
}

/// The key ladder: the engine wraps a key with the OTP device key (the
/// blob equals RFC 3394 computed independently), unwraps it into a slot
/// whose XTS output matches the reference with the plain key; a tampered
/// blob, a blob of another device key, a bad slot or length, and a chip
/// without a device key are refused with their status, and the slot they
/// named stays empty.
#[test]
fn key_ladder_wraps_and_unwraps_with_the_device_key_only() {
    use dpu_hal::regs::otp as o;
    let mut m = machine();
    let base = data_addr();
    let mut qu = crypto_queue(&mut m, 1, 0, base);
    let eng = engine_base(&m, 1);
    let dst = base + 0x3_0000;
    // No device key yet.
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_WRAP, 0, &xts_key(), dst), st::ST_NO_DEVICE_KEY);
    let kek: [u8; 32] = core::array::from_fn(|i| 0x80 ^ i as u8);
    for i in 0..o::DEVICE_KEY_WORDS {
        m.bus.otp.words[o::DEVICE_KEY + i] = u32::from_le_bytes(kek[4 * i..4 * i + 4].try_into().unwrap());
    }
    m.bus.otp.words[o::LOCK] |= o::LOCK_DEVICE_KEY;
    // The cores read zeros where the device key is.
    let otp_base = m.chip.devices.otp.base;
    assert_eq!(rd(&mut m, otp_base + 4 * o::DEVICE_KEY as u64, 4), 0);
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_WRAP, 0, &xts_key(), dst), st::ST_OK);
    let blob = get(&mut m, dst, cr::WRAPPED_XTS_KEY);
    assert_eq!(blob, reference_kw(&kek, &xts_key()));
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 0, "wrapping loads no slot");
    // Refusals: the slot stays empty.
    let mut tampered = blob.clone();
    tampered[40] ^= 0x10;
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &tampered, 0), st::ST_AUTH_FAILED);
    let other = reference_kw(&[7; 32], &xts_key());
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &other, 0), st::ST_AUTH_FAILED, "wrapped under another device key");
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &blob[..71], 0), st::ST_BAD_KEY, "not whole blocks");
    let gcm_sized = reference_kw(&kek, &[9; 32]);
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &gcm_sized, 0), st::ST_BAD_KEY, "a 32-byte key is no XTS key");
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 999, &blob, 0), st::ST_BAD_KEY, "no slot 999");
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 0);
    // The good blob: slot 4 then encrypts as the plain key does.
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &blob, 0), st::ST_OK);
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 1);
    let pt: Vec<u8> = (0..1024u32).map(|i| (i * 5 + 3) as u8).collect();
    let (src, out) = (base + 0x1_0000, base + 0x2_0000);
    put(&mut m, src, &pt);
    let mut param = [0u8; 16];
    param[..8].copy_from_slice(&77u64.to_le_bytes());
    qu.push(&mut m, &Cd { src, dst: out, len: 1024, op: cr::OP_XTS_ENCRYPT, key: 4, param, ..Cd::default() }.bytes());
    qu.kick(&mut m);
    assert_eq!(qu.wait(&mut m).1, st::ST_OK);
    let mut want = pt.clone();
    reference_xts(&xts_key(), 77, 512, &mut want, true);
    assert_eq!(get(&mut m, out, 1024), want);
    // A failed unwrap over a loaded slot leaves what it held.
    assert_eq!(ladder(&mut m, &mut qu, cr::OP_KEY_UNWRAP, 4, &tampered, 0), st::ST_AUTH_FAILED);
    assert_eq!(rd(&mut m, eng + cr::KEYS_LOADED, 4), 1);
}
