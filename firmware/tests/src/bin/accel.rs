//! The accelerator drivers on the simulated chip (hart 0; the others park):
//! the TRNG seeds a `rand_core` consumer and its words differ; the crypto
//! engines load an XTS key into a slot of every engine and encrypt IEEE
//! 1619-2018 vector 10 (checked against the standard's ciphertext) on
//! each engine, and decrypt it back; the key ladder (with a device key in
//! the OTP, `dpusim --otp`): the device key reads as zero, the engines
//! wrap the vector's key with it, unwrap the blob into another slot of
//! every engine, which then gives the vector's ciphertext, and refuse a
//! tampered blob (without one: both operations refused); a CRC32C chain on the DMA engine over
//! three ranges equals the firmware's software NVMe/TCP data digest; the
//! erasure-coding engine encodes several (k, m, fragment size) geometries
//! (the system test compares each parity fragment's hash with Intel
//! ISA-L's `ec_encode_data`, run live) and rebuilds m lost fragments.
#![no_std]
#![no_main]

use dpu_hal::crypto::{Desc as CDesc, Engines};
use dpu_hal::dma::{Channel, Desc};
use dpu_hal::memory_map::CRYPTO_ENGINES;
use dpu_hal::regs::crypto as cr;
use dpu_fw_tests::verdict;
use rand_core::TryRngCore;

dpu_rt::entry!(main);

/// IEEE 1619-2018 Annex B vector 10: Key1, Key2.
const KEY1: [u8; 32] = *b"\x27\x18\x28\x18\x28\x45\x90\x45\x23\x53\x60\x28\x74\x71\x35\x26\x62\x49\x77\x57\x24\x70\x93\x69\x99\x59\x57\x49\x66\x96\x76\x27";
const KEY2: [u8; 32] = *b"\x31\x41\x59\x26\x53\x58\x97\x93\x23\x84\x62\x64\x33\x83\x27\x95\x02\x88\x41\x97\x16\x93\x99\x37\x51\x05\x82\x09\x74\x94\x45\x92";
/// Its ciphertext (data unit 0xff, plaintext 00 01 .. ff 00 .. ff): the
/// first 32 and the last 16 bytes.
const CT_HEAD: [u8; 32] = *b"\x1c\x3b\x3a\x10\x2f\x77\x03\x86\xe4\x83\x6c\x99\xe3\x70\xcf\x9b\xea\x00\x80\x3f\x5e\x48\x23\x57\xa4\xae\x12\xd4\x14\xa3\xe6\x3b";
const CT_TAIL: [u8; 16] = *b"\xc4\xf3\x6f\xfd\xa9\xfc\xea\x70\xb9\xc6\xe6\x93\xe1\x48\xc1\x51";

