//! `cargo xtask faults`: the fault campaign. Runs the base scenario
//! `targets/scenarios/fault-campaign.toml` (4 VFs over NVMe/TCP to 4
//! target models on both ports, verified randrw, every written block read
//! back at the end) once without a fault and once per fault kind, and
//! prints one line per run: survived or not, blocks lost or corrupt (must
//! be 0), I/O errors the host saw, retries, and the longest I/O (how long
//! the host waited at worst: the time the card took to recover).

use crate::build::{root, show, Built};
use serde_json::Value;
use std::process::Command;

/// One run of the campaign.
struct Case {
    name: &'static str,
    /// The host's I/O timeout (ms) instead of the base scenario's.
    io_timeout_ms: Option<u32>,
    /// Lines added to the scenario's `[network]` table.
    network: &'static str,
    /// `[[faults]]` tables appended to the scenario.
    faults: &'static str,
    /// The host may see I/O errors (the fault fails transfers to the host
    /// itself); blocks must still never be lost or corrupt.
    io_errors_expected: bool,
}

const CASES: &[Case] = &[
    Case { name: "none (baseline)", io_timeout_ms: None, network: "", faults: "", io_errors_expected: false },
    Case { name: "link flap: port 1 down 1 ms", io_timeout_ms: None, network: "", faults: "kind = \"link-down\"\nport = 1\nduration = \"1ms\"\n", io_errors_expected: false },
    Case { name: "frame loss 1%", io_timeout_ms: None, network: "loss_percent = 1.0\nseed = 3\n", faults: "", io_errors_expected: false },
    Case { name: "reordering 2%", io_timeout_ms: None, network: "reorder_percent = 2.0\nseed = 4\n", faults: "", io_errors_expected: false },
    Case { name: "duplication 2%", io_timeout_ms: None, network: "duplicate_percent = 2.0\nseed = 5\n", faults: "", io_errors_expected: false },
    Case { name: "target restart: t1 down 2 ms", io_timeout_ms: None, network: "", faults: "kind = \"target-restart\"\ntarget = \"t1\"\nduration = \"2ms\"\n", io_errors_expected: false },
    Case { name: "target stall: t2 3 ms", io_timeout_ms: None, network: "", faults: "kind = \"target-stall\"\ntarget = \"t2\"\nduration = \"3ms\"\n", io_errors_expected: false },
    Case {
        name: "target black hole: t3 8 ms, commands lost",
        io_timeout_ms: None,
        network: "",
        faults: "kind = \"target-blackhole\"\ntarget = \"t3\"\nduration = \"8ms\"\n",
        io_errors_expected: false,
    },
    Case {
        name: "slow target: t0 media 300 us for 5 ms",
        io_timeout_ms: None,
        network: "",
        faults: "kind = \"target-slow\"\ntarget = \"t0\"\nlatency = \"300us\"\nduration = \"5ms\"\n",
        io_errors_expected: false,
    },
    Case { name: "malformed PDUs from t0", io_timeout_ms: None, network: "", faults: "kind = \"target-garbage\"\ntarget = \"t0\"\n", io_errors_expected: false },
    Case {
        name: "DMA errors: VF 2's host memory 200 us",
        io_timeout_ms: None,
        network: "",
        faults: "kind = \"dma-error\"\nfunction = 2\nduration = \"200us\"\n",
        io_errors_expected: true,
    },
    // Long enough that VF 2's reset meets it too: the card declares the
    // controller fatal (admin SQ unreadable) and drops the reset's Set
    // Features; the host driver gives up on it after the admin timeout
    // and removes the controller, as Linux does. VF 2's I/O fails with
    // errors, the other functions are untouched, nothing hangs.
    Case {
        name: "DMA errors: VF 2 60 ms, reset too: removed",
        io_timeout_ms: Some(10),
        network: "",
        faults: "kind = \"dma-error\"\nfunction = 2\nduration = \"60ms\"\n",
        io_errors_expected: true,
    },
];

/// What one run found.
pub struct Outcome {
    pub name: &'static str,
    pub survived: bool,
    pub why: String,
    pub lost: u64,
    pub corrupt: u64,
    pub io_errors: u64,
    pub retries: u64,
    pub longest_ms: f64,
}

/// The scenario text of `case`.
fn scenario(base: &str, case: &Case) -> Result<String, String> {
    let mut s = base.replacen("[network]\n", &format!("[network]\n{}", case.network), 1);
    if let Some(ms) = case.io_timeout_ms {
        const AT: &str = "\nio_timeout_ms = 100\n";
        if !s.contains(AT) {
            return Err(format!("fault `{}`: the base scenario has no `{}` to change", case.name, AT.trim()));
        }
        s = s.replacen(AT, &format!("\nio_timeout_ms = {ms}\n"), 1);
    }
    if !case.faults.is_empty() {
        s.push_str(&format!("\n[[faults]]\nat = \"5ms\"\n{}", case.faults));
    }
    Ok(s)
}

