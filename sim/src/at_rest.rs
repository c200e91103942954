//! What encrypted namespaces left on the target models' media, checked
//! independently of the card: every block the host wrote must be the
//! AES-256-XTS ciphertext (IEEE 1619-2018, data unit = block, tweak =
//! LBA, the scenario's key) of the host's verify pattern for that LBA,
//! decrypted here with RustCrypto's `xts-mode` directly (not the crypto
//! engine model), and no block may hold the pattern in plaintext.

use crate::host::workload::{is_pattern, is_pattern_of};
use crate::machine::Machine;
use aes::cipher::KeyInit;
use crate::net::nvmf_target::store::Namespace;
use crate::net::nvmf_target::TargetModel;
use dpu_targets::Backend;
use serde::Serialize;

/// One encrypted remote namespace's media.
#[derive(Clone, Debug, Serialize)]
pub struct AtRest {
    pub target: String,
    pub nsid: u32,
    pub block_size: u32,
    /// Blocks holding anything (not all zeros): written through the card.
    pub written: u64,
    /// Written blocks that decrypt to the host's pattern for their LBA.
    pub ciphertext_ok: u64,
    /// Blocks holding the host's pattern in plaintext (must be 0).
    pub plaintext: u64,
    /// Written blocks that are neither (must be 0).
    pub bad: u64,
}

/// One erasure-coded volume's media: every member's and spare's
/// namespace on the target models, scanned in the volume's block size for
/// sectors of the host's verify pattern in the clear (this scan needs none
/// of the card's layout); and every written stripe's parity recomputed
/// here from its data fragments on the members (the documented layout:
/// fragment f of stripe s on member (f + s) mod (k + m) at byte s x 4 KiB;
/// Reed-Solomon over GF(2^8) with ISA-L's Cauchy matrix, by this file's
/// own arithmetic, not the EC engine model's).
#[derive(Clone, Debug, Serialize)]
pub struct EcAtRest {
    pub function: u16,
    pub nsid: u32,
    pub encrypted: bool,
    /// Member blocks holding anything (not all zeros).
    pub written: u64,
    /// Member blocks holding a sector of the host's pattern in plaintext
    /// (must be 0 when `encrypted`).
    pub plaintext: u64,
    /// Whether the parity was checked: every member is on a target model
    /// and no spare holds data (a spare serving a slot is not on the
    /// layout's member).
    pub parity_checked: bool,
    /// Stripes with any byte written, and of those the ones whose parity
    /// fragments on the media are (not) the parity of their data
    /// fragments.
    pub stripes_written: u64,
    pub stripes_consistent: u64,
    pub stripes_inconsistent: u64,
}

/// Bytes of a fragment (`dpu_hal::regs::bootcfg::EC_CHUNK`).
const FRAGMENT: usize = 4096;

/// GF(2^8) product, polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D, ISA-L's).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    p
}

/// GF(2^8) inverse (a^254); 0 for 0.
fn gf_inv(a: u8) -> u8 {
    let mut r = 1u8;
    for _ in 0..254 {
        r = gf_mul(r, a);
    }
    r
}

/// The m parity fragments of `data` (k fragments): row r of ISA-L's
/// `gf_gen_cauchy1_matrix` is 1 / ((k + r) xor j) for data fragment j.
pub fn ec_parity(k: usize, m: usize, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    (0..m)
        .map(|r| {
            let mut p = vec![0u8; data.first().map_or(0, Vec::len)];
            for (j, d) in data.iter().enumerate().take(k) {
                let c = gf_inv(((k + r) ^ j) as u8);
                for (x, &y) in p.iter_mut().zip(d) {
                    *x ^= gf_mul(c, y);
                }
            }
            p
        })
        .collect()
}

/// The blocks of `ns` holding anything (not all zeros), `bs` bytes each,
/// with their LBA.
fn written_blocks(ns: &Namespace, bs: usize) -> impl Iterator<Item = (usize, &[u8])> {
    ns.backed_pages()
        .into_iter()
        .flat_map(move |(pg, page)| page.chunks_exact(bs).enumerate().map(move |(k, b)| ((pg * 4096) as usize / bs + k, b)))
        .filter(|(_, b)| b.iter().any(|&x| x != 0))
}