fn main(hart: dpu_rt::HartId) -> ! {
    if hart.0 != 0 {
        dpu_rt::park();
    }
    // TRNG.
    let Ok(mut trng) = dpu_hal::trng::Trng::enable() else {
        defmt::error!("TRNG not ready");
        verdict(false, 1)
    };
    let (a, b) = (trng.try_next_u64(), trng.try_next_u64());
    let mut bytes = [0u8; 20];
    let filled = trng.try_fill_bytes(&mut bytes).is_ok() && bytes.iter().any(|&x| x != 0);
    let trng_ok = matches!((a, b), (Ok(a), Ok(b)) if a != b && a != 0) && filled;
    defmt::info!("trng: two words differ and fill_bytes works: {=bool}", trng_ok);

    // Crypto engines.
    let (Some(rings), Some(buf)) = (dpu_rt::alloc::ddr(Engines::memory(16) as u64, 64), dpu_rt::alloc::ddr(3 * 4096, 4096)) else {
        verdict(false, 2)
    };
    let buf = buf as usize;
    let mut eng = Engines::NONE;
    if !eng.start(0, rings as usize, 16) {
        defmt::error!("crypto queues refused");
        verdict(false, 3)
    }
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(&KEY1);
    key[32..].copy_from_slice(&KEY2);
    let loaded = eng.load_key(7, cr::KEY_XTS_AES256, &key, buf + 2 * 4096);
    let slots_ok = (0..CRYPTO_ENGINES).all(|e| dpu_hal::crypto::keys_loaded(e) == 1);
    let mut scratch = [0u8; 64];
    dpu_hal::mem::read(buf + 2 * 4096, &mut scratch);
    let wiped = scratch.iter().all(|&x| x == 0);
    // An XTS key whose halves are equal is refused.
    let refused = eng.load_key(8, cr::KEY_XTS_AES256, &[5u8; 64], buf + 2 * 4096) == Err(dpu_hal::regs::accel::ST_BAD_KEY);
    defmt::info!("crypto: key loaded {=bool} on every engine {=bool}, scratch wiped {=bool}, equal halves refused {=bool}", loaded.is_ok(), slots_ok, wiped, refused);
    let mut pt = [0u8; 512];
    for (i, p) in pt.iter_mut().enumerate() {
        *p = i as u8;
    }
    let (src, dst) = (buf, buf + 4096);
    let mut vectors = 0;
    let mut spread = [0u32; CRYPTO_ENGINES];
    for round in 0..CRYPTO_ENGINES {
        dpu_hal::mem::write(src, &pt);
        let Some(e) = eng.pick(1) else { verdict(false, 4) };
        spread[e] += 1;
        let d = CDesc { cookie: round as u32, ..CDesc::xts(true, src as u64, dst as u64, 512, 7, 0xff, false) };
        eng.push(e, &d, true);
        eng.kick(e);
        let c = loop {
            if let Some(c) = eng.poll() {
                break c;
            }
        };
        let mut ct = [0u8; 512];
        dpu_hal::mem::read(dst, &mut ct);
        if c.status == 0 && c.cookie == round as u32 && ct[..32] == CT_HEAD && ct[496..] == CT_TAIL {
            vectors += 1;
        }
    }
    // Decrypt in place, back to the plaintext.
    let d = CDesc::xts(false, dst as u64, dst as u64, 512, 7, 0xff, false);
    eng.push(3, &d, true);
    eng.kick(3);
    let c = loop {
        if let Some(c) = eng.poll() {
            break c;
        }
    };
    let mut back = [0u8; 512];
    dpu_hal::mem::read(dst, &mut back);
    let round_trip = c.status == 0 && back == pt;
    defmt::info!(
        "crypto: IEEE 1619 vector 10 on {=usize}/{=usize} engines, one each {=bool}; decrypted back {=bool}",
        vectors,
        CRYPTO_ENGINES,
        spread.iter().all(|&n| n == 1),
        round_trip
    );

    let ladder_ok = key_ladder(&mut eng, &key, &pt, buf);

    // CRC32C on the DMA engine, against the software digest.
    let Some(ring) = dpu_rt::alloc::ddr(Channel::memory(16) as u64, 64) else { verdict(false, 5) };
    let mut ch = Channel::start(0, ring as usize, 16, None);
    let mut data = [0u8; 3000];
    for (i, x) in data.iter_mut().enumerate() {
        *x = (i * 7 + i / 256) as u8;
    }
    dpu_hal::mem::write(src, &data);
    let word = (buf + 2 * 4096) as u64;
    dpu_hal::mem::write(word as usize, &[0; 4]);
    ch.push(&Desc::crc32c(src as u64, 1000, word, 0));
    ch.push(&Desc::crc32c(src as u64 + 1000, 1, word, 0));
    ch.push(&Desc { flags: dpu_hal::regs::dma::FLAG_END, ..Desc::crc32c(src as u64 + 1001, 1999, word, 9) });
    ch.kick();
    let c = loop {
        if let Some(c) = ch.poll() {
            break c;
        }
    };
    let hw = dpu_hal::mem::read_u32(word as usize);
    let sw = dpu_nvme_tcp::digest::crc32c(&data);
    let crc_ok = c.status == 0 && hw == sw;
    defmt::info!("dma crc32c {=u32:#010x}, software {=u32:#010x}: {=bool}", hw, sw, crc_ok);

    let ec_ok = erasure_coding();

    verdict(trng_ok && loaded.is_ok() && slots_ok && wiped && refused && vectors == CRYPTO_ENGINES && round_trip && ladder_ok && crc_ok && ec_ok, 6)
}

/// Runs `d` on engine `e` and waits for its status.
fn run_on(eng: &mut Engines, e: usize, d: &CDesc) -> u32 {
    if !eng.push(e, d, true) {
        return u32::MAX;
    }
    eng.kick(e);
    loop {
        if let Some(c) = eng.poll() {
            return c.status;
        }
    }
}

