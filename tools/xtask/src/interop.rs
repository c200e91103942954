//! `cargo xtask interop`: the Linux kernel NVMe/TCP target as a peer.
//!
//! [`LinuxTarget`] boots a tiny Linux guest in QEMU (TCG) that runs the
//! kernel NVMe/TCP target (nvmet-tcp) exporting a RAM disk. The guest's only
//! NIC is a QEMU `-netdev dgram` socket on 127.0.0.1: every UDP datagram is
//! exactly one Ethernet frame (no FCS, no length prefix, no vnet header, no
//! padding to 60 bytes, no checksum offload). A program joins the guest's L2
//! segment by binding `127.0.0.1:udp_remote` and exchanging datagrams with
//! `127.0.0.1:udp_local`; it must answer ARP for its own address.
//!
//! The guest image (Debian kernel + busybox initramfs) is built and cached
//! by `interop/image.rs`; the guest's `/init` is `interop/init.sh`.

#[cfg(test)]
mod frames_probe;
pub(crate) mod image;
pub(crate) mod initiator;
pub(crate) mod two_cards;

use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the guest may take from QEMU start to a listening target.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the in-guest self-test may take once the target listens.
const SELFTEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long QEMU may take to exit after the guest powers off.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(15);

/// Lines `init.sh` prints on the serial console.
const READY_MARK: &str = "DPUSIM-NVMET-READY";
const SETUP_FAIL_MARK: &str = "DPUSIM-NVMET-FAIL";
const PASS_MARK: &str = "DPUSIM-SELFTEST-PASS";
const FAIL_MARK: &str = "DPUSIM-SELFTEST-FAIL";

/// Runs QEMU with a parent-death signal, so QEMU dies with xtask.
const SETPRIV: &str = "/usr/bin/setpriv";

pub(crate) fn progress(msg: &str) {
    eprintln!("xtask: interop: {msg}");
}

/// What the guest looks like on the simulated segment.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// The guest's IPv4 address; the target listens on it.
    pub ip: Ipv4Addr,
    /// Prefix length of the segment.
    pub prefix: u8,
    /// The guest NIC's MAC address (unicast).
    pub mac: [u8; 6],
    /// Subsystem NQN (ASCII letters, digits and `.:-_`).
    pub nqn: String,
    /// TCP port of the NVMe/TCP listener.
    pub port: u16,
    /// Size of the RAM disk behind namespace 1.
    pub ramdisk_mib: u32,
    /// UDP port QEMU binds on 127.0.0.1 (the peer sends frames here).
    pub udp_local: u16,
    /// UDP port on 127.0.0.1 QEMU sends the guest's frames to.
    pub udp_remote: u16,
    /// Optional capture of the guest NIC's traffic (QEMU `filter-dump`).
    pub pcap: Option<PathBuf>,
    /// Boot as an NVMe/TCP host instead of a target (`initiator.rs`).
    pub initiator: Option<initiator::InitiatorCfg>,
}

impl GuestConfig {
    /// 10.0.0.10/24, 52:54:00:12:34:56, `nqn.2026-11.io.dpusim:linux`, port
    /// 4420, 64 MiB, on the given UDP ports.
    pub fn new(udp_local: u16, udp_remote: u16) -> GuestConfig {
        GuestConfig {
            ip: Ipv4Addr::new(10, 0, 0, 10),
            prefix: 24,
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            nqn: "nqn.2026-11.io.dpusim:linux".into(),
            port: 4420,
            ramdisk_mib: 64,
            udp_local,
            udp_remote,
            pcap: None,
            initiator: None,
        }
    }

