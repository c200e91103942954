//! `cargo xtask interop linux-initiator`: the Linux kernel's NVMe/TCP host
//! (nvme-tcp) in a QEMU guest against the card's NVMe/TCP target.
//!
//! The guest boots the same initramfs as the target guest with
//! `dpusim.mode=initiator` (`init.sh`); `dpusim --bridge` runs
//! `targets/scenarios/interop-linux-initiator.toml` (a RAM subsystem open
//! to any host, a local-SSD subsystem with an allow-list). The guest
//! connects through `/dev/nvme-fabrics`, writes random patterns with dd
//! (O_DIRECT; 4 KiB, 64 KiB and 128 KiB blocks), reads them back and
//! compares, checks that a host NQN off the allow-list is refused, then
//! disconnects and prints its verdict, which decides the run.

use super::{free_udp_ports, progress, GuestConfig, LinuxTarget};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const READY_MARK: &str = "DPUSIM-INITIATOR-READY";
const PASS_MARK: &str = "DPUSIM-INITIATOR-PASS";
const FAIL_MARK: &str = "DPUSIM-INITIATOR-FAIL";
/// The scenario the card runs.
pub const SCENARIO: &str = "interop-linux-initiator";
/// The card's port 0 address and the subsystems of the scenario.
const CARD_IP: &str = "10.0.0.1";
const RAM_NQN: &str = "nqn.2026-12.io.dpusim:ram";
const SSD_NQN: &str = "nqn.2026-12.io.dpusim:ssd";
/// On the SSD subsystem's allow-list (the scenario's `allow_hosts`).
const HOST_NQN: &str = "nqn.2014-08.org.nvmexpress:uuid:0d9c2a5e-dpusim-guest";
/// Not on it.
const BAD_HOST_NQN: &str = "nqn.2014-08.org.nvmexpress:uuid:0d9c2a5e-intruder";
/// How long the guest's connect, writes and reads may take (wall time;
/// the simulated card is paced to it).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// What the guest does as an initiator.
#[derive(Clone, Debug)]
pub struct InitiatorCfg {
    pub target: String,
    pub nqn2: Option<String>,
    pub hostnqn: String,
    pub badhostnqn: Option<String>,
}

impl InitiatorCfg {
    pub(crate) fn cmdline(&self) -> String {
        let mut s = format!(" dpusim.mode=initiator dpusim.target={} dpusim.hostnqn={}", self.target, self.hostnqn);
        if let Some(n) = &self.nqn2 {
            s.push_str(&format!(" dpusim.nqn2={n}"));
        }
        if let Some(n) = &self.badhostnqn {
            s.push_str(&format!(" dpusim.badhostnqn={n}"));
        }
        s
    }
}