/// The key ladder through the driver (`Engines::wrap_key`,
/// `unwrap_key`): `key` (vector 10's) wrapped with the device key, the
/// blob unwrapped into slot 9 of every engine, vector 10 encrypted with
/// slot 9 on each engine; a tampered blob refused with `ST_AUTH_FAILED`
/// and slot 10 left empty. Without a device key, both refused with
/// `ST_NO_DEVICE_KEY`. `buf`: three 4 KiB pages of DPU memory.
fn key_ladder(eng: &mut Engines, key: &[u8; 64], pt: &[u8; 512], buf: usize) -> bool {
    use dpu_hal::regs::{accel as st, otp as o};
    let scratch = buf + 2 * 4096;
    let mut blob = [0u8; cr::WRAPPED_XTS_KEY];
    if !dpu_hal::otp::device_key_locked() {
        let refused = eng.wrap_key(cr::KEY_XTS_AES256, key, &mut blob, scratch) == Err(st::ST_NO_DEVICE_KEY)
            && eng.unwrap_key(9, cr::KEY_XTS_AES256, &[0xa6; cr::WRAPPED_XTS_KEY], scratch) == Err(st::ST_NO_DEVICE_KEY);
        defmt::info!("crypto: key ladder without a device key: wrap and unwrap refused {=bool}", refused);
        return refused;
    }
    let hidden = (o::DEVICE_KEY..o::DEVICE_KEY + o::DEVICE_KEY_WORDS).all(|i| dpu_hal::otp::word(i) == 0);
    let wrapped = eng.wrap_key(cr::KEY_XTS_AES256, key, &mut blob, scratch).is_ok() && blob[8..40] != key[..32];
    let mut left = [0xffu8; 120];
    dpu_hal::mem::read(scratch, &mut left);
    let wiped = left.iter().all(|&x| x == 0);
    let unwrapped = eng.unwrap_key(9, cr::KEY_XTS_AES256, &blob, scratch).is_ok() && (0..CRYPTO_ENGINES).all(|e| dpu_hal::crypto::keys_loaded(e) == 2);
    let (src, dst) = (buf, buf + 4096);
    let mut vectors = 0;
    for e in 0..CRYPTO_ENGINES {
        dpu_hal::mem::write(src, pt);
        let st = run_on(eng, e, &CDesc::xts(true, src as u64, dst as u64, 512, 9, 0xff, false));
        let mut ct = [0u8; 512];
        dpu_hal::mem::read(dst, &mut ct);
        if st == 0 && ct[..32] == CT_HEAD && ct[496..] == CT_TAIL {
            vectors += 1;
        }
    }
    blob[20] ^= 0x01;
    let tampered = eng.unwrap_key(10, cr::KEY_XTS_AES256, &blob, scratch) == Err(st::ST_AUTH_FAILED) && (0..CRYPTO_ENGINES).all(|e| dpu_hal::crypto::keys_loaded(e) == 2);
    defmt::info!(
        "crypto: key ladder: device key hidden {=bool}, wrapped {=bool} (scratch wiped {=bool}), unwrapped into every engine {=bool}, vector 10 with it on {=usize}/{=usize} engines, tampered blob refused {=bool}",
        hidden,
        wrapped,
        wiped,
        unwrapped,
        vectors,
        CRYPTO_ENGINES,
        tampered
    );
    hidden && wrapped && wiped && unwrapped && vectors == CRYPTO_ENGINES && tampered
}

/// (k, m, bytes per fragment, data seed): the geometries the system test
/// checks against ISA-L (`tools/xtask/src/isal/ec_ref.c` generates the
/// same data from the seed).
const EC_CASES: [(usize, usize, usize, u64); 6] =
    [(4, 2, 4096, 1), (8, 3, 1024, 7), (10, 4, 4096, 0x1234), (32, 4, 64, 99), (16, 4, 512, 5), (3, 1, 8, 11)];

