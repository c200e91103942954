//! The host updating the card's firmware (scenario `[[firmware]]`), the
//! way `nvme fw-download`, `nvme fw-commit` and `nvme fw-log` do it:
//! Firmware Image Download pieces in order, a Firmware Commit, then the
//! Firmware Slot Information log.
//!
//! Written from NVMe Base 2.0 §5.12 (Firmware Commit), §5.13 (Firmware
//! Image Download) and §5.16.1.4 (Firmware Slot Information); it shares
//! no code with the firmware's `dpu_nvme::firmware`.

use super::hostile::status_name;
use super::nvme::{CmdError, Controller, DataBuf, Sqe};
use super::Host;
use dpu_targets::{FirmwareCfg, Scenario};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;

/// Opcodes (NVMe Base 2.0 figure 28).
pub const OPC_FIRMWARE_COMMIT: u8 = 0x10;
pub const OPC_FIRMWARE_DOWNLOAD: u8 = 0x11;
const OPC_GET_LOG_PAGE: u8 = 0x02;
/// Firmware Slot Information log identifier.
const LID_FIRMWARE_SLOT: u32 = 0x03;
/// How long the host waits for a commit (erasing and programming a slot
/// takes about a second; Linux's admin timeout is 60 s).
const COMMIT_TIMEOUT_NS: u64 = 60_000_000_000;

/// Firmware Image Download of `len` bytes at byte `offset`: CDW10 NUMD
/// (dwords, 0's based), CDW11 OFST (dwords). Both must be whole dwords.
pub fn download_sqe(offset: u32, len: u32) -> Result<Sqe, String> {
    if len == 0 || len % 4 != 0 || offset % 4 != 0 {
        return Err(format!("a download piece is whole dwords (offset {offset}, length {len})"));
    }
    Ok(Sqe::new(OPC_FIRMWARE_DOWNLOAD).cdw(10, len / 4 - 1).cdw(11, offset / 4))
}

/// Firmware Commit: CDW10 FS (bits 2:0), CA (bits 5:3).
pub fn commit_sqe(slot: u8, action: u8) -> Result<Sqe, String> {
    if slot > 7 || action > 7 {
        return Err(format!("slot {slot} / action {action} do not fit their 3-bit fields"));
    }
    Ok(Sqe::new(OPC_FIRMWARE_COMMIT).cdw(10, u32::from(slot) | u32::from(action) << 3))
}

/// Get Log Page of the Firmware Slot Information (512 bytes).
pub fn slot_log_sqe() -> Sqe {
    Sqe::new(OPC_GET_LOG_PAGE).cdw(10, (512 / 4 - 1) << 16 | LID_FIRMWARE_SLOT)
}

/// The pieces an image of `len` bytes goes in: (offset, length), each at
/// most `xfer` bytes, the image padded to whole dwords.
pub fn pieces(len: usize, xfer: u32) -> Vec<(u32, u32)> {
    let total = len.next_multiple_of(4) as u32;
    let mut out = Vec::new();
    let mut off = 0;
    while off < total {
        let n = (total - off).min(xfer);
        out.push((off, n));
        off += n;
    }
    out
}

/// What the Firmware Slot Information log says (figure 209).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlotLog {
    /// AFI bits 2:0: the slot the running firmware came from.
    pub active: u8,
    /// AFI bits 6:4: the slot activated at the next reset (0: none).
    pub next: u8,
    /// FRS1..FRS7, trailing spaces removed ("" = no image).
    pub revisions: Vec<String>,
}

impl SlotLog {
    pub fn parse(b: &[u8]) -> Option<SlotLog> {
        if b.len() < 64 {
            return None;
        }
        let revisions = (0..7)
            .map(|i| {
                let r = &b[8 + 8 * i..16 + 8 * i];
                if r.iter().all(|&x| x == 0) {
                    String::new()
                } else {
                    String::from_utf8_lossy(r).trim_end().to_string()
                }
            })
            .collect();
        Some(SlotLog { active: b[0] & 7, next: (b[0] >> 4) & 7, revisions })
    }