impl Machine {
    /// Namespace `nsid` of the target model serving `nqn` at `addr`.
    fn remote_namespace(&self, addr: std::net::Ipv4Addr, nqn: &str, nsid: u32) -> Option<(&TargetModel, &Namespace)> {
        let t = self.bus.net.targets.iter().find(|t| t.params.ip == addr && t.params.nqn == nqn)?;
        Some((t, t.subsystem.namespaces.get((nsid as usize).checked_sub(1)?)?))
    }

    /// The plaintext scan of every erasure-coded volume's members.
    pub fn ec_at_rest(&self) -> Vec<EcAtRest> {
        let Some(cfg) = &self.boot_config else { return Vec::new() };
        let mut out = Vec::new();
        for n in &cfg.namespaces {
            let Backend::Ec { k, m, members, spares, .. } = &n.backend else { continue };
            let mut a = EcAtRest {
                function: n.function,
                nsid: n.nsid,
                encrypted: n.encryption.is_some(),
                written: 0,
                plaintext: 0,
                parity_checked: false,
                stripes_written: 0,
                stripes_consistent: 0,
                stripes_inconsistent: 0,
            };
            let bs = n.block_size as usize;
            let mut spare_used = false;
            for (i, (addr, _, nqn, nsid)) in members.iter().chain(spares).enumerate() {
                let Some((_, ns)) = self.remote_namespace(*addr, nqn, *nsid) else { continue };
                for (_, block) in written_blocks(ns, bs) {
                    a.written += 1;
                    a.plaintext += u64::from(is_pattern(block));
                    spare_used |= i >= members.len();
                }
            }
            let (k, m) = (usize::from(*k), usize::from(*m));
            let width = k + m;
            let devs: Vec<&Namespace> = members.iter().filter_map(|(addr, _, nqn, nsid)| self.remote_namespace(*addr, nqn, *nsid).map(|(_, ns)| ns)).collect();
            if !spare_used && devs.len() == width && k > 0 {
                a.parity_checked = true;
                let stripes = n.bytes / (k * FRAGMENT) as u64;
                // Only stripes some member holds a page of (the others
                // read as zeros everywhere: consistent, not written).
                let mut held: Vec<u64> = devs.iter().flat_map(|ns| ns.backed_pages().into_iter().map(|(pg, _)| pg)).filter(|&pg| pg < stripes).collect();
                held.sort_unstable();
                held.dedup();
                for s in held {
                    // Fragment f of stripe s: member (f + s) mod width, byte s x 4 KiB.
                    let frags: Vec<Vec<u8>> = (0..width)
                        .map(|f| {
                            let mut b = vec![0u8; FRAGMENT];
                            devs[(f + s as usize % width) % width].read(s * FRAGMENT as u64, &mut b);
                            b
                        })
                        .collect();
                    if frags.iter().all(|f| f.iter().all(|&x| x == 0)) {
                        continue;
                    }
                    a.stripes_written += 1;
                    if ec_parity(k, m, &frags[..k]) == frags[k..] {
                        a.stripes_consistent += 1;
                    } else {
                        a.stripes_inconsistent += 1;
                    }
                }
            }
            out.push(a);
        }
        out
    }

    /// The media check of every encrypted namespace on a target model.
    pub fn at_rest(&self) -> Vec<AtRest> {
        let Some(cfg) = &self.boot_config else { return Vec::new() };
        let mut out: Vec<AtRest> = Vec::new();
        for n in &cfg.namespaces {
            let (Some(key), Backend::Nvmf { traddr, subnqn, nsid, .. }) = (&n.encryption, &n.backend) else { continue };
            let Some((t, ns)) = self.remote_namespace(*traddr, subnqn, *nsid) else { continue };
            if out.iter().any(|a| a.target == t.params.name && a.nsid == *nsid) {
                continue; // one namespace shared by several functions
            }
            out.push(scan(&t.params.name, *nsid, n.block_size, ns, key));
        }
        // Namespaces of the targets encrypted by a crypto device made at
        // run time (the scenario names the key: `at_rest_key`).
        for t in &self.bus.net.targets {
            for (nsid, key) in &t.params.at_rest_keys {
                let Some(ns) = t.subsystem.namespaces.get((*nsid as usize).wrapping_sub(1)) else { continue };
                if out.iter().any(|a| a.target == t.params.name && a.nsid == *nsid) {
                    continue;
                }
                let bs = t.params.namespaces.get(*nsid as usize - 1).map_or(512, |n| n.1);
                out.push(scan(&t.params.name, *nsid, bs, ns, key));
            }
        }
        out
    }
}

