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
/// sectors of the host's verify pattern in the clear (fragments and parity
/// are laid out by the card; this check needs none of that layout).
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
            let Backend::Ec { members, spares, .. } = &n.backend else { continue };
            let mut a = EcAtRest { function: n.function, nsid: n.nsid, encrypted: n.encryption.is_some(), written: 0, plaintext: 0 };
            let bs = n.block_size as usize;
            for (addr, _, nqn, nsid) in members.iter().chain(spares) {
                let Some((_, ns)) = self.remote_namespace(*addr, nqn, *nsid) else { continue };
                for (_, block) in written_blocks(ns, bs) {
                    a.written += 1;
                    a.plaintext += u64::from(is_pattern(block));
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
            let xts = xts_mode::Xts128::<aes::Aes256>::new(
                aes::Aes256::new_from_slice(&key.0[..32]).expect("32-byte key"),
                aes::Aes256::new_from_slice(&key.0[32..]).expect("32-byte key"),
            );
            let bs = n.block_size as usize;
            let mut a = AtRest { target: t.params.name.clone(), nsid: *nsid, block_size: n.block_size, written: 0, ciphertext_ok: 0, plaintext: 0, bad: 0 };
            for (lba, block) in written_blocks(ns, bs) {
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
            out.push(a);
        }
        out
    }
}

/// The report lines of the EC volumes' plaintext scan.
pub fn ec_text(v: &[EcAtRest]) -> String {
    v.iter()
        .map(|a| {
            format!(
                "at rest: EC volume fn{} ns{} ({}): {} member blocks written, {} hold the host's data in plaintext\n",
                a.function,
                a.nsid,
                if a.encrypted { "encrypted" } else { "plain" },
                a.written,
                a.plaintext
            )
        })
        .collect()
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
