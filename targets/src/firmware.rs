//! Scenario `[[firmware]]` entries: the host updates the card's firmware
//! through NVMe on the PF (Firmware Image Download + Firmware Commit, as
//! `nvme fw-download` / `nvme fw-commit` do), then reads the Firmware
//! Slot Information log; or only reads the log (no `image`).

use crate::scenario::{parse_size, parse_time_ns, Scenario};
use crate::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// Commit statuses a scenario may expect, by name, with their (SCT, SC)
/// (NVMe Base 2.0 figure 102).
pub const COMMIT_STATUSES: &[(&str, (u8, u8))] = &[
    ("success", (0, 0x00)),
    ("invalid-field", (0, 0x02)),
    ("invalid-firmware-slot", (1, 0x06)),
    ("invalid-firmware-image", (1, 0x07)),
    ("requires-conventional-reset", (1, 0x0b)),
    ("requires-nvm-subsystem-reset", (1, 0x10)),
    ("requires-controller-reset", (1, 0x11)),
    ("requires-maximum-time-violation", (1, 0x12)),
    ("overlapping-range", (1, 0x14)),
    ("invalid-opcode", (0, 0x01)),
];

fn d_action() -> u8 {
    1
}
fn d_xfer() -> String {
    "32k".into()
}

/// One firmware update (or slot log read) by the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareCfg {
    /// When, after the PF is up (e.g. "1ms"); unset: at once.
    pub at: Option<String>,
    /// Signed image file (relative to the scenario file); none: only the
    /// Firmware Slot Information log is read, unless `action` is 2 or 3
    /// (committed without a download: the slot's existing image).
    pub image: Option<PathBuf>,
    /// Firmware Commit action: 0 replace, 1 replace and activate at the
    /// next reset, 2 activate the slot's image, 3 replace and activate now.
    #[serde(default = "d_action")]
    pub action: u8,
    /// Firmware slot (0: the controller chooses).
    #[serde(default)]
    pub slot: u8,
    /// Bytes per Firmware Image Download (multiple of 4 KiB, at most 128 KiB).
    #[serde(default = "d_xfer")]
    pub xfer: String,
    /// The commit's expected status (a name of [`COMMIT_STATUSES`]).
    pub expect_commit: Option<String>,
    /// The slot log's expected active slot (AFI bits 2:0).
    pub expect_active: Option<u8>,
    /// The slot log's expected revisions of slots 1, 2, ... ("" = empty).
    pub expect_revisions: Option<Vec<String>>,
    /// Before the update, send malformed firmware commands (a gap, an
    /// overlap, an unaligned offset, a piece above MDTS, bad slots, a boot
    /// partition action; on VF 1 if `host.vfs` > 0) and check each status.
    #[serde(default)]
    pub checks: bool,
    /// 1 ms after submitting the commit, the host also reads the Firmware
    /// Slot Information log (as `nvme fw-log` from another shell would)
    /// and expects it back before the commit: writing a slot takes
    /// seconds, and the card serves other admin commands meanwhile.
    #[serde(default)]
    pub admin_during_commit: bool,
}

impl FirmwareCfg {
    /// The image path, resolved against the scenario file's folder.
    pub fn image_path(&self, sc: &Scenario) -> Option<PathBuf> {
        let p = self.image.as_ref()?;
        Some(if p.is_absolute() { p.clone() } else { sc.source.parent().map_or(p.clone(), |d| d.join(p)) })
    }

    pub fn at_ns(&self) -> u64 {
        self.at.as_deref().and_then(|t| parse_time_ns(t).ok()).unwrap_or(0)
    }

    pub fn xfer_bytes(&self) -> u32 {
        parse_size(&self.xfer).unwrap_or(32 * 1024) as u32
    }

    /// The expected commit status as (SCT, SC).
    pub fn expected_commit(&self) -> Option<(u8, u8)> {
        let n = self.expect_commit.as_deref()?;
        COMMIT_STATUSES.iter().find(|(k, _)| *k == n).map(|(_, c)| *c)
    }
}

