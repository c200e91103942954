//! `cargo xtask interop two-cards`: two simulated cards, each its own
//! `dpusim` process, on one Ethernet segment joined through their UDP
//! bridges (`--bridge`, each one's remote the other's local; both paced to
//! the wall clock). Each card is an NVMe/TCP target (a RAM subsystem) and
//! at the same time a storage adapter whose VF 1 namespace is the other
//! card's subsystem (`targets/scenarios/two-cards-{a,b}.toml`): the
//! adapter path of one card reaches the target of the other, both ways.
//!
//! Card B runs on the default board with MACs of its own (a copy of the
//! board file written next to the logs: a second card's EEPROM). Both run
//! with `--run-on`, so neither leaves while the other still uses its
//! target; once both scenarios ended, each gets SIGINT and exits with its
//! scenario's verdict. The run passes when both exit 0 (verified I/O, no
//! errors: their `[expect]`).

use super::{free_udp_ports, progress};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The two cards' scenarios.
pub const SCENARIOS: [&str; 2] = ["two-cards-a", "two-cards-b"];
/// How long both scenarios may take (wall time: each card is paced to it).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a card may take to exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// What dpusim says on stderr when a `--run-on` scenario ended.
const ENDED: &str = "dpusim: the scenario ended (";

/// The default board's text with every port MAC's fifth octet set to
/// `card` (card A keeps the board's own MACs with `card` = 0).
fn board_with_macs(text: &str, card: u8) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    for line in text.lines() {
        let t = line.trim_start();
        match t.strip_prefix("mac").map(str::trim_start).and_then(|r| r.strip_prefix('=')) {
            Some(rest) => {
                let quoted = rest.trim();
                let v = quoted.trim_matches('"');
                let mut mac = dpu_targets::parse_mac(v).map_err(|e| format!("board mac `{v}`: {e}"))?;
                mac[4] = card;
                let s = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
                out.push_str(&format!("{}mac = \"{s}\"\n", &line[..line.len() - t.len()]));
                n += 1;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if n == 0 {
        return Err("the default board names no port MAC".into());
    }
    Ok(out)
}

struct Card {
    name: &'static str,
    child: Child,
    out: PathBuf,
    log: PathBuf,
    status: Option<std::process::ExitStatus>,
}

impl Card {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ended(&self) -> bool {
        self.stderr().contains(ENDED)
    }

    fn poll(&mut self) {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
    }

    /// SIGINT (Ctrl-C: dpusim writes its summary and exits with the
    /// scenario's verdict), then waits; kills it after [`EXIT_TIMEOUT`].
    fn interrupt(&mut self) {
        self.poll();
        if self.status.is_some() {
            return;
        }
        let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        let t = Instant::now();
        while self.status.is_none() && t.elapsed() < EXIT_TIMEOUT {
            std::thread::sleep(Duration::from_millis(100));
            self.poll();
        }
        if self.status.is_none() {
            progress(&format!("{}: no exit after SIGINT; killing it", self.name));
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    fn report(&self) -> String {
        let out = std::fs::read_to_string(&self.out).unwrap_or_default();
        let keep = |l: &&str| l.contains("verify errors") || l.contains("nvmf") || l.contains("panic") || l.contains("ERROR") || l.contains("WARN") || l.contains("IOPS");
        let lines: Vec<&str> = out.lines().filter(keep).collect();
        let tail: Vec<&str> = lines.iter().rev().take(30).rev().copied().collect();
        let stderr = self.stderr();
        let err: Vec<&str> = stderr.lines().filter(|l| l.starts_with("dpusim")).collect();
        format!("--- card {} ({}) ---\n{}\n{}\n", self.name, self.out.display(), tail.join("\n"), err.join("\n"))
    }
}

/// Runs both cards until both scenarios ended; returns a report, or why
/// the run failed.
pub fn two_cards(dpusim: &Path, firmware: &Path) -> Result<String, String> {
    let t0 = Instant::now();
    let dir = crate::build::root().join("target/interop");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let board_a = dpu_targets::default_board_path();
    let text = std::fs::read_to_string(&board_a).map_err(|e| format!("{}: {e}", board_a.display()))?;
    let board_b = dir.join("two-cards-board-b.toml");
    std::fs::write(&board_b, board_with_macs(&text, 1)?).map_err(|e| format!("{}: {e}", board_b.display()))?;
    let (port_a, port_b) = free_udp_ports()?;
    let mut cards = Vec::new();
    for (i, name) in SCENARIOS.into_iter().enumerate() {
        let (board, local, remote) = if i == 0 { (&board_a, port_a, port_b) } else { (&board_b, port_b, port_a) };
        let out = dir.join(format!("{name}.out"));
        let log = dir.join(format!("{name}.log"));
        let create = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let child = Command::new(dpusim)
            .arg("--board")
            .arg(board)
            .arg("--elf")
            .arg(firmware)
            .arg("--scenario")
            .arg(crate::build::root().join(format!("targets/scenarios/{name}.toml")))
            .arg("--bridge")
            .arg(format!("udp:127.0.0.1:{local}:127.0.0.1:{remote}"))
            .arg("--pcap")
            .arg(dir.join(format!("{name}.pcap")))
            .arg("--stats-json")
            .arg(dir.join(format!("{name}-stats.json")))
            .arg("--run-on")
            .arg("-q")
            .stdin(Stdio::null())
            .stdout(create(&out)?)
            .stderr(create(&log)?)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", dpusim.display()))?;
        cards.push(Card { name, child, out, log, status: None });
    }
    progress(&format!("two cards bridged (UDP {port_a} <-> {port_b}); logs {}", dir.join("two-cards-*.out").display()));
    // Until both scenarios ended (or a card exited early, or time ran out).
    let timed_out = loop {
        for c in cards.iter_mut() {
            c.poll();
        }
        if cards.iter().all(Card::ended) || cards.iter().any(|c| c.status.is_some()) {
            break false;
        }
        if t0.elapsed() > RUN_TIMEOUT {
            break true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for c in cards.iter_mut() {
        c.interrupt();
    }
    let report: String = cards.iter().map(Card::report).collect();
    if timed_out {
        return Err(format!("the cards' scenarios did not both end within {} s\n{report}", RUN_TIMEOUT.as_secs()));
    }
    let verified = |c: &Card| std::fs::read_to_string(&c.out).is_ok_and(|o| o.contains("verify errors: 0, I/O errors: 0"));
    let failed: Vec<String> = cards
        .iter()
        .filter(|c| !c.status.is_some_and(|s| s.success()) || !verified(c))
        .map(|c| format!("card {} exited with {}", c.name, c.status.map_or("no status".into(), |s| s.to_string())))
        .collect();
    if !failed.is_empty() {
        return Err(format!("{}\n{report}", failed.join("; ")));
    }
    progress(&format!("two-cards: passed in {:.1} s", t0.elapsed().as_secs_f64()));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_b_gets_macs_of_its_own() {
        let text = std::fs::read_to_string(dpu_targets::default_board_path()).unwrap();
        let b = board_with_macs(&text, 1).unwrap();
        let board = dpu_targets::Board::parse("board-b.toml", &b).unwrap();
        let a = dpu_targets::Board::parse("board-a.toml", &text).unwrap();
        assert_eq!(a.network.ports.len(), board.network.ports.len());
        for (pa, pb) in a.network.ports.iter().zip(&board.network.ports) {
            assert_ne!(pa.mac, pb.mac);
            assert_eq!(dpu_targets::parse_mac(&pb.mac).unwrap()[4], 1);
        }
    }

    #[test]
    fn each_card_reaches_the_others_subsystem() {
        let load = |n: &str| dpu_targets::Scenario::load(crate::build::root().join(format!("targets/scenarios/{n}.toml"))).unwrap();
        let (a, b) = (load(SCENARIOS[0]), load(SCENARIOS[1]));
        for (me, peer) in [(&a, &b), (&b, &a)] {
            let mine = me.network.ports[0].split('/').next().unwrap().to_string();
            let theirs = peer.network.ports[0].split('/').next().unwrap().to_string();
            assert_ne!(mine, theirs);
            let st = me.storage.iter().find(|s| s.backend == "nvmf").expect("an NVMe/TCP namespace");
            assert_eq!(st.traddr.as_deref(), Some(theirs.as_str()), "the adapter's target is the other card");
            assert_eq!(st.subnqn.as_deref(), Some(peer.subsystems()[0].nqn.as_str()));
        }
    }
}