/// FNV-1a 64 of `len` bytes of DPU memory.
fn fnv1a64(addr: usize, len: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunk = [0u8; 256];
    let mut off = 0;
    while off < len {
        let n = chunk.len().min(len - off);
        dpu_hal::mem::read(addr + off, &mut chunk[..n]);
        for &b in &chunk[..n] {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        off += n;
    }
    h
}

/// Runs one EC descriptor on this hart's queue and waits for its status.
fn ec_run(eng: &mut dpu_hal::ec::Engine, d: &dpu_hal::ec::Desc) -> u32 {
    if !eng.submit(d) {
        return u32::MAX;
    }
    loop {
        if let Some(c) = eng.poll() {
            return c.status;
        }
    }
}

/// Encodes every `EC_CASES` geometry on the erasure-coding engine and
/// prints each parity fragment's FNV-1a 64; then loses m fragments (data
/// and parity) and rebuilds them. True when every descriptor succeeded and
/// every rebuilt fragment equals the original.
fn erasure_coding() -> bool {
    use dpu_hal::ec::{Desc as EDesc, Engine};
    const AREA: usize = 64 * 1024;
    let (Some(ring), Some(frags), Some(spare), Some(table)) = (
        dpu_rt::alloc::ddr(Engine::memory(16) as u64, 64),
        dpu_rt::alloc::ddr(AREA as u64, 4096),
        dpu_rt::alloc::ddr(4 * 4096, 4096),
        dpu_rt::alloc::ddr(64 * 8, 64),
    ) else {
        defmt::error!("ec: no memory");
        return false;
    };
    let (frags, spare, table) = (frags as usize, spare as usize, table as usize);
    let mut q = Engine::NONE;
    if !q.start(0, ring as usize, 16) {
        defmt::error!("ec: queue refused");
        return false;
    }
    let mut ok = true;
    for (k, m, len, seed) in EC_CASES {
        let n = k + m;
        if n * len > AREA || m * len > 4 * 4096 {
            return false;
        }
        // Data: xorshift64 from the seed, one step per byte, fragment 0 first.
        let mut x = seed;
        let mut chunk = [0u8; 256];
        for off in (0..k * len).step_by(chunk.len()) {
            let c = chunk.len().min(k * len - off);
            for b in &mut chunk[..c] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            dpu_hal::mem::write(frags + off, &chunk[..c]);
        }
        let addrs: [u64; 64] = core::array::from_fn(|i| (frags + i * len) as u64);
        dpu_hal::mem::write_words(table, &addrs[..n]);
        let st = ec_run(&mut q, &EDesc::encode(table as u64, len as u32, k as u8, m as u8, 0));
        ok &= st == 0;
        for i in 0..m {
            let h = fnv1a64(frags + (k + i) * len, len);
            defmt::info!("ec k={=usize} m={=usize} len={=usize} seed={=u64}: status {=u32} parity {=usize} fnv1a64 {=u64:x}", k, m, len, seed, st, i, h);
        }
        // Lose the first m - 1 data fragments and the last parity fragment;
        // rebuild them into spare buffers.
        let lost: u64 = ((1u64 << (m - 1)) - 1) | 1 << (n - 1);
        let mut rt: [u64; 64] = addrs;
        let mut j = 0;
        for (i, a) in rt.iter_mut().enumerate().take(n) {
            if lost >> i & 1 == 1 {
                *a = (spare + j * len) as u64;
                j += 1;
            }
        }
        dpu_hal::mem::zero(spare, m * len);
        dpu_hal::mem::write_words(table, &rt[..n]);
        let present = !lost & ((1u64 << n) - 1);
        let st = ec_run(&mut q, &EDesc::reconstruct(table as u64, len as u32, k as u8, m as u8, present, lost, 0));
        let same = (0..n).filter(|i| lost >> i & 1 == 1).all(|i| fnv1a64(rt[i] as usize, len) == fnv1a64(addrs[i] as usize, len));
        defmt::info!("ec k={=usize} m={=usize} len={=usize}: rebuilt {=u32} lost fragments, status {=u32}, equal {=bool}", k, m, len, lost.count_ones(), st, same);
        ok &= st == 0 && same;
    }
    // More losses than parity fragments: refused, nothing written.
    let st = ec_run(&mut q, &EDesc::reconstruct(table as u64, 64, 4, 2, 0b000111, 0b111000, 0));
    let refused = st == dpu_hal::regs::accel::ST_NOT_RECOVERABLE || st == dpu_hal::regs::accel::ST_BAD_GEOMETRY;
    defmt::info!("ec: 3 lost of 4+2 refused {=bool} (status {=u32})", refused, st);
    ok && refused
}