    fn mac_string(&self) -> String {
        self.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// Rejects what the guest's shell script or the kernel would choke on.
    fn validate(&self) -> Result<(), String> {
        let nqn_ok = |c: char| c.is_ascii_alphanumeric() || ".:-_".contains(c);
        if self.nqn.is_empty() || self.nqn.len() > 223 || !self.nqn.chars().all(nqn_ok) {
            return Err(format!("NQN `{}`: use 1..=223 ASCII letters, digits and `.:-_`", self.nqn));
        }
        if !(1..=32).contains(&self.prefix) {
            return Err(format!("prefix /{} is not in 1..=32", self.prefix));
        }
        if self.ip.is_unspecified() || self.ip.is_loopback() || self.ip.is_multicast() || self.ip.is_broadcast() {
            return Err(format!("{} is not a usable unicast host address", self.ip));
        }
        if self.mac[0] & 1 != 0 || self.mac == [0; 6] {
            return Err(format!("MAC {} is not a unicast address", self.mac_string()));
        }
        if self.port == 0 || self.udp_local == 0 || self.udp_remote == 0 || self.udp_local == self.udp_remote {
            return Err("the TCP port and both UDP ports must be non-zero, and the UDP ports distinct".into());
        }
        if !(1..=4096).contains(&self.ramdisk_mib) {
            return Err(format!("RAM disk of {} MiB is not in 1..=4096", self.ramdisk_mib));
        }
        Ok(())
    }

    /// The kernel command line; `init.sh` parses the `dpusim.*` parameters.
    fn cmdline(&self, selftest: bool) -> String {
        let mut s = format!(
            "console=ttyS0 quiet panic=1 dpusim.ip={} dpusim.prefix={} dpusim.mac={} dpusim.nqn={} dpusim.port={} dpusim.ramdisk_kib={}",
            self.ip,
            self.prefix,
            self.mac_string(),
            self.nqn,
            self.port,
            u64::from(self.ramdisk_mib) * 1024
        );
        if selftest {
            s.push_str(" dpusim.selftest=1");
        }
        if let Some(i) = &self.initiator {
            s.push_str(&i.cmdline());
        }
        s
    }

    /// The line `init.sh` prints once the target listens (or, as an
    /// initiator, once nvme-tcp is loaded).
    fn ready_line(&self) -> String {
        match &self.initiator {
            Some(_) => format!("{} {}", initiator::READY_MARK, self.ip),
            None => format!("{READY_MARK} {}:{} {}", self.ip, self.port, self.nqn),
        }
    }
}

/// A running guest with a listening NVMe/TCP target. Dropping it kills QEMU.
pub struct LinuxTarget {
    child: Option<Child>,
    console_log: PathBuf,
    qemu_log: PathBuf,
}

impl LinuxTarget {
    /// Ensures the Debian packages, builds (or reuses, cached under
    /// `target/interop/`) the kernel and initramfs, starts QEMU and waits (at
    /// most 120 s) until the target listens.
    ///
    /// QEMU gets a parent-death signal (setpriv --pdeathsig): it is killed
    /// when the *thread* that called `start` exits, so call it from a thread
    /// that outlives the returned value (e.g. the main or test thread).
    #[allow(dead_code)] // the simulator interop run uses it
    pub fn start(cfg: &GuestConfig) -> Result<LinuxTarget, String> {
        Self::launch(cfg, false, &format!("udp{}", cfg.udp_local))
    }

    /// Boots the guest; `tag` names its log files in `target/interop/`.
    pub(crate) fn launch(cfg: &GuestConfig, selftest: bool, tag: &str) -> Result<LinuxTarget, String> {
        cfg.validate()?;
        let t0 = Instant::now();
        let img = image::prepare()?;
        let dir = image::work_dir()?;
        let console_log = dir.join(format!("console-{tag}.log"));
        let qemu_log = dir.join(format!("qemu-{tag}.stderr"));
        let create = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));