/// Checks every `[[firmware]]` entry (field names in the errors).
pub(crate) fn validate(sc: &Scenario) -> Result<(), ConfigError> {
    let f = &sc.source;
    let err = |field: String, msg: String| Err(ConfigError::field(f, field, msg));
    if !sc.firmware.is_empty() && sc.preos.is_some() {
        return err("firmware".into(), "a [preos] scenario runs no firmware update".into());
    }
    for (i, w) in sc.firmware.iter().enumerate() {
        let at = |field: &str| format!("firmware[{i}].{field}");
        if let Some(t) = &w.at {
            parse_time_ns(t).map_err(|m| ConfigError::field(f, at("at"), m))?;
        }
        if w.action > 3 {
            return err(at("action"), format!("{} is not a commit action (0 replace, 1 replace and activate, 2 activate, 3 replace and activate now)", w.action));
        }
        if w.slot > 7 {
            return err(at("slot"), format!("{} is out of range 0..=7 (the Firmware Slot field has 3 bits)", w.slot));
        }
        let x = parse_size(&w.xfer).map_err(|m| ConfigError::field(f, at("xfer"), m))?;
        if x == 0 || x % 4096 != 0 || x > 128 * 1024 {
            return err(at("xfer"), format!("{x} must be a multiple of 4 KiB, at most 128 KiB (the controller's MDTS)"));
        }
        if let Some(n) = &w.expect_commit {
            if w.image.is_none() && w.action != 2 && w.action != 3 {
                return err(at("expect_commit"), "no image: nothing is committed (give `image`, or action = 2 or 3)".into());
            }
            if w.expected_commit().is_none() {
                let names: Vec<&str> = COMMIT_STATUSES.iter().map(|(k, _)| *k).collect();
                return err(at("expect_commit"), format!("`{n}` is not a status ({})", names.join(", ")));
            }
        }
        if let Some(p) = w.image_path(sc) {
            if !p.is_file() {
                return err(at("image"), format!("{}: no such file", p.display()));
            }
        }
        if let Some(r) = &w.expect_revisions {
            if r.len() > 7 || r.iter().any(|s| s.len() > 8) {
                return err(at("expect_revisions"), "at most 7 slots, each revision at most 8 characters".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Scenario;

    const BASE: &str = r#"
[scenario]
name = "fw"
[[firmware]]
at = "1ms"
action = 1
expect_active = 1
expect_revisions = ["0.1.0", ""]
"#;

    fn load(text: &str) -> Result<Scenario, String> {
        Scenario::parse("fw.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn firmware_entry_parses() {
        let s = load(BASE).unwrap();
        let w = &s.firmware[0];
        assert_eq!((w.at_ns(), w.action, w.slot, w.xfer_bytes()), (1_000_000, 1, 0, 32 * 1024));
        assert_eq!(w.expect_revisions.as_deref(), Some(&["0.1.0".to_string(), String::new()][..]));
        let s = load(&BASE.replace("action = 1", "action = 2\nexpect_commit = \"requires-conventional-reset\"")).unwrap();
        assert_eq!(s.firmware[0].expected_commit(), Some((1, 0x0b)));
        // 011b without an image activates the slot's image: a commit to expect.
        let s = load(&BASE.replace("action = 1", "action = 3
slot = 2
expect_commit = \"requires-conventional-reset\"")).unwrap();
        assert_eq!((s.firmware[0].action, s.firmware[0].expected_commit()), (3, Some((1, 0x0b))));
        assert!(!s.firmware[0].checks);
        assert!(load(&BASE.replace("action = 1", "action = 1\nchecks = true")).unwrap().firmware[0].checks);
    }

    #[test]
    fn bad_firmware_fields_are_named() {
        let cases = [
            ("action = 1", "action = 4", "firmware[0].action"),
            ("action = 1", "action = 1\nslot = 8", "firmware[0].slot"),
            ("action = 1", "action = 1\nxfer = \"1000\"", "firmware[0].xfer"),
            ("action = 1", "action = 1\nxfer = \"256k\"", "firmware[0].xfer"),
            ("at = \"1ms\"", "at = \"soon\"", "firmware[0].at"),
            ("action = 1", "action = 1\nimage = \"/nonexistent/fw.img\"", "firmware[0].image"),
            ("action = 1", "action = 1\nexpect_commit = \"success\"", "firmware[0].expect_commit"),
            ("action = 1", "action = 2\nexpect_commit = \"great\"", "firmware[0].expect_commit"),
            ("action = 1", "action = 1\ncolour = 1", "firmware[0].colour"),
        ];
        for (from, to, field) in cases {
            let e = load(&BASE.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(field), "{to}: {e}");
        }
    }
}