    fn text(&self) -> String {
        let mut slots: Vec<String> = Vec::new();
        let last = self.revisions.iter().rposition(|r| !r.is_empty()).map_or(2, |i| (i + 1).max(2));
        for (i, r) in self.revisions.iter().enumerate().take(last) {
            slots.push(format!("slot {}: {}", i + 1, if r.is_empty() { "-" } else { r }));
        }
        let next = if self.next == 0 { "-".to_string() } else { self.next.to_string() };
        format!("active slot {}, next {next}; {}", self.active, slots.join(", "))
    }
}

/// What one `[[firmware]]` entry did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FirmwareReport {
    pub image: Option<String>,
    pub bytes: u64,
    pub pieces: u64,
    /// The first download piece refused, if any: (offset, status).
    pub download_error: Option<String>,
    pub commit_action: u8,
    pub commit_slot: u8,
    /// The commit's status ("1/0b Firmware Activation ..."), if committed.
    pub commit: Option<String>,
    pub commit_ms: f64,
    /// `admin_during_commit`: when the slot log read issued 1 ms into the
    /// commit completed (ms after the commit's submission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub during_commit_ms: Option<f64>,
    pub slot_log: Option<SlotLog>,
    /// Malformed commands sent (`checks`) and their statuses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    pub problems: Vec<String>,
}

impl FirmwareReport {
    pub fn text(&self) -> String {
        let mut o = String::new();
        for c in &self.checks {
            o.push_str(&format!("firmware check: {c}\n"));
        }
        if let Some(i) = &self.image {
            o.push_str(&format!("firmware: downloaded {} ({} bytes in {} pieces)\n", i, self.bytes, self.pieces));
        }
        if let Some(e) = &self.download_error {
            o.push_str(&format!("firmware: download refused: {e}\n"));
        }
        if let Some(c) = &self.commit {
            o.push_str(&format!("firmware: commit action {} slot {}: {c} ({:.1} ms)\n", self.commit_action, self.commit_slot, self.commit_ms));
            if let Some(d) = self.during_commit_ms {
                o.push_str(&format!("firmware: slot log read during the commit: completed {d:.1} ms into it\n"));
            }
        }
        if let Some(l) = &self.slot_log {
            o.push_str(&format!("firmware slot log: {}\n", l.text()));
        }
        for p in &self.problems {
            o.push_str(&format!("    ! {p}\n"));
        }
        o
    }
}