/// Boots the initiator guest, runs the card's target scenario bridged to
/// it, and waits for the guest's verdict. Returns a report (the guest's
/// result lines and the card's target log lines).
pub fn linux_against_card(dpusim: &Path, firmware: &Path) -> Result<String, String> {
    let t0 = Instant::now();
    let dir = crate::build::root().join("target/interop");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (guest_port, sim_port) = free_udp_ports()?;
    let mut cfg = GuestConfig::new(guest_port, sim_port);
    cfg.nqn = RAM_NQN.into();
    cfg.ramdisk_mib = 1;
    cfg.pcap = Some(dir.join("initiator-guest.pcap"));
    cfg.initiator = Some(InitiatorCfg { target: CARD_IP.into(), nqn2: Some(SSD_NQN.into()), hostnqn: HOST_NQN.into(), badhostnqn: Some(BAD_HOST_NQN.into()) });
    let mut guest = LinuxTarget::launch(&cfg, false, "initiator")?;
    let scenario = crate::build::root().join(format!("targets/scenarios/{SCENARIO}.toml"));
    let log = dir.join(format!("{SCENARIO}.log"));
    let out = dir.join(format!("{SCENARIO}.out"));
    let create = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut sim = Command::new(dpusim)
        .arg("--elf")
        .arg(firmware)
        .arg("--scenario")
        .arg(&scenario)
        .arg("--bridge")
        .arg(format!("udp:127.0.0.1:{sim_port}:127.0.0.1:{guest_port}"))
        .arg("--pcap")
        .arg(dir.join(format!("{SCENARIO}.pcap")))
        .arg("--run-on")
        .arg("--max-time")
        .arg(format!("{}s", RUN_TIMEOUT.as_secs()))
        .stdin(Stdio::null())
        .stdout(create(&out)?)
        .stderr(create(&log)?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", dpusim.display()))?;
    progress(&format!("card running {SCENARIO} bridged to the guest (UDP {sim_port} <-> {guest_port}); firmware log {}", log.display()));
    let verdict = guest.wait_console("the initiator's verdict", RUN_TIMEOUT, |line| {
        if line.contains(PASS_MARK) {
            Some(Ok(()))
        } else {
            let i = line.find(FAIL_MARK)?;
            Some(Err(format!("the Linux initiator failed: {}", line[i + FAIL_MARK.len()..].trim())))
        }
    });
    let sim_exited = sim.try_wait().ok().flatten();
    let _ = sim.kill();
    let _ = sim.wait();
    if !guest.wait_exit(Duration::from_secs(15)) {
        progress("the guest did not power off; killing QEMU");
    }
    let console = guest.console();
    guest.stop();
    // The firmware log goes to dpusim's stdout, its own notes to stderr.
    let fw = std::fs::read_to_string(&out).unwrap_or_default() + &std::fs::read_to_string(&log).unwrap_or_default();
    let target_lines: Vec<&str> = fw.lines().filter(|l| l.contains("nvmf target") || l.contains("panic") || l.contains("ERROR") || l.contains("WARN")).collect();
    let guest_lines: Vec<&str> = console.lines().filter(|l| l.contains("DPUSIM-INITIATOR") || l.contains("nvme")).collect();
    let report = format!(
        "--- guest (Linux nvme-tcp) ---\n{}\n--- card (NVMe/TCP target log) ---\n{}\n(firmware log {}, captures {}-eth0.pcap)\n",
        guest_lines.join("\n"),
        target_lines.iter().rev().take(40).rev().copied().collect::<Vec<_>>().join("\n"),
        out.display(),
        dir.join(SCENARIO).display()
    );
    match (verdict, sim_exited) {
        (Ok(()), _) => {
            progress(&format!("linux-initiator: passed in {:.1} s", t0.elapsed().as_secs_f64()));
            Ok(report)
        }
        (Err(e), Some(st)) => Err(format!("{e}\n(dpusim had exited: {st})\n{report}")),
        (Err(e), None) => Err(format!("{e}\n{report}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_learns_what_to_connect_to() {
        let mut cfg = GuestConfig::new(5000, 5001);
        cfg.initiator = Some(InitiatorCfg { target: CARD_IP.into(), nqn2: Some(SSD_NQN.into()), hostnqn: HOST_NQN.into(), badhostnqn: Some(BAD_HOST_NQN.into()) });
        let line = cfg.cmdline(false);
        for want in ["dpusim.mode=initiator", "dpusim.target=10.0.0.1", &format!("dpusim.hostnqn={HOST_NQN}"), &format!("dpusim.nqn2={SSD_NQN}"), &format!("dpusim.badhostnqn={BAD_HOST_NQN}")] {
            assert!(line.split(' ').any(|w| w == want), "`{line}` lacks `{want}`");
        }
        assert_eq!(cfg.ready_line(), "DPUSIM-INITIATOR-READY 10.0.0.10");
    }

    #[test]
    fn the_scenario_names_the_guests_subsystems_and_host() {
        let sc = dpu_targets::Scenario::load(crate::build::root().join(format!("targets/scenarios/{SCENARIO}.toml"))).unwrap();
        let subs = sc.subsystems();
        assert_eq!(subs.iter().map(|s| s.nqn.as_str()).collect::<Vec<_>>(), [RAM_NQN, SSD_NQN]);
        assert!(subs[0].allow_hosts.is_empty());
        assert_eq!(subs[1].allow_hosts, [HOST_NQN]);
        assert!(sc.network.ports[0].starts_with(CARD_IP));
    }
}