        let mut cmd = if Path::new(SETPRIV).exists() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--", image::QEMU]);
            c
        } else {
            Command::new(image::QEMU)
        };
        // Headroom above the RAM disk, which fills guest memory as it is written.
        let mem_mib = (u64::from(cfg.ramdisk_mib) + 256).max(512);
        cmd.args(["-accel", "tcg", "-m", &mem_mib.to_string(), "-smp", "1", "-nographic", "-no-reboot"])
            .arg("-kernel")
            .arg(&img.kernel)
            .arg("-initrd")
            .arg(&img.initrd)
            .arg("-append")
            .arg(cfg.cmdline(selftest))
            .arg("-netdev")
            .arg(format!(
                "dgram,id=n1,local.type=inet,local.host=127.0.0.1,local.port={},remote.type=inet,remote.host=127.0.0.1,remote.port={}",
                cfg.udp_local, cfg.udp_remote
            ))
            // romfile=: no iPXE option ROM, the guest boots from -kernel.
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=n1,mac={},romfile=", cfg.mac_string()));
        if let Some(pcap) = &cfg.pcap {
            cmd.arg("-object").arg(format!("filter-dump,id=f1,netdev=n1,file={}", pcap.display()));
        }
        cmd.stdin(Stdio::null()).stdout(create(&console_log)?).stderr(create(&qemu_log)?);
        progress(&format!("starting {}", crate::build::show(&cmd)));
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", image::QEMU))?;
        let mut target = LinuxTarget { child: Some(child), console_log, qemu_log };

        let ready = cfg.ready_line();
        target.wait_console("the target's ready line", READY_TIMEOUT, |line| {
            line.contains(&ready).then_some(Ok(()))
        })?;
        progress(&format!(
            "target {}:{} {} ready after {:.1} s (UDP 127.0.0.1:{} <-> 127.0.0.1:{}; console {})",
            cfg.ip,
            cfg.port,
            cfg.nqn,
            t0.elapsed().as_secs_f64(),
            cfg.udp_local,
            cfg.udp_remote,
            target.console_log.display()
        ));
        Ok(target)
    }

    /// The guest's serial console output so far (`\r` removed).
    pub fn console(&self) -> String {
        std::fs::read(&self.console_log).map(|b| String::from_utf8_lossy(&b).replace('\r', "")).unwrap_or_default()
    }

    /// Kills QEMU (dropping does the same).
    pub fn stop(self) {}

    /// Polls the console until `check` decides on a line, QEMU exits, the
    /// guest reports a setup failure or panics, or `timeout` passes.
    pub(crate) fn wait_console<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&str) -> Option<Result<T, String>>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            // Exit status first, so a line printed just before exiting is seen.
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            let console = self.console();
            for line in console.lines() {
                if let Some(r) = check(line) {
                    return r.map_err(|e| self.report(&e));
                }
                if let Some(i) = line.find(SETUP_FAIL_MARK) {
                    return Err(self.report(&format!("guest setup failed: {}", line[i + SETUP_FAIL_MARK.len()..].trim())));
                }
                if line.contains("Kernel panic") {
                    return Err(self.report(&format!("guest kernel panic while waiting for {what}")));
                }
            }
            if let Some(status) = exited {
                return Err(self.report(&format!("QEMU exited ({status}) before {what}")));
            }
            if Instant::now() >= deadline {
                return Err(self.report(&format!("no {what} within {} s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` for QEMU to exit by itself.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(c) = self.child.as_mut() {
            if matches!(c.try_wait(), Ok(Some(_)) | Err(_)) {
                self.child = None;
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// `msg` plus QEMU's stderr and the end of the guest console.
    fn report(&self, msg: &str) -> String {
        let console = self.console();
        let lines: Vec<&str> = console.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let stderr = std::fs::read_to_string(&self.qemu_log).unwrap_or_default();
        let mut s = format!("{msg}\n");
        if !stderr.trim().is_empty() {
            s.push_str(&format!("QEMU stderr ({}):\n{}\n", self.qemu_log.display(), stderr.trim_end()));
        }
        s.push_str(&format!("guest console, last {} lines ({}):\n{tail}", lines.len().min(40), self.console_log.display()));
        s
    }
}

impl Drop for LinuxTarget {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two distinct free UDP ports on 127.0.0.1.
pub(crate) fn free_udp_ports() -> Result<(u16, u16), String> {
    let bind = || UdpSocket::bind("127.0.0.1:0").and_then(|s| Ok((s.local_addr()?.port(), s)));
    let err = |e: std::io::Error| format!("cannot bind a UDP socket on 127.0.0.1: {e}");
    let (a, _sa) = bind().map_err(err)?;
    let (b, _sb) = bind().map_err(err)?;
    Ok((a, b))
}

/// `cargo xtask interop linux-target --guest-only`: boots the guest in
/// self-test mode, where its own kernel NVMe/TCP host connects to the target
/// and writes and reads back data (inline and R2T sized), and waits for the
/// verdict.
pub fn guest_self_test() -> Result<(), String> {
    let t0 = Instant::now();
    let (udp_local, udp_remote) = free_udp_ports()?;
    let cfg = GuestConfig::new(udp_local, udp_remote);
    let mut target = LinuxTarget::launch(&cfg, true, "selftest")?;
    progress("guest self-test running (host connects to the target, writes, reads back)");
    target.wait_console("the self-test result", SELFTEST_TIMEOUT, |line| {
        if line.contains(PASS_MARK) {
            Some(Ok(()))
        } else {
            let i = line.find(FAIL_MARK)?;
            Some(Err(format!("guest self-test failed: {}", line[i + FAIL_MARK.len()..].trim())))
        }
    })?;
    if !target.wait_exit(POWEROFF_TIMEOUT) {
        progress("the guest did not power off; killing QEMU");
    }
    target.stop();
    progress(&format!("guest self-test passed ({:.1} s in all)", t0.elapsed().as_secs_f64()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_carries_the_whole_config() {
        let mut cfg = GuestConfig::new(5000, 5001);
        cfg.ramdisk_mib = 8;
        let line = cfg.cmdline(true);
        for want in [
            "console=ttyS0",
            "dpusim.ip=10.0.0.10",
            "dpusim.prefix=24",
            "dpusim.mac=52:54:00:12:34:56",
            "dpusim.nqn=nqn.2026-11.io.dpusim:linux",
            "dpusim.port=4420",
            "dpusim.ramdisk_kib=8192",
            "dpusim.selftest=1",
        ] {
            assert!(line.split(' ').any(|w| w == want), "`{line}` lacks `{want}`");
        }
        assert!(!cfg.cmdline(false).contains("selftest"));
        assert_eq!(cfg.ready_line(), "DPUSIM-NVMET-READY 10.0.0.10:4420 nqn.2026-11.io.dpusim:linux");
    }

    #[test]
    fn config_rejects_what_the_guest_cannot_use() {
        assert!(GuestConfig::new(5000, 5001).validate().is_ok());
        let bad: [fn(&mut GuestConfig); 5] = [
            |c| c.nqn = "nqn.x y".into(),
            |c| c.mac[0] = 0x01,
            |c| c.prefix = 33,
            |c| c.udp_remote = c.udp_local,
            |c| c.ip = Ipv4Addr::LOCALHOST,
        ];
        for f in bad {
            let mut c = GuestConfig::new(5000, 5001);
            f(&mut c);
            assert!(c.validate().is_err(), "{c:?} was accepted");
        }
    }
}

/// How long the simulated adapter may take against the guest (wall time).
const ADAPTER_TIMEOUT: Duration = Duration::from_secs(600);

/// The scenarios run against the guest: plain, then with NVMe/TCP header
/// and data digests.
pub const SCENARIOS: [&str; 2] = ["interop-linux", "interop-linux-digests"];

/// `cargo xtask interop linux-target`: boots the Linux nvmet-tcp guest,
/// bridges it to the simulated card (`dpusim --bridge`) and runs each of
/// `targets/scenarios/{SCENARIOS}.toml`: a VF whose namespace is the
/// guest's RAM disk, under verified random I/O. Returns the dpusim output.
pub fn adapter_against_linux(dpusim: &Path, firmware: &Path) -> Result<String, String> {
    let guest = Guest::boot()?;
    guest.run_adapter(dpusim, firmware)
}

/// A booted Linux guest serving the interop scenarios' target.
pub struct Guest {
    target: LinuxTarget,
    cfg: GuestConfig,
    dir: PathBuf,
    guest_port: u16,
    sim_port: u16,
}

impl Guest {
    /// Boots the guest (installing what it needs on first use). It takes
    /// a while under TCG: `cargo xtask test` starts it while other tests run.
    pub fn boot() -> Result<Guest, String> {
        let dir = crate::build::root().join("target/interop");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (guest_port, sim_port) = free_udp_ports()?;
        let mut cfg = GuestConfig::new(guest_port, sim_port);
        cfg.pcap = Some(dir.join("guest.pcap"));
        let target = LinuxTarget::start(&cfg)?;
        Ok(Guest { target, cfg, dir, guest_port, sim_port })
    }

    /// Runs every interop scenario against the guest, then stops it.
    pub fn run_adapter(self, dpusim: &Path, firmware: &Path) -> Result<String, String> {
        let root = crate::build::root();
        let Guest { target: guest, cfg, dir, guest_port, sim_port } = self;
        progress(&format!("guest target ready on {}:{}; starting the simulated adapter (bridge UDP {sim_port} <-> {guest_port})", cfg.ip, cfg.port));
        let mut reports = String::new();
        for name in SCENARIOS {
            let scenario = root.join(format!("targets/scenarios/{name}.toml"));
            progress(&format!("scenario {name}"));
            match run_bridged(dpusim, firmware, &scenario, &dir, name, sim_port, guest_port, &guest).and_then(|r| {
                plaintext_on_the_wire(&scenario, &dir.join(format!("{name}-eth0.pcap")), name)?;
                Ok(r)
            }) {
                Ok(r) => reports.push_str(&r),
                Err(e) => {
                    guest.stop();
                    return Err(e);
                }
            }
        }
        guest.stop();
        Ok(reports)
    }
}

/// The host model's verify header (`sim/src/host/workload.rs`: every
/// sector it writes starts with "DPEV").
const SECTOR_MAGIC: &[u8] = b"DPEV";

/// What reaches the Linux target (the DPU's port 0 capture, both
/// directions): with the namespace encrypted by the card, no sector of the
/// host's data may cross the wire in the clear, so Linux's RAM disk holds
/// ciphertext only (nvmet stores H2CData payloads as received). A plain
/// run must show the headers, which proves the scan sees payloads. A few
/// chance matches in ciphertext are tolerated (2^-32 per byte offset); a
/// leak is every sector.
fn plaintext_on_the_wire(scenario: &Path, pcap: &Path, name: &str) -> Result<(), String> {
    let toml = std::fs::read_to_string(scenario).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let encrypted = toml.lines().any(|l| l.trim_start().starts_with("encryption") && l.contains("aes-xts"));
    let bytes = std::fs::read(pcap).map_err(|e| format!("{}: {e}", pcap.display()))?;
    let hits = bytes.windows(SECTOR_MAGIC.len()).filter(|w| *w == SECTOR_MAGIC).count();
    progress(&format!("{name}: {hits} plaintext sector headers on the wire to Linux ({})", if encrypted { "encrypted namespace" } else { "plain namespace" }));
    match (encrypted, hits) {
        (true, h) if h >= 4 => Err(format!("{name}: the namespace is encrypted but {h} plaintext sector headers crossed the wire ({})", pcap.display())),
        (false, h) if h < 64 => Err(format!("{name}: only {h} sector headers in the plain run's capture: the plaintext scan sees no payloads ({})", pcap.display())),
        _ => Ok(()),
    }
}

/// One dpusim run bridged to the guest.
#[allow(clippy::too_many_arguments)]
fn run_bridged(dpusim: &Path, firmware: &Path, scenario: &Path, dir: &Path, name: &str, sim_port: u16, guest_port: u16, guest: &LinuxTarget) -> Result<String, String> {
    let bridge = format!("udp:127.0.0.1:{sim_port}:127.0.0.1:{guest_port}");
    let pcap = dir.join(format!("{name}.pcap"));
    let stats = dir.join(format!("{name}-stats.json"));
    let mut child = Command::new(dpusim)
        .arg("--elf")
        .arg(firmware)
        .arg("--scenario")
        .arg(scenario)
        .arg("--bridge")
        .arg(&bridge)
        .arg("--pcap")
        .arg(&pcap)
        .arg("--stats-json")
        .arg(&stats)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", dpusim.display()))?;
    // Drain both pipes while waiting (bounded).
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > ADAPTER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for dpusim: {e}")),
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let console = guest.console();
    let tail = |s: &str, n: usize| s.lines().rev().take(n).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let report = format!(
        "{stdout}\n--- dpusim stderr (last lines) ---\n{}\n--- guest console (last lines) ---\n{}\n(captures: {} and {}-eth0.pcap)",
        tail(&stderr, 20),
        tail(&console, 30),
        dir.join("guest.pcap").display(),
        dir.join(name).display()
    );
    match status {
        None => Err(format!("the simulated adapter did not finish within {} s\n{report}", ADAPTER_TIMEOUT.as_secs())),
        Some(st) if st.success() && stdout.contains("verify errors: 0, I/O errors: 0") => {
            progress(&format!("{name}: passed in {:.1} s", start.elapsed().as_secs_f64()));
            Ok(report)
        }
        Some(st) => Err(format!("the simulated adapter failed against the Linux target ({st})\n{report}")),
    }
}
