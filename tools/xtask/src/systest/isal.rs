//! The erasure-coding engine against Intel ISA-L itself: the `accel`
//! firmware image encodes several (k, m, fragment size) geometries through
//! the engine's registers and prints each parity fragment's FNV-1a 64;
//! `ec_ref` (tools/xtask/src/isal/ec_ref.c, built here against Debian's
//! libisal-dev, installed on first use) computes the same data's parity
//! with `gf_gen_cauchy1_matrix` + `ec_encode_data`. Every hash must match.

use super::{fail, io, Ctx, Run};
use crate::build::root;
use crate::interop::image::{apt_get_retrying, installed};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes sure libisal-dev is installed and builds `ec_ref` in `dir`.
fn build_ec_ref(dir: &Path) -> Result<PathBuf, String> {
    if !installed("libisal-dev") {
        crate::interop::progress("installing the Debian package libisal-dev (ISA-L, the erasure-coding reference)");
        apt_get_retrying(&["install", "-y", "--no-install-recommends", "libisal-dev"], None).map_err(|e| {
            format!(
                "cannot install the Debian package libisal-dev: {e}\ninstall it as root, then retry:\n  \
                 apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libisal-dev"
            )
        })?;
    }
    let src = root().join("tools/xtask/src/isal/ec_ref.c");
    let out = dir.join("ec_ref");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .arg("-O2")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .arg("-lisal")
        .output()
        .map_err(|e| format!("cannot run the C compiler `{cc}` to build {}: {e} (install gcc, or set CC)", src.display()))?;
    if !o.status.success() {
        return Err(format!("building {} against libisal failed:\n{}", src.display(), String::from_utf8_lossy(&o.stderr)));
    }
    Ok(out)
}

/// `k`, `m`, `len`, `seed`, parity index, hash from one firmware line
/// `... ec k=K m=M len=L seed=S: status 0 parity I fnv1a64 HEX`.
fn parse(line: &str) -> Option<(u32, u32, u32, u64, u32, u64)> {
    let rest = &line[line.find("ec k=")? + 3..];
    let field = |key: &str| -> Option<&str> {
        let at = rest.find(key)? + key.len();
        rest[at..].split([' ', ':']).next()
    };
    let status: u32 = field("status ")?.parse().ok()?;
    if status != 0 {
        return None;
    }
    Some((
        field("k=")?.parse().ok()?,
        field("m=")?.parse().ok()?,
        field("len=")?.parse().ok()?,
        field("seed=")?.parse().ok()?,
        field("parity ")?.parse().ok()?,
        u64::from_str_radix(field("fnv1a64 ")?, 16).ok()?,
    ))
}

pub(super) fn ec_parity_equals_isal(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let ec_ref = build_ec_ref(&cx.tmp).map_err(io)?;
    let run = cx.run_image("accel-ec", &cx.image("accel"), &["--max-time", "20ms"]).map_err(io)?;
    if run.code != 0 {
        return fail(format!("the accel image failed (exit {})", run.code), run);
    }
    let got: Vec<_> = run.stdout.lines().filter(|l| l.contains("parity ") && l.contains("fnv1a64")).map(parse).collect();
    if got.is_empty() || got.iter().any(Option::is_none) {
        return fail("the firmware printed no parity hashes, or a failed encode", run);
    }
    let mut geometries = std::collections::BTreeSet::new();
    for (k, m, len, seed, i, h) in got.into_iter().flatten() {
        geometries.insert((k, m, len));
        let o = Command::new(&ec_ref).args([k.to_string(), m.to_string(), len.to_string(), seed.to_string()]).output().map_err(|e| io(e.to_string()))?;
        let text = String::from_utf8_lossy(&o.stdout);
        let want = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("parity {i} fnv1a64 ")))
            .and_then(|x| u64::from_str_radix(x.trim(), 16).ok());
        if want != Some(h) {
            let want = want.map_or_else(|| format!("nothing ({})", String::from_utf8_lossy(&o.stderr).trim()), |w| format!("{w:016x}"));
            return fail(format!("k {k} m {m} len {len} seed {seed}: parity {i} of the engine {h:016x}, ISA-L's ec_encode_data {want}"), run);
        }
    }
    if geometries.len() < 6 || !run.stdout.contains("ec: 3 lost of 4+2 refused true") || run.stdout.contains("equal false") {
        return fail(format!("{} geometries compared; rebuild or refusal lines missing", geometries.len()), run);
    }
    eprintln!("          ISA-L: {} geometries, parity identical; m lost fragments rebuilt for each", geometries.len());
    Ok(())
}