/// Checks every written block of `ns` (`bs`-byte blocks) against the
/// host's pattern: AES-256-XTS ciphertext of it under `key`, plaintext,
/// or neither.
fn scan(target: &str, nsid: u32, bs: u32, ns: &Namespace, key: &dpu_targets::XtsKey) -> AtRest {
    let xts = xts_mode::Xts128::<aes::Aes256>::new(
        aes::Aes256::new_from_slice(&key.0[..32]).expect("32-byte key"),
        aes::Aes256::new_from_slice(&key.0[32..]).expect("32-byte key"),
    );
    let mut a = AtRest { target: target.to_string(), nsid, block_size: bs, written: 0, ciphertext_ok: 0, plaintext: 0, bad: 0 };
    for (lba, block) in written_blocks(ns, bs as usize) {
        a.written += 1;
        if is_pattern_of(block, lba as u64) {
            a.plaintext += 1;
            continue;
        }
        let mut plain = block.to_vec();
        xts.decrypt_sector(&mut plain, (lba as u128).to_le_bytes());
        if is_pattern_of(&plain, lba as u64) {
            a.ciphertext_ok += 1;
        } else {
            a.bad += 1;
        }
    }
    a
}

/// The report lines of the EC volumes' plaintext scan and parity check.
pub fn ec_text(v: &[EcAtRest]) -> String {
    v.iter()
        .map(|a| {
            let parity = if a.parity_checked {
                format!("{} stripes written: {} with consistent parity, {} inconsistent", a.stripes_written, a.stripes_consistent, a.stripes_inconsistent)
            } else {
                "parity not checked (a spare holds data, or a member is not a target model)".to_string()
            };
            format!(
                "at rest: EC volume fn{} ns{} ({}): {} member blocks written, {} hold the host's data in plaintext; {parity}\n",
                a.function,
                a.nsid,
                if a.encrypted { "encrypted" } else { "plain" },
                a.written,
                a.plaintext
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_here_is_the_ec_engine_models_and_sees_one_flipped_bit() {
        // Against the engine model (itself checked against libisal's
        // `ec_encode_data` fixtures by the `erasure coding` system test).
        for (k, m) in [(2, 1), (4, 2), (8, 4)] {
            let data: Vec<Vec<u8>> = (0..k).map(|j| (0..64).map(|i| (i * 37 + j * 101 + 7) as u8).collect()).collect();
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let model = crate::accel::gf::encode(k, m, &refs);
            let ours = ec_parity(k, m, &data);
            assert_eq!(ours, model, "k {k} m {m}");
            let mut bad = data.clone();
            bad[k - 1][5] ^= 0x10;
            assert!(ec_parity(k, m, &bad).iter().zip(&ours).all(|(a, b)| a != b), "every parity row sees a data change");
        }
        assert_eq!((gf_mul(0x80, 2), gf_inv(1), gf_mul(7, gf_inv(7))), (0x1d, 1, 1));
    }
}

/// The report lines.
pub fn text(v: &[AtRest]) -> String {
    v.iter()
        .map(|a| {
            format!(
                "at rest: {} ns{} ({} B blocks): {} blocks written, {} are AES-XTS ciphertext of the host's data, {} plaintext, {} neither\n",
                a.target, a.nsid, a.block_size, a.written, a.ciphertext_ok, a.plaintext, a.bad
            )
        })
        .collect()
}