fn run_case(built: &Built, base: &str, case: &Case, tmp: &std::path::Path) -> Result<Outcome, String> {
    // One file per case (cases run side by side).
    let stem: String = case.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let file = tmp.join(format!("fault-{stem}.toml"));
    std::fs::write(&file, scenario(base, case)?).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut c = Command::new(&built.dpusim);
    // A case lasts well under a second of card time: a hang is a failure
    // (exit 5), not a run that never ends.
    c.arg("--elf").arg(&built.firmware).arg("--scenario").arg(&file).args(["--json", "-q", "--max-time", "3s"]);
    let out = c.output().map_err(|e| format!("cannot run {}: {e}", show(&c)))?;
    let code = out.status.code().unwrap_or(-1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let jobs = report["jobs"].as_array().cloned().unwrap_or_default();
    let sum = |k: &str| jobs.iter().map(|j| j[k].as_u64().unwrap_or(0)).sum::<u64>();
    let longest_ms = jobs.iter().map(|j| j["total"]["lat_max_us"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max) / 1000.0;
    let (lost, corrupt, io_errors, retries) = (sum("verify_lost"), sum("verify_corrupt"), sum("errors"), sum("retries"));
    let mut why = Vec::new();
    // 0: expectations met; 1: expectations not met (judged here instead).
    if code != 0 && code != 1 {
        let last = String::from_utf8_lossy(&out.stderr).lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        why.push(format!("dpusim exit status {code}: {last}"));
    }
    if jobs.len() != 4 {
        why.push(format!("{} job results (expected 4)", jobs.len()));
    }
    if lost + corrupt > 0 {
        why.push(format!("{lost} lost and {corrupt} corrupt sectors"));
    }
    if io_errors > 0 && !case.io_errors_expected {
        why.push(format!("{io_errors} I/O errors"));
    }
    if sum("swept") == 0 && jobs.len() == 4 {
        why.push("nothing read back at the end".into());
    }
    Ok(Outcome { name: case.name, survived: why.is_empty(), why: why.join("; "), lost, corrupt, io_errors, retries, longest_ms })
}

/// Runs the whole campaign (or the cases whose name contains `only`);
/// prints the table; returns the outcomes.
pub fn campaign(built: &Built, only: Option<&str>) -> Result<Vec<Outcome>, String> {
    let base_path = root().join("targets/scenarios/fault-campaign.toml");
    let base = std::fs::read_to_string(&base_path).map_err(|e| format!("{}: {e}", base_path.display()))?;
    let tmp = root().join("target/faults");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let cases: Vec<&Case> = CASES.iter().filter(|c| only.is_none_or(|o| c.name.contains(o))).collect();
    if cases.is_empty() {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        return Err(format!("no fault matches `{}`; the faults are:\n  {}", only.unwrap_or(""), names.join("\n  ")));
    }
    println!("{:<44} {:<9} {:>5} {:>8} {:>11} {:>8} {:>12}", "fault", "result", "lost", "corrupt", "I/O errors", "retries", "longest I/O");
    // Each case is its own simulator process: run as many at once as the
    // machine has cores, print in the campaign's order.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(cases.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Outcome, String>)>();
    let mut out = Vec::new();
    std::thread::scope(|s| -> Result<(), String> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, cases, base, tmp) = (&next, &cases, &base, &tmp);
            s.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                if tx.send((i, run_case(built, base, case, tmp))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done: Vec<Option<Result<Outcome, String>>> = (0..cases.len()).map(|_| None).collect();
        for (i, r) in rx {
            done[i] = Some(r);
            while let Some(r) = done.get_mut(out.len()).and_then(Option::take) {
                let o = match r {
                    Ok(o) => o,
                    Err(e) => {
                        // Stop handing out cases; the running ones finish.
                        next.store(usize::MAX / 2, std::sync::atomic::Ordering::Relaxed);
                        return Err(e);
                    }
                };
                println!(
                    "{:<44} {:<9} {:>5} {:>8} {:>11} {:>8} {:>9.2} ms{}",
                    o.name,
                    if o.survived { "survived" } else { "FAILED" },
                    o.lost,
                    o.corrupt,
                    o.io_errors,
                    o.retries,
                    o.longest_ms,
                    if o.survived { String::new() } else { format!("  ({})", o.why) }
                );
                out.push(o);
            }
        }
        Ok(())
    })?;
    Ok(out)
}