fn status_of(r: &Result<super::nvme::Cqe, CmdError>) -> Result<(u8, u8), String> {
    match r {
        Ok(c) => Ok(c.code()),
        Err(CmdError::Status(c)) => Ok(c.code()),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads the Firmware Slot Information log.
async fn read_slot_log(h: &Host, ctrl: &Controller) -> Result<SlotLog, String> {
    let buf = DataBuf::alloc(h, 512, 0);
    let r = ctrl.data_command(0, slot_log_sqe(), &buf).await;
    match status_of(&r)? {
        (0, 0) => {
            let mut b = vec![0u8; 512];
            buf.read(h, &mut b);
            Ok(SlotLog::parse(&b).unwrap_or_default())
        }
        code => Err(status_name(code)),
    }
}

/// Malformed firmware commands and the status each must get (NVMe Base
/// 2.0 §5.12, §5.13): "what: status" lines, and the mismatches.
async fn malformed(h: &Host, ctrl: &Controller, vf: Option<&Controller>) -> (Vec<String>, Vec<String>) {
    let (mut lines, mut problems) = (Vec::new(), Vec::new());
    let log = match read_slot_log(h, ctrl).await {
        Ok(l) => l,
        Err(e) => return (lines, vec![format!("checks: slot log: {e}")]),
    };
    let buf = DataBuf::alloc(h, 8192, 0);
    let dl = |off: u32, len: u32| download_sqe(off, len).expect("whole dwords");
    let cm = |slot: u8, action: u8| commit_sqe(slot, action).expect("3-bit fields");
    // (what, command, bytes of data (0: none), expected (SCT, SC)).
    let mut cases: Vec<(&str, Sqe, u32, (u8, u8))> = vec![
        ("download after a gap (offset 4096, nothing received)", dl(4096, 4096), 4096, (0, 0x02)),
        ("download of the first 8 KiB", dl(0, 8192), 8192, (0, 0x00)),
        ("download overlapping what was received", dl(4096, 4096), 4096, (1, 0x14)),
        ("download at an offset off the 4 KiB granularity", dl(8196, 4), 4, (0, 0x02)),
        ("download of 132 KiB (above MDTS)", dl(8192, 132 * 1024), 0, (0, 0x02)),
        ("commit to slot 5 (two slots)", cm(5, 1), 0, (1, 0x06)),
        ("commit replacing the running slot", cm(log.active.max(1), 0), 0, (1, 0x06)),
        ("commit action 110b (boot partition)", cm(1, 6), 0, (0, 0x02)),
        ("commit action 100b (reserved)", cm(0, 4), 0, (0, 0x02)),
    ];
    // Activating a slot that holds no image.
    if let Some(empty) = (1..=2u8).find(|&s| s != log.active && log.revisions.get(usize::from(s) - 1).is_some_and(|r| r.is_empty())) {
        cases.push(("commit activating an empty slot", cm(empty, 2), 0, (1, 0x07)));
        // 011b after the partial download above: that image replaces
        // the slot's only if it verifies (it does not: the flash is left
        // alone); 011b then has nothing new and activates the empty slot.
        cases.push(("commit action 011b of a partial image", cm(empty, 3), 0, (1, 0x07)));
        cases.push(("commit action 011b on an empty slot, nothing downloaded", cm(empty, 3), 0, (1, 0x07)));
    }
    for (what, sqe, len, want) in cases {
        let r = if len > 0 {
            let piece = DataBuf { len, ..buf.clone() };
            ctrl.data_command(0, sqe, &piece).await
        } else {
            ctrl.submit_timeout(0, sqe, COMMIT_TIMEOUT_NS).await
        };
        check(&mut lines, &mut problems, what, status_of(&r), want);
    }
    if let Some(vf) = vf {
        let piece = DataBuf { len: 4096, ..buf.clone() };
        let r = vf.data_command(0, dl(0, 4096), &piece).await;
        check(&mut lines, &mut problems, "download on VF 1", status_of(&r), (0, 0x01));
        let r = vf.submit_timeout(0, cm(0, 1), COMMIT_TIMEOUT_NS).await;
        check(&mut lines, &mut problems, "commit on VF 1", status_of(&r), (0, 0x01));
    }
    (lines, problems)
}

fn check(lines: &mut Vec<String>, problems: &mut Vec<String>, what: &str, got: Result<(u8, u8), String>, want: (u8, u8)) {
    match got {
        Ok(code) => {
            lines.push(format!("{what}: {}", status_name(code)));
            if code != want {
                problems.push(format!("{what}: {} (expected {})", status_name(code), status_name(want)));
            }
        }
        Err(e) => problems.push(format!("{what}: {e}")),
    }
}

/// `admin_during_commit`: 1 ms after `t0` (the commit's submission),
/// reads the Firmware Slot Information log on the admin queue; the slot
/// gets when it completed (ms after `t0`) or why it failed.
fn during_commit(h: &Host, ctrl: &Controller, t0: u64) -> Rc<RefCell<Option<Result<f64, String>>>> {
    let out = Rc::new(RefCell::new(None));
    let (h2, ctrl, o) = (h.clone(), ctrl.clone(), out.clone());
    h.spawn(async move {
        h2.sleep(h2.cycles(1_000_000)).await;
        let buf = DataBuf::alloc(&h2, 512, 0);
        let r = ctrl.data_command_timeout(0, slot_log_sqe(), &buf, Some(COMMIT_TIMEOUT_NS)).await;
        let v = match status_of(&r) {
            Ok((0, 0)) => Ok(h2.ns(h2.now() - t0) as f64 / 1e6),
            Ok(code) => Err(status_name(code)),
            Err(e) => Err(e),
        };
        *o.borrow_mut() = Some(v);
    });
    out
}

/// Carries out one `[[firmware]]` entry on the PF's controller (`vf`:
/// VF 1's, for the checks).
pub async fn run(h: Host, ctrl: Controller, vf: Option<Controller>, sc: &Scenario, cfg: FirmwareCfg) -> FirmwareReport {
    let mut rep = FirmwareReport { commit_action: cfg.action, commit_slot: cfg.slot, ..Default::default() };
    h.sleep(h.cycles(cfg.at_ns())).await;
    if cfg.checks {
        let (lines, problems) = malformed(&h, &ctrl, vf.as_ref()).await;
        for l in &lines {
            h.log(format!("firmware check: {l}"));
        }
        rep.checks = lines;
        rep.problems.extend(problems);
    }
    // Without an image, 010b and 011b act on the slot's existing image
    // (§5.12: 011b "If there is not a newly downloaded image, then the
    // existing image in the specified firmware slot is activated").
    let mut commit = cfg.action == 2 || cfg.action == 3;
    if let Some(path) = cfg.image_path(sc) {
        let img = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                rep.problems.push(format!("{}: {e}", path.display()));
                return rep;
            }
        };
        rep.image = Some(path.file_name().map_or(path.display().to_string(), |n| n.to_string_lossy().to_string()));
        let xfer = cfg.xfer_bytes();
        let buf = DataBuf::alloc(&h, xfer, 0);
        commit = true;
        for (off, len) in pieces(img.len(), xfer) {
            let mut chunk = vec![0u8; len as usize];
            let end = (off as usize + len as usize).min(img.len());
            chunk[..end - off as usize].copy_from_slice(&img[off as usize..end]);
            let piece = DataBuf { len, ..buf.clone() };
            piece.write(&h, &chunk);
            let sqe = match download_sqe(off, len) {
                Ok(s) => s,
                Err(e) => {
                    rep.problems.push(e);
                    return rep;
                }
            };
            let r = ctrl.data_command(0, sqe, &piece).await;
            rep.pieces += 1;
            match status_of(&r) {
                Ok((0, 0)) => rep.bytes += u64::from(len),
                Ok(code) => {
                    // nvme-cli stops at the first refused piece and commits nothing.
                    rep.download_error = Some(format!("piece at {off}: {}", status_name(code)));
                    commit = false;
                    break;
                }
                Err(e) => {
                    rep.problems.push(format!("download piece at {off}: {e}"));
                    return rep;
                }
            }
        }
        h.log(format!("firmware: downloaded {} bytes in {} pieces", rep.bytes, rep.pieces));
    }
    if commit {
        let sqe = match commit_sqe(cfg.slot, cfg.action) {
            Ok(s) => s,
            Err(e) => {
                rep.problems.push(e);
                return rep;
            }
        };
        let t0 = h.now();
        let probe = cfg.admin_during_commit.then(|| during_commit(&h, &ctrl, t0));
        let r = ctrl.submit_timeout(0, sqe, COMMIT_TIMEOUT_NS).await;
        rep.commit_ms = h.ns(h.now() - t0) as f64 / 1e6;
        if let Some(p) = probe {
            // Wait for the probe (it may still be queued behind the commit).
            while p.borrow().is_none() {
                h.sleep(h.cycles(100_000)).await;
            }
            match p.borrow_mut().take() {
                Some(Ok(ms)) => {
                    rep.during_commit_ms = Some(ms);
                    if ms >= rep.commit_ms {
                        rep.problems.push(format!(
                            "the slot log read issued 1 ms into the commit completed only after it ({ms:.1} ms, commit {:.1} ms): the commit holds the admin queue",
                            rep.commit_ms
                        ));
                    }
                }
                Some(Err(e)) => rep.problems.push(format!("slot log read during the commit: {e}")),
                None => {}
            }
        }
        match status_of(&r) {
            Ok(code) => {
                let name = status_name(code);
                h.log(format!("firmware: commit action {} slot {}: {name}", cfg.action, cfg.slot));
                if let Some(want) = cfg.expected_commit() {
                    if want != code {
                        rep.problems.push(format!("commit: {name} (expected {})", status_name(want)));
                    }
                }
                rep.commit = Some(name);
            }
            Err(e) => rep.problems.push(format!("commit: {e}")),
        }
    } else if let Some(want) = cfg.expected_commit() {
        rep.problems.push(format!("nothing was committed (expected {})", status_name(want)));
    }
    // What the slots hold now.
    let buf = DataBuf::alloc(&h, 512, 0);
    let r = ctrl.data_command(0, slot_log_sqe(), &buf).await;
    match status_of(&r) {
        Ok((0, 0)) => {
            let mut b = vec![0u8; 512];
            buf.read(&h, &mut b);
            let log = SlotLog::parse(&b).unwrap_or_default();
            h.log(format!("firmware slot log: {}", log.text()));
            if let Some(a) = cfg.expect_active {
                if log.active != a {
                    rep.problems.push(format!("active slot {} (expected {a})", log.active));
                }
            }
            if let Some(want) = &cfg.expect_revisions {
                for (i, w) in want.iter().enumerate() {
                    let got = log.revisions.get(i).cloned().unwrap_or_default();
                    if &got != w {
                        rep.problems.push(format!("slot {}: revision `{got}` (expected `{w}`)", i + 1));
                    }
                }
            }
            rep.slot_log = Some(log);
        }
        Ok(code) => rep.problems.push(format!("Firmware Slot Information log: {}", status_name(code))),
        Err(e) => rep.problems.push(format!("Firmware Slot Information log: {e}")),
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_dwords_and_fields() {
        let d = download_sqe(8192, 4096).unwrap();
        assert_eq!((d.opcode(), d.0[10], d.0[11]), (0x11, 1023, 2048));
        assert!(download_sqe(0, 6).is_err(), "not whole dwords");
        assert!(download_sqe(2, 4).is_err());
        assert!(download_sqe(0, 0).is_err());
        let c = commit_sqe(2, 1).unwrap();
        assert_eq!((c.opcode(), c.0[10]), (0x10, 0b001_010));
        assert!(commit_sqe(8, 1).is_err());
        let l = slot_log_sqe();
        assert_eq!((l.opcode(), l.0[10]), (0x02, 127 << 16 | 3));
    }

    #[test]
    fn images_go_in_pieces_padded_to_dwords() {
        assert_eq!(pieces(10_000, 4096), vec![(0, 4096), (4096, 4096), (8192, 1808)]);
        assert_eq!(pieces(4097, 4096), vec![(0, 4096), (4096, 4)]);
        assert_eq!(pieces(8192, 4096).len(), 2);
        assert!(pieces(0, 4096).is_empty());
    }

    #[test]
    fn slot_log_parses() {
        let mut b = vec![0u8; 512];
        b[0] = 0x21;
        b[8..16].copy_from_slice(b"0.1.0   ");
        b[16..24].copy_from_slice(b"0.2.0   ");
        let l = SlotLog::parse(&b).unwrap();
        assert_eq!((l.active, l.next), (1, 2));
        assert_eq!(&l.revisions[..3], &["0.1.0".to_string(), "0.2.0".to_string(), String::new()]);
        assert_eq!(l.text(), "active slot 1, next 2; slot 1: 0.1.0, slot 2: 0.2.0");
        assert!(SlotLog::parse(&b[..10]).is_none());
    }
}
