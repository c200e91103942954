//! The `targets/` TOML files a user hands the tools: scenarios
//! (`Scenario::parse`: TOML, then validation), chips and boards. A file
//! either loads or names the file and field that is wrong; what loads is
//! then used the way the simulator uses it. A valid scenario's boot
//! configuration blob (built by the simulator) must be accepted by the
//! firmware's parser, or the card would boot serving nothing for a
//! scenario the simulator said was fine.
//!
//! Input: the file's text (bytes that are not UTF-8 are a read error).

use dpu_bootcfg::Table;
use dpu_targets::{Board, Chip, Scenario};

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

pub fn scenario(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(sc) = Scenario::parse("fuzz.toml", t) else { return };
    let _ = (sc.namespaces(), sc.port_addrs(), sc.network.tcp_min_rto_ms(), sc.network.io_timeout_us());
    let blob = dpu_sim::host::scenario::bootcfg_blob(&sc);
    if blob.len() > dpu_hal::memory_map::BOOTCFG_SIZE {
        // The simulator refuses it with a message (does not fit the window).
        return;
    }
    let mut table = Box::new(Table::EMPTY);
    let mut next = 0x4400_0000u64;
    let r = dpu_bootcfg::parse(&blob, &mut table, |bytes| {
        let base = next;
        next = next.checked_add(bytes)?;
        Some(base)
    });
    if let Err(e) = r {
        panic!("a valid scenario's boot configuration is rejected by the firmware: {e:?}\n{t}");
    }
    assert_eq!(table.namespaces().count(), sc.namespaces().len(), "namespaces lost between the scenario and the firmware");
    assert_eq!(table.ports().len(), sc.network.ports.len(), "ports lost between the scenario and the firmware");
    assert_eq!(table.host().0, sc.network.host_nqn.as_bytes(), "the firmware ignored the scenario's host NQN");
}

pub fn chip(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(c) = Chip::parse("fuzz.toml", t) else { return };
    let _ = (c.layout_fingerprint(), c.address_ranges(), c.check_firmware_reach(), c.dma_window(), c.nic_window(), c.mailbox_window());
    let harts = c.harts();
    for h in [0, harts / 2, harts.saturating_sub(1)] {
        let cl = c.cluster_of(h);
        let _ = (c.is_control_cluster(cl), c.smem_base(cl), c.noc_hops(cl, 0), c.dma_channels());
    }
}

pub fn board(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(b) = Board::parse("fuzz.toml", t) else { return };
    let _ = (b.layout_fingerprint(), b.pcie.link_bytes_per_sec(), b.pcie.tlp_efficiency(), b.pcie.max_functions());
}
