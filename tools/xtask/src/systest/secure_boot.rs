//! System tests of secure boot and the configuration in flash: cards
//! built with `cargo xtask flash`'s code, booted with `dpusim --flash`,
//! judged by the boot log (ROM, bootloader on the UART, firmware), the
//! exit status and what the card left in its flash and fuses.

use super::{expect_code, fail, io, need, no_warnings, Ctx, Run};
use crate::flash::{config_of, otp_for, sign, signing_key, write_card};
use dpu_imgtool::devkey::DeviceKey;
use dpu_imgtool::flash::Card;
use dpu_imgtool::image::{self, Kind, Version};
use dpu_imgtool::key::{self, Key};
use std::path::{Path, PathBuf};

type R = Result<(), (String, Option<Run>)>;

// Run lengths (`--max-time`): the bootloader reads and verifies a
// ~650 KiB firmware image (the firmware carries the image verifier for
// updates from the host), so the firmware is up ~151 ms after reset and
// has confirmed a trial boot a few ms later.

/// Signed images and keys shared by the tests of one run.
struct Kit {
    key: Key,
    bootloader: Vec<u8>,
    /// The firmware, version 0.1.0, security counter 0.
    fw: Vec<u8>,
}

/// The device key of the test cards (a card from `cargo xtask flash`
/// gets a random one; tests that look at wrapped keys use their own).
fn dk() -> DeviceKey {
    DeviceKey::from_bytes(*b"dpusim systest device key, 32 B.")
}

fn v(s: &str) -> Version {
    s.parse().expect("a version")
}

fn kit(cx: &Ctx) -> Result<Kit, (String, Option<Run>)> {
    let key = signing_key(None).map_err(io)?;
    let bootloader = sign(&cx.built.bootloader, Kind::Bootloader, v("0.1.0"), 0, &key).map_err(io)?;
    let fw = sign(&cx.built.firmware, Kind::Firmware, v("0.1.0"), 0, &key).map_err(io)?;
    Ok(Kit { key, bootloader, fw })
}

impl Ctx<'_> {
    /// Writes `card` as `<tag>.bin` (+ `.otp` for `key` and `counter`).
    fn card(&self, tag: &str, card: &Card, key: &Key, counter: u32) -> Result<PathBuf, (String, Option<Run>)> {
        let out = self.tmp.join(format!("{tag}.bin"));
        write_card(&out, card, &otp_for(key, counter, &dk()).map_err(io)?).map_err(io)?;
        Ok(out)
    }

    /// Boots `flash` with the firmware's symbols (and `more` ELFs).
    fn boot(&self, tag: &str, flash: &Path, more: &[&Path], extra: &[&str]) -> Result<Run, (String, Option<Run>)> {
        let (f, fw) = (flash.to_string_lossy().to_string(), self.built.firmware.to_string_lossy().to_string());
        let more: Vec<String> = more.iter().map(|p| p.to_string_lossy().to_string()).collect();
        let mut args = vec!["--flash", &f, "--elf", &fw];
        for m in &more {
            args.extend(["--elf", m.as_str()]);
        }
        args.extend_from_slice(extra);
        self.dpusim(tag, &args).map_err(io)
    }
}

/// Removes the cards a passing test wrote (each flash image is 16 MiB or
/// more: slot A sits at 16 MiB).
fn remove_cards(cx: &Ctx, tags: &[&str]) {
    for t in tags {
        let _ = std::fs::remove_file(cx.tmp.join(format!("{t}.bin")));
        let _ = std::fs::remove_file(cx.tmp.join(format!("{t}.otp")));
    }
}

/// The OTP anti-rollback counter a fuse file holds.
fn otp_counter(otp: &Path) -> Result<u32, (String, Option<Run>)> {
    let b = std::fs::read(otp).map_err(|e| io(format!("{}: {e}", otp.display())))?;
    let words: Vec<u32> = b.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))).collect();
    let r = dpu_hal::regs::otp::ROLLBACK;
    Ok(words.get(r..r + dpu_hal::regs::otp::ROLLBACK_WORDS).map_or(0, |w| w.iter().map(|x| x.count_ones()).sum()))
}

/// A scenario's workload runs on a card that booted from flash: ROM,
/// bootloader, slot A, configuration read from the flash.
pub fn flash_boot(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let card = cx.card("flash-boot", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() }, &k.key, 0)?;
    let sc = crate::build::root().join("targets/scenarios/pf-randread-qd1.toml").to_string_lossy().to_string();
    let run = cx.boot("flash-boot", &card, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "ROM   stage 1 bootloader 0.1.0 verified",
            "UART  boot: journal: confirmed slot A, pending -, on trial -",
            "UART  boot: slot A: image 0.1.0 (security counter 0,",
            "UART  boot: booting slot A (confirmed)",
            "INFO  boot: slot A, image 0.1.0 (security counter 0, OTP anti-rollback counter 0)",
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 1 namespace(s), 2 port(s), 0 remote controller(s), 0 target subsystem(s)",
            "outcome: scenario passed",
        ],
    )?;
    no_warnings(&run)?;
    if run.stdout.contains("configuration from the boot configuration window") {
        return fail("booted from flash, the firmware still read the window", run);
    }
    remove_cards(cx, &["flash-boot"]);
    Ok(())
}

/// A card flashed with `management-flash`'s configuration (management
/// server in flash), written as `<tag>.bin`; and that scenario's text
/// without its scripted calls (for runs that script their own or none).
fn management_card(cx: &Ctx, k: &Kit, tag: &str) -> Result<(PathBuf, String), (String, Option<Run>)> {
    let configs: Vec<dpu_config::Config> = config_of("management-flash", &dk()).map_err(io)?.into_iter().collect();
    if configs.first().is_none_or(|c| c.management.is_none()) {
        return Err(io("management-flash: the flash configuration has no management record".into()));
    }
    let card = cx.card(tag, &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() }, &k.key, 0)?;
    let text = std::fs::read_to_string(crate::build::root().join("targets/scenarios/management-flash.toml")).map_err(|e| io(e.to_string()))?;
    let base = text[..text.find("[[rpc]]").unwrap_or(text.len())].to_string();
    Ok((card, base))
}

/// A card whose management server is configured in flash (no window,
/// no ELF load): the JSON-RPC server starts from the flash configuration
/// and answers the scripted calls (firmware status says "flash",
/// token and allow-list enforced) during verified I/O.
pub fn flash_management(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, _) = management_card(cx, &k, "flash-mgmt")?;
    let sc = crate::build::root().join("targets/scenarios/management-flash.toml").to_string_lossy().to_string();
    let run = cx.boot("flash-mgmt", &card, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 1 namespace(s), 2 port(s), 0 remote controller(s), 0 target subsystem(s)",
            "mgmt: JSON-RPC on 10.0.1.1:5261",
            "mgmt: refused 10.0.1.77: not on the allow-list",
            "outcome: scenario passed",
        ],
    )?;
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != 5 {
        return fail(format!("{ok} of 5 scripted management calls answered as expected"), run);
    }
    // The two refusals are the only warnings.
    if run.count(" WARN ") != 2 || run.count(" ERROR ") != 0 {
        return fail("warnings or errors besides the two refusals", run);
    }
    remove_cards(cx, &["flash-mgmt"]);
    Ok(())
}

/// The NVMe/TCP target configured in flash (`target-flash`): subsystems
/// (a RAM and a local-SSD namespace, an allow-list) and the management
/// server come from the flash configuration; an initiator model runs
/// verified I/O on both namespaces, and the operator's
/// `nvmf_get_subsystems` and `bdev_get_bdevs` answer as expected.
pub fn flash_target(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("target-flash", &dk()).map_err(io)?.into_iter().collect();
    if configs.first().is_none_or(|c| c.subsystems.len() != 1) {
        return Err(io("target-flash: the flash configuration does not hold its subsystem".into()));
    }
    let card = cx.card("flash-target", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() }, &k.key, 0)?;
    let sc = crate::build::root().join("targets/scenarios/target-flash.toml").to_string_lossy().to_string();
    let run = cx.boot("flash-target", &card, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 0 namespace(s), 2 port(s), 0 remote controller(s), 1 target subsystem(s)",
            "nvmf target: nqn.2026-12.io.dpusim:flash0 listening on 10.0.0.1:4420 (port 0), 2 namespace(s)",
            "rpc[0] nvmf_get_subsystems: ok",
            "rpc[1] bdev_get_bdevs: ok",
            "verify errors: 0, I/O errors: 0",
            "outcome: scenario passed",
        ],
    )?;
    if run.count(" WARN ") != 0 || run.count(" ERROR ") != 0 {
        return fail("warnings or errors on a healthy run", run);
    }
    remove_cards(cx, &["flash-target"]);
    Ok(())
}

/// Live changes persist: on a flash-booted card, RAM block devices made
/// and mapped through the management API are saved in the flash
/// configuration; the next boot (the same flash) makes them again and
/// maps them, and the host runs verified I/O on the restored namespace.
pub fn live_changes_persist(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "persist")?;
    let rpc = |at: &str, method: &str, params: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\n{expect}\n\n");
    // Run 1: two devices made, one mapped, the other served by an NVMe/TCP
    // target subsystem made at run time; each save erases a 4 KiB
    // subsector (50 ms): the first (persist0 alone) is under way when the
    // other changes come, which the second save carries. The last call
    // checks that nothing is left to save.
    let run1 = format!(
        "{base}[[jobs]]\nname = \"hold\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"125ms\"\n\n{}{}{}{}{}{}{}{}",
        rpc("200us", "bdev_malloc_create", "{ name = \"persist0\", num_blocks = 2048, block_size = 4096 }", "expect_result = \"persist0\""),
        rpc("400us", "dpu_ns_attach", "{ function = 0, nsid = 2, bdev = \"persist0\" }", "expect_result = true"),
        rpc("600us", "bdev_malloc_create", "{ num_blocks = 64, block_size = 512 }", "expect_result = \"Malloc0\""),
        rpc("700us", "nvmf_create_subsystem", "{ nqn = \"nqn.2026-12.io.dpusim:kept\", serial_number = \"KEPT0001\" }", "expect_result = true"),
        rpc("800us", "nvmf_subsystem_add_ns", "{ nqn = \"nqn.2026-12.io.dpusim:kept\", namespace = { bdev_name = \"Malloc0\", nsid = 3 } }", "expect_result = 3"),
        rpc("900us", "nvmf_subsystem_add_listener", "{ nqn = \"nqn.2026-12.io.dpusim:kept\", listen_address = { trtype = \"TCP\", traddr = \"10.0.0.1\", trsvcid = \"4420\" } }", "expect_result = true"),
        rpc("1000us", "nvmf_subsystem_add_host", "{ nqn = \"nqn.2026-12.io.dpusim:kept\", host = \"nqn.2026-12.io.dpusim:h9\" }", "expect_result = true"),
        rpc("120ms", "dpu_config_get_status", "{}", "expect_result = { persistent = true, run_time_bdevs = 2, run_time_subsystems = 1, saving = false, pending = false, copy = 0, sequence = 3 }"),
    );
    let p1 = cx.tmp.join("persist-1.toml");
    std::fs::write(&p1, run1).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-1", &card, &[], &["--scenario", &p1.to_string_lossy()])?;
    need(
        expect_code(run, 0)?,
        &[
            "INFO  mgmt: configuration saved to flash (copy 1, sequence 2): 1 run-time block device(s)",
            "INFO  mgmt: configuration saved to flash (copy 0, sequence 3): 2 run-time block device(s), 1 run-time subsystem(s)",
            "outcome: scenario passed",
        ],
    )?;
    // Run 2, the same flash: both devices are back (empty), persist0 as
    // namespace 2 of the PF, where a job verifies fresh writes; a new
    // automatic name does not take `Malloc0` again; the subsystem is back
    // with its namespace, listener and host (configuration schema 5).
    let base2 = base.replace("[host]\n", "[host]\nnamespace_notices = true\n");
    let run2 = format!(
        "{base2}[[jobs]]\nname = \"restored\"\nfunctions = [0]\nnsid = 2\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 8\nstartdelay = \"1ms\"\nruntime = \"2ms\"\nverify = true\nattached = {{ size = \"8MiB\", block_size = 4096 }}\n\n{}{}{}",
        rpc("300us", "bdev_get_bdevs", "{}", "expect_result = [{ name = \"fn0n1\" }, { name = \"persist0\", num_blocks = 2048, block_size = 4096, driver_specific = { function = 0, nsid = 2 } }, { name = \"Malloc0\", num_blocks = 64, driver_specific = { state = \"unmapped\" } }]"),
        rpc("500us", "bdev_malloc_create", "{ num_blocks = 8, block_size = 512 }", "expect_result = \"Malloc1\""),
        rpc(
            "700us",
            "nvmf_get_subsystems",
            "{}",
            "expect_result = [{ nqn = \"nqn.2026-12.io.dpusim:kept\", serial_number = \"KEPT0001\", allow_any_host = false, hosts = [{ nqn = \"nqn.2026-12.io.dpusim:h9\" }], listen_addresses = [{ traddr = \"10.0.0.1\", trsvcid = \"4420\" }], namespaces = [{ nsid = 3, bdev_name = \"Malloc0\" }] }]"
        ),
    );
    let p2 = cx.tmp.join("persist-2.toml");
    std::fs::write(&p2, run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-2", &card, &[], &["--scenario", &p2.to_string_lossy()])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "INFO  config: from flash copy 0 (sequence 3; other copy valid): 1 namespace(s)",
            "INFO  mgmt: restored 2 run-time block device(s) from flash",
            "INFO  mgmt: restored 1 run-time subsystem(s) from flash",
            "restored.fn0: (fn 0, ns 2)",
            "outcome: scenario passed",
        ],
    )?;
    if !run.stdout.contains("verify errors: 0, I/O errors: 0") {
        return fail("the restored namespace's job had errors", run);
    }
    remove_cards(cx, &["persist"]);
    Ok(())
}

/// The SR-IOV VF count set through the management API
/// (`dpu_sriov_set_total_vfs`, with the host's SR-IOV disabled) is saved
/// in the configuration (schema 11) and, on the same flash after a
/// restart, offered before the host sees the PF: the host enables exactly
/// 3 VFs; a host that asks for 4 is refused (as Linux refuses it).
pub fn sriov_persist(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "sriov")?;
    let rpc = |at: &str, method: &str, params: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\n{expect}\n\n");
    let run1 = format!(
        "{base}[[jobs]]\nname = \"hold\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"125ms\"\n\n{}{}{}",
        rpc("200us", "dpu_sriov_set_total_vfs", "{ total_vfs = 3 }", "expect_result = true"),
        rpc("400us", "dpu_sriov_get", "{}", "expect_result = { total_vfs = 3, num_vfs = 0, vf_enable = false }"),
        rpc("120ms", "dpu_config_get_status", "{}", "expect_result = { persistent = true, saving = false, pending = false }"),
    );
    let p1 = cx.tmp.join("sriov-1.toml");
    std::fs::write(&p1, run1).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("sriov-1", &card, &[], &["--scenario", &p1.to_string_lossy()])?;
    need(expect_code(run, 0)?, &["mgmt: SR-IOV TotalVFs 64 -> 3 (of 64)", "INFO  mgmt: configuration saved to flash (copy 1, sequence 2)", "outcome: scenario passed"])?;
    let vfs = |n: u16| base.replacen("[host]\n", &format!("[host]\nvfs = {n}\nvf_settle_ms = 1\n"), 1);
    // (The base scenario's verified job runs on the PF meanwhile.)
    let run2 = format!(
        "{}{}",
        vfs(3),
        rpc("300us", "dpu_sriov_get", "{}", "expect_result = { max_vfs = 64, total_vfs = 3, num_vfs = 3, vf_enable = true }"),
    );
    let p2 = cx.tmp.join("sriov-2.toml");
    std::fs::write(&p2, &run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("sriov-2", &card, &[], &["--scenario", &p2.to_string_lossy()])?;
    need(expect_code(run, 0)?, &["INFO  config: SR-IOV TotalVFs 3 (of 64)", "pci: enabled 3 VFs", "outcome: scenario passed"])?;
    let p3 = cx.tmp.join("sriov-3.toml");
    std::fs::write(&p3, run2.replacen("vfs = 3\n", "vfs = 4\n", 1)).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("sriov-3", &card, &[], &["--scenario", &p3.to_string_lossy()])?;
    need(expect_code(run, 1)?, &["4 VFs requested, the PF supports 3"])?;
    remove_cards(cx, &["sriov"]);
    Ok(())
}

/// Config in flash: an EC 2+1 volume made at run time over three
/// controllers attached at run time, mapped as the PF's namespace 2 and
/// written, is saved (schema 10); at the next boot (same flash, same
/// target media) the controllers attach again, the volume is made again
/// from its superblocks (events as written, all members trusted, not a
/// new volume), mapped again, and a verified job runs on it.
pub fn live_ec_persist(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "persist-ec")?;
    let media = cx.tmp.join("persist-ec-media");
    let _ = std::fs::remove_dir_all(&media);
    let dir = media.to_string_lossy().to_string();
    let rpc = |at: &str, method: &str, params: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\n{expect}\n\n");
    let targets: String = (0..3).map(|i| format!("[[targets]]\nname = \"t{i}\"\nip = \"10.0.0.{}\"\nnqn = \"nqn.2026-12.io.dpusim:kept-ec{i}\"\nnamespaces = [{{ size = \"1MiB\" }}]\n\n", 10 + i)).collect();
    let attach = |i: usize, at: &str| rpc(at, "bdev_nvme_attach_controller", &format!("{{ name = \"E{i}\", trtype = \"tcp\", traddr = \"10.0.0.{}\", subnqn = \"nqn.2026-12.io.dpusim:kept-ec{i}\" }}", 10 + i), &format!("expect_result = [\"E{i}n1\"]"));
    let base1 = base.replace("[host]\n", "[host]\nnamespace_notices = true\n");
    // Run 1 writes the volume's second half, run 2 verifies its own I/O
    // on the first (the second keeps run 1's data: not zero, which a
    // job there would count as never written).
    let job = |name: &str, start: &str, offset: &str| {
        format!("[[jobs]]\nname = \"{name}\"\nfunctions = [0]\nnsid = 2\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 8\nstartdelay = \"{start}\"\nruntime = \"2ms\"\nverify = true\noffset = \"{offset}\"\nregion = \"1020KiB\"\nattached = {{ size = \"2040KiB\", block_size = 512 }}\n\n")
    };
    // Run 1: attach, create, map, write; saves (50 ms each).
    let run1 = format!(
        "{base1}{targets}[[jobs]]\nname = \"hold\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"125ms\"\n\n{}{}{}{}{}{}{}",
        job("written", "5ms", "1020KiB"),
        attach(0, "200us"),
        attach(1, "1200us"),
        attach(2, "2200us"),
        rpc("3200us", "bdev_ec_create", "{ name = \"kept_ec\", k = 2, m = 1, base_bdevs = [\"E0n1\", \"E1n1\", \"E2n1\"] }", "expect_result = \"kept_ec\""),
        rpc("4000us", "dpu_ns_attach", "{ function = 0, nsid = 2, bdev = \"kept_ec\" }", "expect_result = true"),
        rpc("120ms", "dpu_config_get_status", "{}", "expect_result = { persistent = true, run_time_controllers = 3, saving = false, pending = false }"),
    );
    let p1 = cx.tmp.join("persist-ec-1.toml");
    std::fs::write(&p1, run1).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-ec-1", &card, &[], &["--scenario", &p1.to_string_lossy(), "--target-media", &dir])?;
    need(
        expect_code(run, 0)?,
        &["mgmt: EC volume kept_ec: 2+1", "ec: volume 0: new volume (made at run time)", "nvme fn0: namespace 2 attached (erasure-coded volume 0", "INFO  mgmt: configuration saved to flash", "verify errors: 0, I/O errors: 0", "outcome: scenario passed"],
    )?;
    // Run 2, the same flash and media: everything back without a call.
    let run2 = format!(
        "{base1}{targets}{}{}",
        job("restored", "4ms", "0"),
        rpc("3500us", "bdev_get_bdevs", "{ name = \"kept_ec\" }", "expect_result = [{ name = \"kept_ec\", num_blocks = 4080, driver_specific = { backend = \"ec\", k = 2, m = 1, members = [\"E0n1\", \"E1n1\", \"E2n1\"], health = \"optimal\", state = \"ready\", function = 0, nsid = 2 } }]"),
    );
    let p2 = cx.tmp.join("persist-ec-2.toml");
    std::fs::write(&p2, run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-ec-2", &card, &[], &["--scenario", &p2.to_string_lossy(), "--target-media", &dir])?;
    let _ = std::fs::remove_dir_all(&media);
    let run = need(
        expect_code(run, 0)?,
        &[
            "mgmt: attaching 3 run-time controller(s) from flash",
            "mgmt: EC volume kept_ec restored from flash",
            "ec: volume 0: superblocks read: events 1",
            "ec: volume 0: started at events 2; members lost 0b0",
            "nvme fn0: namespace 2 attached (erasure-coded volume 0, 4080 blocks of 512 B)",
            "restored.fn0: (fn 0, ns 2)",
            "outcome: scenario passed",
        ],
    )?;
    if !run.stdout.contains("verify errors: 0, I/O errors: 0") || run.stdout.contains("new volume") {
        return fail("the restored volume must start from its superblocks (no new volume) and its job run clean", run);
    }
    remove_cards(cx, &["persist-ec"]);
    Ok(())
}

/// A remote controller attached through the management API is saved
/// with the mapping of its namespace (configuration schema 7) and, on
/// the same flash after a restart, attached again and mapped again: a
/// verified job runs on the restored namespace over NVMe/TCP. Restarted
/// once more with its target gone, it is kept (retried) and can still be
/// detached.
pub fn live_controllers_persist(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "persist-nvme")?;
    let rpc = |at: &str, method: &str, params: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\n{expect}\n\n");
    let target = "[[targets]]\nname = \"t0\"\nip = \"10.0.0.10\"\nnqn = \"nqn.2026-12.io.dpusim:kept-remote\"\nnamespaces = [{ size = \"8MiB\" }]\n\n";
    // Run 1: attach, map as the PF's namespace 2; two saves (50 ms each).
    let run1 = format!(
        "{base}{target}[[jobs]]\nname = \"hold\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"125ms\"\n\n{}{}{}",
        rpc("200us", "bdev_nvme_attach_controller", "{ name = \"Kept0\", trtype = \"tcp\", traddr = \"10.0.0.10\", trsvcid = \"4420\", subnqn = \"nqn.2026-12.io.dpusim:kept-remote\" }", "expect_result = [\"Kept0n1\"]"),
        rpc("1500us", "dpu_ns_attach", "{ function = 0, nsid = 2, bdev = \"Kept0n1\" }", "expect_result = true"),
        rpc("120ms", "dpu_config_get_status", "{}", "expect_result = { persistent = true, run_time_controllers = 1, saving = false, pending = false }"),
    );
    let p1 = cx.tmp.join("persist-nvme-1.toml");
    std::fs::write(&p1, run1).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-nvme-1", &card, &[], &["--scenario", &p1.to_string_lossy()])?;
    need(expect_code(run, 0)?, &["mgmt: controller Kept0 attached: 1 namespace(s)", "INFO  mgmt: configuration saved to flash", "outcome: scenario passed"])?;
    // Run 2, the same flash: attached again (no call), mapped again; a
    // verified job on the PF's namespace 2.
    let base2 = base.replace("[host]\n", "[host]\nnamespace_notices = true\n");
    let run2 = format!(
        "{base2}{target}[[jobs]]\nname = \"restored\"\nfunctions = [0]\nnsid = 2\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 8\nstartdelay = \"2ms\"\nruntime = \"2ms\"\nverify = true\nattached = {{ size = \"8MiB\", block_size = 512 }}\n\n{}{}",
        rpc("1500us", "bdev_nvme_get_controllers", "{ name = \"Kept0\" }", "expect_result = [{ name = \"Kept0\", run_time = true, ctrlrs = [{ state = \"enabled\" }] }]"),
        rpc("1700us", "bdev_get_bdevs", "{ name = \"Kept0n1\" }", "expect_result = [{ name = \"Kept0n1\", driver_specific = { backend = \"remote\", state = \"ready\", function = 0, nsid = 2 } }]"),
    );
    let p2 = cx.tmp.join("persist-nvme-2.toml");
    std::fs::write(&p2, run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-nvme-2", &card, &[], &["--scenario", &p2.to_string_lossy()])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "mgmt: attaching 1 run-time controller(s) from flash",
            "mgmt: controller Kept0 attached: 1 namespace(s)",
            "nvme fn0: namespace 2 attached (remote controller 0 nsid 1, 16384 blocks of 512 B)",
            "restored.fn0: (fn 0, ns 2)",
            "outcome: scenario passed",
        ],
    )?;
    if !run.stdout.contains("verify errors: 0, I/O errors: 0") {
        return fail("the restored namespace's job had errors", run);
    }
    // Run 3, the target gone: the controller is kept and retried (not
    // failed and forgotten), and the operator can still detach it.
    let run3 = format!(
        "{base}{}{}{}",
        rpc("1ms", "bdev_nvme_get_controllers", "{ name = \"Kept0\" }", "expect_result = [{ name = \"Kept0\", ctrlrs = [{ state = \"disconnected\" }] }]"),
        rpc("2ms", "bdev_nvme_detach_controller", "{ name = \"Kept0\" }", "expect_result = true"),
        rpc("2500us", "dpu_config_get_status", "{}", "expect_result = { run_time_controllers = 0 }"),
    );
    let p3 = cx.tmp.join("persist-nvme-3.toml");
    std::fs::write(&p3, run3).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-nvme-3", &card, &[], &["--scenario", &p3.to_string_lossy()])?;
    need(expect_code(run, 0)?, &["mgmt: attaching 1 run-time controller(s) from flash", "mgmt: controller Kept0 detached", "outcome: scenario passed"])?;
    remove_cards(cx, &["persist-nvme"]);
    Ok(())
}

/// The settings changed live (`dpu_set_port`, `dpu_nvme_set_options`,
/// `dpu_port_set_options`, `dpu_mgmt_set`) are saved in the flash
/// configuration and in force after a restart on the same flash: eth0's
/// new address, the initiator's defaults, the TCP minimum RTO, the
/// management server's allow-list, token and request timeout (the old
/// token is refused).
pub fn live_settings_persist(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "persist-settings")?;
    let rpc = |at: &str, method: &str, params: &str, token: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\ntoken = \"{token}\"\n{expect}\n\n");
    let hostnqn = "nqn.2026-12.io.dpusim:kept-host";
    // Run 1: the changes, then their saves (two: 50 ms each).
    let run1 = format!(
        "{base}{}{}{}{}{}",
        rpc("200us", "dpu_set_port", "{ port = 0, ip = \"10.0.0.99\", prefix = 24 }", "flash-token", "expect_result = true"),
        rpc("300us", "dpu_nvme_set_options", &format!("{{ hdgst = true, io_timeout_us = 30000, hostnqn = \"{hostnqn}\" }}"), "flash-token", "expect_result = true"),
        rpc("400us", "dpu_port_set_options", "{ tcp_min_rto_ms = 9 }", "flash-token", "expect_result = true"),
        rpc("500us", "dpu_mgmt_set", "{ allow = [\"10.0.1.240/28\"], token = \"kept-token\", request_timeout_ms = 7 }", "flash-token", "expect_result = true"),
        rpc("125ms", "dpu_config_get_status", "{}", "kept-token", "expect_result = { persistent = true, saving = false, pending = false }"),
    );
    let p1 = cx.tmp.join("persist-settings-1.toml");
    std::fs::write(&p1, run1.replace("runtime = \"3ms\"", "runtime = \"130ms\"")).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-settings-1", &card, &[], &["--scenario", &p1.to_string_lossy()])?;
    let run = need(expect_code(run, 0)?, &["mgmt: port 0 is now 10.0.0.99/24 mtu 1500", "INFO  mgmt: configuration saved to flash", "outcome: scenario passed"])?;
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != 5 {
        return fail(format!("{ok} of 5 scripted management calls answered as expected"), run);
    }
    // Run 2, the same flash: everything in force from boot.
    let run2 = format!(
        "{base}{}{}{}{}{}",
        rpc("200us", "dpu_get_ports", "{}", "kept-token", "expect_result = [{ name = \"eth0\", ip = \"10.0.0.99\", prefix = 24 }, { name = \"eth1\", ip = \"10.0.1.1\" }]"),
        rpc("400us", "dpu_nvme_get_options", "{}", "kept-token", &format!("expect_result = {{ hdgst = true, ddgst = false, io_timeout_us = 30000, hostnqn = \"{hostnqn}\" }}")),
        rpc("600us", "dpu_port_get_options", "{}", "kept-token", "expect_result = { tcp_min_rto_ms = 9 }"),
        rpc("800us", "dpu_mgmt_get", "{}", "kept-token", "expect_result = { allow = [\"10.0.1.240/28\"], request_timeout_ms = 7, token_required = true }"),
        rpc("1000us", "rpc_get_methods", "{}", "flash-token", "expect_error = -32001"),
    );
    let p2 = cx.tmp.join("persist-settings-2.toml");
    std::fs::write(&p2, run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-settings-2", &card, &[], &["--scenario", &p2.to_string_lossy()])?;
    let run = need(expect_code(run, 0)?, &["net: port 0: 10.0.0.99/24 mtu 1500", "outcome: scenario passed"])?;
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != 5 {
        return fail(format!("{ok} of 5 scripted management calls answered as expected after the restart"), run);
    }
    remove_cards(cx, &["persist-settings"]);
    Ok(())
}

/// A crypto key and a crypto device made through the management API are
/// saved (configuration schema 9: the key only wrapped with the device
/// key, the device with its base, key name and mapping) and, on the same
/// flash after a restart, made again: the engines unwrap the key into a
/// key slot, the device comes back on its base (a run-time remote
/// namespace, once its controller attached again) and is mapped again; a
/// verified job runs on it and the target's media hold AES-XTS
/// ciphertext of the host's data under the key the test knows. Neither
/// key half is ever in the flash image.
pub fn live_crypto_persist(cx: &Ctx) -> R {
    use super::mgmt::{CRYPTO_LIVE_KEY, CRYPTO_LIVE_KEY2};
    let k = kit(cx)?;
    let (card, base) = management_card(cx, &k, "persist-crypto")?;
    let rpc = |at: &str, method: &str, params: &str, expect: &str| format!("[[rpc]]\nat = \"{at}\"\nmethod = \"{method}\"\nparams = {params}\n{expect}\n\n");
    let target = format!("[[targets]]\nname = \"t0\"\nip = \"10.0.0.10\"\nnqn = \"nqn.2026-12.io.dpusim:kept-crypto\"\nnamespaces = [{{ size = \"8MiB\", at_rest_key = \"{CRYPTO_LIVE_KEY}{CRYPTO_LIVE_KEY2}\" }}]\n\n");
    // Run 1: key, controller, crypto device, mapped as the PF's namespace 2.
    let run1 = format!(
        "{base}{target}[[jobs]]\nname = \"hold\"\nfunctions = [0]\nrw = \"randread\"\nbs = \"4k\"\niodepth = 1\nruntime = \"125ms\"\n\n{}{}{}{}{}",
        rpc("100us", "accel_crypto_key_create", &format!("{{ cipher = \"AES_XTS\", name = \"kept\", key = \"{CRYPTO_LIVE_KEY}\", key2 = \"{CRYPTO_LIVE_KEY2}\" }}"), "expect_result = true"),
        rpc("200us", "bdev_nvme_attach_controller", "{ name = \"Kept0\", trtype = \"tcp\", traddr = \"10.0.0.10\", trsvcid = \"4420\", subnqn = \"nqn.2026-12.io.dpusim:kept-crypto\" }", "expect_result = [\"Kept0n1\"]"),
        rpc("1300us", "bdev_crypto_create", "{ base_bdev_name = \"Kept0n1\", name = \"vault\", key_name = \"kept\" }", "expect_result = \"vault\""),
        rpc("1500us", "dpu_ns_attach", "{ function = 0, nsid = 2, bdev = \"vault\" }", "expect_result = true"),
        rpc("120ms", "dpu_config_get_status", "{}", "expect_result = { persistent = true, saving = false, pending = false }"),
    );
    let p1 = cx.tmp.join("persist-crypto-1.toml");
    std::fs::write(&p1, run1).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-crypto-1", &card, &[], &["--scenario", &p1.to_string_lossy()])?;
    need(expect_code(run, 0)?, &["mgmt: crypto key kept (AES_XTS) created", "mgmt: crypto device vault on Kept0n1", "INFO  mgmt: configuration saved to flash", "outcome: scenario passed"])?;
    let no_clear_key = |when: &str| -> R {
        let image = std::fs::read(&card).map_err(|e| io(format!("{}: {e}", card.display())))?;
        for half in [CRYPTO_LIVE_KEY, CRYPTO_LIVE_KEY2] {
            let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&half[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
            if contains(&image, &bytes) || contains(&image, half.as_bytes()) {
                return Err(io(format!("the flash image {when} holds a key half in the clear")));
            }
        }
        Ok(())
    };
    no_clear_key("after the key was made")?;
    // Run 2, the same flash: all made again without a call; a verified
    // job on the PF's namespace 2 through the engines.
    let base2 = base.replace("[host]\n", "[host]\nnamespace_notices = true\n");
    let run2 = format!(
        "{base2}{target}[[jobs]]\nname = \"restored\"\nfunctions = [0]\nnsid = 2\nrw = \"randrw\"\nbs = \"4k\"\niodepth = 8\nstartdelay = \"2ms\"\nruntime = \"2ms\"\nverify = true\nattached = {{ size = \"8MiB\", block_size = 512 }}\n\n{}{}",
        rpc("1500us", "accel_crypto_keys_get", "{}", "expect_result = [{ name = \"kept\", cipher = \"AES_XTS\" }]"),
        rpc("1700us", "bdev_get_bdevs", "{ name = \"vault\" }", "expect_result = [{ name = \"vault\", product_name = \"crypto\", driver_specific = { base_bdev_name = \"Kept0n1\", key_name = \"kept\", state = \"ready\", function = 0, nsid = 2 } }]"),
    );
    let p2 = cx.tmp.join("persist-crypto-2.toml");
    std::fs::write(&p2, run2).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("persist-crypto-2", &card, &[], &["--scenario", &p2.to_string_lossy()])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "mgmt: controller Kept0 attached: 1 namespace(s)",
            "mgmt: crypto device vault on Kept0n1, key kept in key slot 0",
            "mgmt: crypto device vault restored from flash",
            "nvme fn0: namespace 2 attached (remote controller 0 nsid 1, 16384 blocks of 512 B)",
            "restored.fn0: (fn 0, ns 2)",
            "outcome: scenario passed",
        ],
    )?;
    if !run.stdout.contains("verify errors: 0, I/O errors: 0") {
        return fail("the restored crypto device's job had errors", run);
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    let n = |a: &serde_json::Value, k: &str| a[k].as_u64().unwrap_or(u64::MAX);
    if at_rest.len() != 1 || at_rest.iter().any(|a| n(a, "written") < 20 || n(a, "ciphertext_ok") != n(a, "written") || n(a, "plaintext") != 0 || n(a, "bad") != 0) {
        return fail(format!("media of the restored crypto device's base: {at_rest:?}"), run);
    }
    no_clear_key("after the restart")?;
    remove_cards(cx, &["persist-crypto"]);
    Ok(())
}

/// `dpuctl fw update` through `dpusim --hostfwd` (wall-clock paced): a
/// flash-booted card takes a signed image over the management API (a
/// tampered one and an out-of-order piece are refused first) and writes
/// it into slot B, to boot on trial; after Ctrl-C (the simulator writes
/// the flash back) the next boot runs it and it confirms itself.
pub fn mgmt_fw_update(cx: &Ctx) -> R {
    use dpuctl::{Error, UpdateError};
    let k = kit(cx)?;
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    // The card's scenario without its scripted calls: only dpuctl talks.
    let (card, base) = management_card(cx, &k, "mgmt-update")?;
    let sc = cx.tmp.join("mgmt-update.toml");
    std::fs::write(&sc, &base).map_err(|e| io(e.to_string()))?;
    let (f, fw, sc) = (card.to_string_lossy().to_string(), cx.built.firmware.to_string_lossy().to_string(), sc.to_string_lossy().to_string());
    let sim = super::mgmt::Forwarded::start(cx, &["--flash", &f, "--elf", &fw, "--scenario", &sc, "--hostfwd", "tcp:127.0.0.1:0", "--max-time", "200s"])?;
    let result = (|| -> Result<(), String> {
        let mut c = dpuctl::Client::new(sim.addr);
        c.token = Some("flash-token".into());
        c.timeout = std::time::Duration::from_secs(60);
        // Until the card has booted its management server, connections are reset.
        let st = loop {
            match c.call("dpu_fw_get_status", None) {
                Ok(v) => break v,
                Err(Error::Closed { .. } | Error::Timeout { .. }) if sim.in_time() => std::thread::sleep(std::time::Duration::from_millis(500)),
                Err(e) => return Err(format!("dpu_fw_get_status: {e}")),
            }
        };
        if st["update_available"] != true || st["update"]["state"] != "idle" {
            return Err(format!("before the update: {st}"));
        }
        let mut tampered = new.clone();
        tampered[512 + 1000] ^= 0x01;
        match c.fw_update(&tampered, 2, 1, |_, _| {}) {
            Err(UpdateError::Refused { state }) if state == "invalid image" => {}
            other => return Err(format!("a tampered image: {other:?}")),
        }
        match c.call("dpu_fw_download", Some(serde_json::json!({ "offset": 4096, "data": "AAAA" }))) {
            Err(Error::Rpc { code: -32602, message }) if message.contains("`offset` must be") => {}
            other => return Err(format!("a piece out of order: {other:?}")),
        }
        match c.call("dpu_fw_commit", Some(serde_json::json!({ "slot": 3 }))) {
            Err(Error::Rpc { code: -32602, .. }) => {}
            other => return Err(format!("slot 3: {other:?}")),
        }
        let u = c.fw_update(&new, 2, 1, |_, _| {}).map_err(|e| format!("the update: {e}"))?;
        if u["staged"] != new.len() || u["slot"] != 2 {
            return Err(format!("after the update: {u}"));
        }
        let st = c.call("dpu_fw_get_status", None).map_err(|e| e.to_string())?;
        let slot2 = &st["slots"][1];
        if slot2["revision"] != "0.2.0" || slot2["next"] != true || st["active_slot"] != 1 {
            return Err(format!("the slots after the update: {st}"));
        }
        Ok(())
    })();
    if result.is_err() {
        return sim.end(result);
    }
    // The firmware's log goes to stdout, not read here: the status calls
    // above checked each step; Ctrl-C makes the simulator write the flash.
    sim.interrupt().map_err(io)?;
    let run = cx.boot("mgmt-update-2", &card, &[], &["--max-time", "230ms"])?;
    need(
        expect_code(run, 0)?,
        &[
            "booting slot B (on trial: it must confirm itself or the next boot reverts)",
            "INFO  boot: slot B, image 0.2.0 (security counter 1, OTP anti-rollback counter 0), on trial",
            "INFO  boot: slot B confirmed: image 0.2.0 stays; OTP anti-rollback counter 0 -> 1",
        ],
    )?;
    remove_cards(cx, &["mgmt-update"]);
    Ok(())
}

/// Each kind of bad image is refused with its reason; with nothing left
/// to boot the run ends with status 8. A bad slot A with a good slot B
/// falls back to B.
pub fn bad_images(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let other_path = cx.tmp.join("other-signing-key");
    let _ = std::fs::remove_file(&other_path);
    let other = key::generate(&other_path, "systest: a key the card does not trust").map_err(|e| io(e.to_string()))?;
    let sig = image::signature_offset(&k.fw).ok_or_else(|| io("no signature offset".into()))?;
    let mut tampered_payload = k.fw.clone();
    tampered_payload[512 + 1000] ^= 0x01;
    let mut tampered_header = k.fw.clone();
    tampered_header[dpu_hal::regs::image::OFF_VERSION] = 9;
    let mut unsigned = k.fw.clone();
    unsigned[sig..].fill(0xff);
    let wrong_key = sign(&cx.built.firmware, Kind::Firmware, v("0.1.0"), 0, &other).map_err(io)?;
    let old = sign(&cx.built.firmware, Kind::Firmware, v("0.0.9"), 1, &k.key).map_err(io)?;
    let cases: [(&str, &[u8], u32, &str); 5] = [
        ("tampered-payload", &tampered_payload, 0, "slot A: refused: payload hash mismatch (tampered payload)"),
        ("tampered-header", &tampered_header, 0, "slot A: refused: bad signature (tampered header or forged signature)"),
        ("unsigned", &unsigned, 0, "slot A: refused: unsigned image"),
        ("wrong-key", &wrong_key, 0, "slot A: refused: signed with a key the OTP does not trust"),
        ("rolled-back", &old, 2, "slot A: refused: rolled back: security counter 1 is below the OTP anti-rollback counter 2"),
    ];
    for (tag, img, counter, why) in cases {
        let card = cx.card(tag, &Card { bootloader: Some(&k.bootloader), slot_a: Some(img), ..Default::default() }, &k.key, counter)?;
        let run = cx.boot(tag, &card, &[], &["--max-time", "230ms"])?;
        let run = need(expect_code(run, 8)?, &[why, "slot B: refused: empty slot", "boot: no bootable firmware image", "secure boot: the bootloader found no firmware slot it may boot"])?;
        if run.stdout.contains("INFO  control plane up") {
            return fail(format!("{tag}: the firmware ran"), run);
        }
    }
    // A tampered slot A with a good slot B: B boots and becomes the confirmed slot.
    let card = cx.card("fallback", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&tampered_payload), slot_b: Some(&k.fw), ..Default::default() }, &k.key, 0)?;
    let run = cx.boot("fallback", &card, &[], &["--max-time", "400ms"])?;
    need(
        expect_code(run, 0)?,
        &["slot A: refused: payload hash mismatch", "slot A: unusable; slot B is now the confirmed one", "booting slot B (confirmed)", "INFO  boot: slot B, image 0.1.0"],
    )?;
    // The ROM refuses a tampered bootloader, and boots nothing on a chip
    // whose fuses were never provisioned.
    let mut bad_bl = k.bootloader.clone();
    bad_bl[512 + 64] ^= 0x80;
    let card = cx.card("bad-bootloader", &Card { bootloader: Some(&bad_bl), slot_a: Some(&k.fw), ..Default::default() }, &k.key, 0)?;
    let run = cx.boot("bad-bootloader", &card, &[], &["--max-time", "230ms"])?;
    let run = need(expect_code(run, 8)?, &["ROM   boot refused: bootloader 0.1.0: payload hash mismatch (tampered payload)", "secure boot: the boot ROM refused the first-stage bootloader"])?;
    if run.stdout.contains("UART") {
        return fail("the refused bootloader ran", run);
    }
    let card = cx.card("unprovisioned", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), ..Default::default() }, &k.key, 0)?;
    let blank = cx.tmp.join("blank.otp");
    std::fs::write(&blank, vec![0u8; 256]).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("unprovisioned", &card, &[], &["--otp", &blank.to_string_lossy(), "--max-time", "230ms"])?;
    need(expect_code(run, 8)?, &["the OTP holds no root key hash (an unprovisioned chip boots nothing)"])?;
    // Files dpusim cannot use are bad input, named.
    let run = cx.boot("no-flash-file", &cx.tmp.join("nonexistent.bin"), &[], &["--max-time", "1ms"])?;
    need(expect_code(run, 2)?, &["--flash", "nonexistent.bin"])?;
    let odd = cx.tmp.join("odd.otp");
    std::fs::write(&odd, [1u8, 2, 3]).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("odd-otp", &card, &[], &["--otp", &odd.to_string_lossy(), "--max-time", "1ms"])?;
    need(expect_code(run, 2)?, &["--otp", "odd.otp", "little-endian 32-bit words"])?;
    remove_cards(cx, &["tampered-payload", "tampered-header", "unsigned", "wrong-key", "rolled-back", "fallback", "bad-bootloader", "unprovisioned"]);
    Ok(())
}

/// A new image boots on trial and confirms itself (journal, OTP counter
/// raised), and keeps booting after a reboot; an image that crashes on
/// trial is reverted at the next boot.
pub fn trial_boot(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), slot_b: Some(&new), pending_b: true, configs: &configs };
    let flash = cx.card("trial", &card, &k.key, 0)?;
    let run = cx.boot("trial-1", &flash, &[], &["--max-time", "260ms"])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "journal: confirmed slot A, pending B, on trial -",
            "booting slot B (on trial: it must confirm itself or the next boot reverts)",
            "INFO  boot: slot B, image 0.2.0 (security counter 1, OTP anti-rollback counter 0), on trial",
            "INFO  boot: slot B confirmed: image 0.2.0 stays; OTP anti-rollback counter 0 -> 1",
        ],
    )?;
    no_warnings(&run)?;
    if otp_counter(&flash.with_extension("otp"))? != 1 {
        return fail("the OTP file does not hold the raised counter", run);
    }
    // Reboot: B is the confirmed image now, and the configuration is still there.
    let run = cx.boot("trial-2", &flash, &[], &["--max-time", "260ms"])?;
    need(
        expect_code(run, 0)?,
        &[
            "otp: root key hash",
            "anti-rollback counter 1",
            "journal: confirmed slot B, pending -, on trial -",
            "booting slot B (confirmed)",
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 1 namespace(s)",
        ],
    )?;

    // An image that panics during its trial boot never confirms itself.
    let panic_elf = cx.image("panic");
    let crashing = sign(&panic_elf, Kind::Firmware, v("0.3.0"), 0, &k.key).map_err(io)?;
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), slot_b: Some(&crashing), pending_b: true, configs: &configs };
    let flash = cx.card("revert", &card, &k.key, 0)?;
    let run = cx.boot("revert-1", &flash, &[&panic_elf], &["--max-time", "260ms"])?;
    let run = need(expect_code(run, 116)?, &["booting slot B (on trial", "deliberate panic 42"])?;
    if run.stdout.contains("confirmed: image") {
        return fail("the crashing image confirmed itself", run);
    }
    let run = cx.boot("revert-2", &flash, &[&panic_elf], &["--max-time", "260ms"])?;
    need(
        expect_code(run, 0)?,
        &[
            "journal: confirmed slot A, pending -, on trial B",
            "slot B: was on trial and never confirmed itself: reverting to slot A",
            "booting slot A (confirmed)",
            "INFO  boot: slot A, image 0.1.0",
        ],
    )?;
    remove_cards(cx, &["trial", "revert"]);
    Ok(())
}

/// The configuration copies: the newest valid copy is served; a copy
/// whose CRC fails gives way to the other; with none the card serves
/// nothing and says why.
pub fn config_copies(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let older = config_of("pf-randread-qd1", &dk()).map_err(io)?.ok_or_else(|| io("no configuration".into()))?;
    let newer = config_of("ram-verify", &dk()).map_err(io)?.ok_or_else(|| io("no configuration".into()))?;
    let (n_old, n_new) = (older.namespaces.len(), newer.namespaces.len());
    let configs = [older, newer];
    let flash = cx.card("config", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() }, &k.key, 0)?;
    let run = cx.boot("config-newest", &flash, &[], &["--max-time", "230ms"])?;
    need(expect_code(run, 0)?, &[&format!("INFO  config: from flash copy 1 (sequence 2; other copy valid): {n_new} namespace(s)")])?;
    // Flip a byte of copy 1's payload: copy 0 (the previous configuration) is served.
    let board = dpu_targets::Board::load(dpu_targets::default_board_path()).map_err(|e| io(e.to_string()))?;
    let part = board.flash.layout.config;
    let mut bytes = std::fs::read(&flash).map_err(|e| io(e.to_string()))?;
    let at = (part.offset + part.size / 2) as usize + dpu_config::store::HEADER + 7;
    bytes[at] ^= 0x40;
    std::fs::write(&flash, &bytes).map_err(|e| io(e.to_string()))?;
    let run = cx.boot("config-fallback", &flash, &[], &["--max-time", "230ms"])?;
    need(expect_code(run, 0)?, &[&format!("INFO  config: from flash copy 0 (sequence 1; other copy CRC mismatch): {n_old} namespace(s)")])?;
    // No configuration at all.
    let flash = cx.card("config-none", &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), ..Default::default() }, &k.key, 0)?;
    let run = cx.boot("config-none", &flash, &[], &["--max-time", "230ms"])?;
    need(expect_code(run, 0)?, &["WARN  config: no valid copy in flash (copy 0 blank, copy 1 blank): no namespaces", "nvme: 0 namespace(s) configured"])?;
    remove_cards(cx, &["config", "config-none"]);
    Ok(())
}

/// Writes a scenario with `[[firmware]]` entries (`body`) for a flash card.
fn fw_scenario(cx: &Ctx, tag: &str, body: &str) -> Result<String, (String, Option<Run>)> {
    let p = cx.tmp.join(format!("{tag}.toml"));
    std::fs::write(&p, format!("[scenario]\nname = \"{tag}\"\n{body}")).map_err(|e| io(e.to_string()))?;
    Ok(p.to_string_lossy().to_string())
}

/// Firmware update from the host: the host downloads a signed image
/// 0.2.0 over NVMe (Firmware Image Download) and commits it with action
/// 001b (after malformed firmware commands, each refused with its
/// status, and the same commands on a VF: Invalid Command Opcode); the
/// slot log shows it in slot 2, to be activated; the reboot
/// runs it on trial, it confirms itself and the slot log shows slot 2
/// active; the configuration stays. A tampered image is refused with
/// Invalid Firmware Image, slot B stays empty and the card keeps booting
/// 0.1.0.
pub fn host_update(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    let new_path = cx.tmp.join("host-update-0.2.0.img");
    std::fs::write(&new_path, &new).map_err(|e| io(e.to_string()))?;
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() };
    let flash = cx.card("host-update", &card, &k.key, 0)?;
    let sc = fw_scenario(
        cx,
        "host-update-1",
        &format!(
            "[host]\nvfs = 1\n[[firmware]]\nchecks = true\nimage = \"{}\"\naction = 1\nexpect_commit = \"requires-conventional-reset\"\nexpect_active = 1\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n",
            new_path.display()
        ),
    )?;
    // `checks`: malformed firmware commands first (the scenario fails on
    // any status other than the one the spec gives).
    let run = cx.boot("host-update-1", &flash, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "INFO  fw update: ready (running slot A",
            "firmware commit: action ReplaceAndActivate, slot 2",
            "INFO  fw update: writing image 0.2.0",
            "into slot B",
            "INFO  fw update: slot B activates at the next reset (on trial until it confirms itself)",
            "firmware: commit action 1 slot 0: 1/0b Firmware Activation Requires Conventional Reset",
            "firmware slot log: active slot 1, next 2; slot 1: 0.1.0, slot 2: 0.2.0",
            "firmware check: download after a gap (offset 4096, nothing received): 0/02 Invalid Field in Command",
            "firmware check: download overlapping what was received: 1/14 Overlapping Range",
            "firmware check: download of 132 KiB (above MDTS): 0/02 Invalid Field in Command",
            "firmware check: commit to slot 5 (two slots): 1/06 Invalid Firmware Slot",
            "firmware check: commit replacing the running slot: 1/06 Invalid Firmware Slot",
            "firmware check: commit action 110b (boot partition): 0/02 Invalid Field in Command",
            "firmware check: commit activating an empty slot: 1/07 Invalid Firmware Image",
            "firmware check: commit action 011b of a partial image: 1/07 Invalid Firmware Image",
            "firmware check: commit action 011b on an empty slot, nothing downloaded: 1/07 Invalid Firmware Image",
            "WARN  fw update: slot B cannot be activated: ",
            "firmware check: download on VF 1: 0/01 Invalid Command Opcode",
            "firmware check: commit on VF 1: 0/01 Invalid Command Opcode",
            "outcome: scenario passed",
        ],
    )?;
    drop(run);
    // The card restarts (a conventional reset): the bootloader tries slot
    // B. The host reads the slot log once the new image had time to
    // confirm itself (a run ends when the host is done).
    let sc = fw_scenario(cx, "host-update-2", "[[firmware]]\nat = \"20ms\"\nexpect_active = 2\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n")?;
    let run = cx.boot("host-update-2", &flash, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "journal: confirmed slot A, pending B, on trial -",
            "booting slot B (on trial: it must confirm itself or the next boot reverts)",
            "INFO  boot: slot B, image 0.2.0 (security counter 1, OTP anti-rollback counter 0), on trial",
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 1 namespace(s)",
            "INFO  boot: slot B confirmed: image 0.2.0 stays; OTP anti-rollback counter 0 -> 1",
            "firmware slot log: active slot 2, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    no_warnings(&run)?;
    if otp_counter(&flash.with_extension("otp"))? != 1 {
        return Err(("the OTP file does not hold the raised counter".into(), None));
    }

    // A tampered image: refused, nothing written, the card boots 0.1.0.
    let mut tampered = new.clone();
    tampered[512 + 1000] ^= 0x01;
    let bad_path = cx.tmp.join("host-update-tampered.img");
    std::fs::write(&bad_path, &tampered).map_err(|e| io(e.to_string()))?;
    let flash = cx.card("host-update-bad", &card, &k.key, 0)?;
    let sc = fw_scenario(
        cx,
        "host-update-bad",
        &format!(
            "[[firmware]]\nimage = \"{}\"\naction = 1\nexpect_commit = \"invalid-firmware-image\"\nexpect_active = 1\nexpect_revisions = [\"0.1.0\", \"\"]\n",
            bad_path.display()
        ),
    )?;
    let run = cx.boot("host-update-bad-1", &flash, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "WARN  fw update: downloaded image refused: payload hash mismatch (tampered payload)",
            "firmware: commit action 1 slot 0: 1/07 Invalid Firmware Image",
            "firmware slot log: active slot 1, next -; slot 1: 0.1.0, slot 2: -",
        ],
    )?;
    if run.stdout.contains("fw update: writing image") {
        return fail("the tampered image was written to flash", run);
    }
    let run = cx.boot("host-update-bad-2", &flash, &[], &["--max-time", "230ms"])?;
    need(expect_code(run, 0)?, &["journal: confirmed slot A, pending -, on trial -", "booting slot A (confirmed)", "INFO  boot: slot A, image 0.1.0"])?;
    remove_cards(cx, &["host-update", "host-update-bad"]);
    Ok(())
}

/// Firmware activation without reset (NVMe Base 2.0 §5.12, commit action
/// 011b): a flash-booted card runs verified random read/write I/O on the
/// PF's RAM namespace; at its previous boot the host downloaded a signed
/// 0.2.0 and committed it to slot 2 (action 000b: written, verified, not
/// active; writing the slot takes seconds, so it has a run of its own, in
/// which a slot log read 1 ms into the commit must complete before it:
/// the commit does not hold the admin queue); 200 ms into
/// the I/O it commits slot 2 with action 011b. The card pauses (CSTS.PP, Firmware Activation Starting
/// notice), hands its controller over and restarts warm into 0.2.0 on
/// trial, which restores the controller, completes the commit and
/// confirms itself. The host's I/O only stalls (quiesced while it polls
/// CSTS.PP, bounded by MTFA): no controller reset, no verify error, the
/// slot log shows slot 2 active. Then a tampered image is refused with no
/// pause, and the same activation runs with 2 VFs enabled, one of them on
/// an NVMe/TCP target model ([`activate_now_vfs`]).
pub fn host_activate_now(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    let new_path = cx.tmp.join("activate-now-0.2.0.img");
    std::fs::write(&new_path, &new).map_err(|e| io(e.to_string()))?;
    let blank_b = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() };
    let flash = cx.card("activate-now", &blank_b, &k.key, 0)?;
    // First boot: the image is downloaded and written to slot 2 (000b:
    // verified, not active). Writing ~1 MB of flash takes seconds (its
    // length moves with the image's size), hence a run of its own; the
    // PF serves other admin commands meanwhile (a slot log read issued
    // 1 ms into the commit completes long before it).
    let sc = fw_scenario(
        cx,
        "activate-now-write",
        &format!(
            "[[firmware]]\nat = \"10ms\"\nimage = \"{}\"\naction = 0\nexpect_commit = \"success\"\nexpect_active = 1\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\nadmin_during_commit = true\n",
            new_path.display()
        ),
    )?;
    let run = cx.boot("activate-now-write", &flash, &[], &["--scenario", &sc])?;
    need(
        expect_code(run, 0)?,
        &["INFO  fw update: writing image 0.2.0", "firmware: commit action 0 slot 0: 0/00 Success", "firmware: slot log read during the commit: completed"],
    )?;
    // Second boot: verified I/O, and 200 ms into it 011b activates slot 2.
    let sc = fw_scenario(
        cx,
        "activate-now",
        "[host]\nio_queues = 2\n[[storage]]\nfunctions = [0]\nbackend = \"ram\"\nsize = \"16MiB\"\n[[jobs]]\nname = \"randrw\"\nfunctions = [0]\nrw = \"randrw\"\nrwmixread = 50\nbs = \"4k\"\niodepth = 2\nstartdelay = \"50ms\"\nruntime = \"800ms\"\nverify = true\nverify_at_end = true\ncompare = true\n\
         [[firmware]]\nat = \"250ms\"\naction = 3\nslot = 2\nexpect_commit = \"success\"\nexpect_active = 2\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n\
         [expect]\nverify_errors = 0\nio_errors = 0\n",
    )?;
    let run = cx.boot("activate-now", &flash, &[], &["--scenario", &sc, "--max-time", "3s"])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "nvme: firmware activation without reset: pausing command processing of 1 controller(s)",
            "nvme fn0: firmware activation starting: I/O queues quiesced, polling CSTS.PP",
            "nvme: handover record written (1 controller(s)",
            "ROM   warm restart",
            "booting slot B (on trial: it must confirm itself or the next boot reverts)",
            "INFO  boot: slot B, image 0.2.0",
            "nvme: restored 1 controller(s) from the handover record of image 0.1.0",
            "nvme: firmware activation complete: Firmware Commit completed, processing resumed on 1 controller(s)",
            "INFO  boot: slot B confirmed: image 0.2.0 stays",
            "processing paused seen); I/O queues resumed",
            "firmware: commit action 3 slot 2: 0/00 Success",
            "firmware slot log: active slot 2, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    if run.stdout.contains("resetting controller") || run.stdout.contains("handover record refused") {
        return fail("the host reset the controller, or the new image refused the handover", run);
    }
    // The I/O runs across the activation (it starts once the slot is
    // being written): its slowest command waited for the restart, and
    // not longer than MTFA (500 ms).
    let max_us = run.stdout.lines().find(|l| l.trim_start().starts_with("all  :")).and_then(|l| l.rsplit("max=").next()).and_then(|v| v.trim().parse::<f64>().ok());
    if !max_us.is_some_and(|m| (100_000.0..500_000.0).contains(&m)) {
        return fail(format!("the slowest I/O took {max_us:?} us: expected the stall of the activation (100-500 ms)"), run);
    }
    drop(run);

    // Refused without a pause: a tampered image (Invalid Firmware Image,
    // slot 2 keeps its image; a VF enabled changes nothing).
    let mut tampered = new.clone();
    tampered[512 + 1000] ^= 0x01;
    let bad_path = cx.tmp.join("activate-now-tampered.img");
    std::fs::write(&bad_path, &tampered).map_err(|e| io(e.to_string()))?;
    let card = Card { slot_b: Some(&new), ..blank_b };
    let flash = cx.card("activate-now-refused", &card, &k.key, 0)?;
    let sc = fw_scenario(
        cx,
        "activate-now-refused",
        &format!(
            "[host]\nvfs = 1\n[[firmware]]\nimage = \"{}\"\naction = 3\nslot = 2\nexpect_commit = \"invalid-firmware-image\"\nexpect_active = 1\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n",
            bad_path.display()
        ),
    )?;
    let run = cx.boot("activate-now-refused", &flash, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "WARN  fw update: downloaded image refused: payload hash mismatch (tampered payload)",
            "firmware: commit action 3 slot 2: 1/07 Invalid Firmware Image",
            "firmware slot log: active slot 1, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    if run.stdout.contains("pausing command processing") || run.stdout.contains("warm restart") || run.stdout.contains("fw update: writing image") {
        return fail("a refused activation paused the controller, restarted the card or wrote the slot", run);
    }
    drop(run);
    activate_now_vfs(cx, &k, &new)?;
    remove_cards(cx, &["activate-now", "activate-now-refused", "activate-now-vfs"]);
    Ok(())
}

/// Activation without reset with SR-IOV VFs enabled and a remote
/// namespace: the PF (RAM namespace), VF 1 (RAM) and VF 2 (a namespace on
/// an NVMe/TCP target model) run verified random read/write I/O; the host
/// commits the image already in slot 2 with action 011b. Every
/// controller is paused (each host driver sees its own notice and
/// CSTS.PP), all three are handed over, the new image reconnects to the
/// target and restores them: no verify or I/O error, no controller reset,
/// the slowest I/O waited for the restart but not beyond MTFA, slot 2
/// active.
///
/// (The commit goes 200 ms after the host is up; the slot is read and
/// checked for about 170 ms before the pause: the I/O starts 320 ms after
/// the host is up, shortly before the pause, and ends shortly after the
/// resume - verified I/O is most of the run's cost.)
fn activate_now_vfs(cx: &Ctx, k: &Kit, new: &[u8]) -> R {
    let setup = "[host]\nvfs = 2\nio_queues = 2\nio_timeout_ms = 5000\n\
                 [network]\nports = [\"10.0.0.1/24\"]\n\
                 [[targets]]\nname = \"t0\"\nip = \"10.0.0.10\"\nnqn = \"nqn.2026-11.io.dpusim:t0\"\nnamespaces = [{ size = \"16MiB\" }]\n\
                 [[storage]]\nfunctions = [0]\nbackend = \"ram\"\nsize = \"16MiB\"\n\
                 [[storage]]\nfunctions = [1]\nbackend = \"ram\"\nsize = \"8MiB\"\n\
                 [[storage]]\nfunctions = [2]\nbackend = \"nvmf\"\ntarget = \"t0\"\n";
    // The card's flash configuration is this scenario's storage.
    let base = fw_scenario(cx, "activate-now-vfs-config", setup)?;
    let sc = dpu_targets::Scenario::load(Path::new(&base)).map_err(|e| io(e.to_string()))?;
    let configs = vec![dpu_imgtool::config::from_scenario(&sc, &dk()).map_err(io)?];
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), slot_b: Some(new), configs: &configs, ..Default::default() };
    let flash = cx.card("activate-now-vfs", &card, &k.key, 0)?;
    let sc = fw_scenario(
        cx,
        "activate-now-vfs",
        &format!(
            "{setup}[[jobs]]\nname = \"randrw\"\nfunctions = [0, 1, 2]\nrw = \"randrw\"\nrwmixread = 50\nbs = \"4k\"\niodepth = 1\nstartdelay = \"320ms\"\nruntime = \"420ms\"\nverify = true\nverify_at_end = true\ncompare = true\n\
             [[firmware]]\nat = \"200ms\"\naction = 3\nslot = 2\nexpect_commit = \"success\"\nexpect_active = 2\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n\
             [expect]\nverify_errors = 0\nio_errors = 0\n"
        ),
    )?;
    let run = cx.boot("activate-now-vfs", &flash, &[], &["--scenario", &sc, "--max-time", "4s"])?;
    // Kept next to the card for a look at the whole run (the failure
    // report shows its end only).
    let _ = std::fs::write(cx.tmp.join("activate-now-vfs.log"), &run.stdout);
    let run = need(
        expect_code(run, 0)?,
        &[
            "nvme: firmware activation without reset: pausing command processing of 3 controller(s)",
            "nvme: handover record written (3 controller(s)",
            "closing the NVMe/TCP connections",
            "nvmf: I/O queues closed; closing 1 admin queue(s) before the restart",
            "nvme: NVMe/TCP connections closed: warm restart into the new image",
            "ROM   warm restart",
            "INFO  boot: slot B, image 0.2.0",
            "nvme admin: 2 VF(s) enabled (kept across the activation)",
            "nvme: restored 3 controller(s) from the handover record of image 0.1.0",
            "nvme: firmware activation complete: Firmware Commit completed, processing resumed on 3 controller(s)",
            "INFO  boot: slot B confirmed: image 0.2.0 stays",
            "firmware: commit action 3 slot 2: 0/00 Success",
            "firmware slot log: active slot 2, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    // Each controller's driver saw its own notice and CSTS.PP set.
    for f in 0..3 {
        let starting = format!("nvme fn{f}: firmware activation starting: I/O queues quiesced, polling CSTS.PP");
        let done = run.stdout.lines().any(|l| l.contains(&format!("nvme fn{f}: firmware activation done after")) && l.contains("processing paused seen"));
        if !run.stdout.contains(&starting) || !done {
            return fail(format!("function {f}: its host driver did not see the activation notice and CSTS.PP"), run);
        }
    }
    // The old image closed its NVMe/TCP connections before the restart
    // (I/O queues, then the admin queue: FINs the target saw), so the
    // target kept no stale controller and the new image's connects met
    // no old connection state.
    let restart = run.stdout.find("ROM   warm restart").unwrap_or(run.stdout.len());
    let old_io = run.stdout[..restart].lines().filter(|l| l.contains("ctrl 0: I/O queue") && l.contains("ready")).count() as u64;
    let closed = run.stats.as_ref().and_then(|s| s["targets"][0]["closed_by_host"].as_u64()).unwrap_or(0);
    if old_io == 0 || closed < old_io + 1 {
        return fail(format!("the target saw {closed} connection(s) closed by the card (FIN); the old image had {old_io} I/O queue(s) and an admin queue"), run);
    }
    for bad in [
        "resetting controller",
        "handover record refused",
        "the image activates at the next reset",
        "handover record not written",
        "TCP connect timed out",
        "not all closed",
        "keep-alive timeout",
    ] {
        if run.stdout.contains(bad) {
            return fail(format!("a controller was reset, the handover refused, or the activation put off to the next reset: `{bad}`"), run);
        }
    }
    let max_us = run.stdout.lines().find(|l| l.trim_start().starts_with("all  :")).and_then(|l| l.rsplit("max=").next()).and_then(|v| v.trim().parse::<f64>().ok());
    if !max_us.is_some_and(|m| (100_000.0..500_000.0).contains(&m)) {
        return fail(format!("the slowest I/O took {max_us:?} us: expected the stall of the activation (100-500 ms)"), run);
    }
    Ok(())
}

/// Commit actions on an image already in a slot (NVMe Base 2.0 §5.12
/// figure 189): 010b on slot 2 makes it pending; 011b without a newly
/// downloaded image activates "the existing image in the specified
/// firmware slot" - on the running slot 1 that withdraws the pending
/// activation; 010b on slot 2 makes it pending again (011b on slot 2 would
/// activate it now: `host_activate_now`). The restart runs slot 2 on
/// trial and it confirms itself.
pub fn host_commit_existing(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), slot_b: Some(&new), configs: &configs, ..Default::default() };
    let flash = cx.card("commit-existing", &card, &k.key, 0)?;
    let entry = |action: u8, slot: u8| {
        format!("[[firmware]]\naction = {action}\nslot = {slot}\nexpect_commit = \"requires-conventional-reset\"\nexpect_active = 1\nexpect_revisions = [\"0.1.0\", \"0.2.0\"]\n")
    };
    let sc = fw_scenario(cx, "commit-existing-1", &format!("[host]\nvfs = 1\n{}{}{}", entry(2, 2), entry(3, 1), entry(2, 2)))?;
    let run = cx.boot("commit-existing-1", &flash, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "firmware: commit action 2 slot 2: 1/0b Firmware Activation Requires Conventional Reset",
            "firmware: commit action 3 slot 1: 1/0b Firmware Activation Requires Conventional Reset",
            "INFO  fw update: slot A activates at the next reset (nothing pending)",
            "firmware slot log: active slot 1, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "firmware: commit action 2 slot 2: 1/0b Firmware Activation Requires Conventional Reset",
            "firmware slot log: active slot 1, next 2; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    if run.stdout.contains("fw update: writing image") {
        return fail("a commit without a download wrote the slot", run);
    }
    let sc = fw_scenario(cx, "commit-existing-2", "[[firmware]]\nat = \"20ms\"\nexpect_active = 2\n")?;
    let run = cx.boot("commit-existing-2", &flash, &[], &["--scenario", &sc])?;
    need(
        expect_code(run, 0)?,
        &[
            "booting slot B (on trial: it must confirm itself or the next boot reverts)",
            "INFO  boot: slot B confirmed: image 0.2.0 stays",
            "firmware slot log: active slot 2, next -; slot 1: 0.1.0, slot 2: 0.2.0",
            "outcome: scenario passed",
        ],
    )?;
    remove_cards(cx, &["commit-existing"]);
    Ok(())
}

/// Power cuts swept across the whole firmware update from the host, on
/// a card with a configuration in flash: the host downloads a signed
/// 0.2.0 and commits it (action 001b, activate at the next reset), then
/// the card restarts, the bootloader records the trial and the new image
/// records its confirmation. Each case cuts the power after a given
/// number of bytes programmed or erased in one of the two runs, then
/// boots the card again: it must boot a valid signed image (which one
/// follows from what reached the flash) with its configuration intact.
///
/// The download itself writes only DDR (the staging buffer); it is cut
/// by time, half way between the update service being ready and the
/// host's last piece (times read from an uncut run). Every byte of the
/// journal's and the configuration store's records is swept by their
/// host tests (`dpu_fwimage::state`, `dpu_config::store`); this sweep
/// checks the firmware's and the bootloader's order of writes on the
/// real flash model, at points spread over every phase.
pub fn update_power_cut_sweep(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let configs: Vec<dpu_config::Config> = config_of("pf-randread-qd1", &dk()).map_err(io)?.into_iter().collect();
    let new = sign(&cx.built.firmware, Kind::Firmware, v("0.2.0"), 1, &k.key).map_err(io)?;
    let new_path = cx.tmp.join("cut-update-0.2.0.img");
    std::fs::write(&new_path, &new).map_err(|e| io(e.to_string()))?;
    let card = Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() };
    let base = cx.card("cut-update-base", &card, &k.key, 0)?;
    let sc = fw_scenario(cx, "cut-update", &format!("[[firmware]]\nimage = \"{}\"\naction = 1\n", new_path.display()))?;
    // Run 1 (the commit) writes: the slot erased (whole subsectors), the
    // image programmed, a 32-byte journal record (B pending).
    let n = new.len() as u64;
    let erased = n.next_multiple_of(4096);
    // The sequence whole, first: its log gives the download's time, and
    // its flash (B pending) is where the first-boot cases start.
    let committed = copy_card(cx, &base, "cut-update-done")?;
    let run = cx.boot("cut-update-done", &committed, &[], &["--scenario", &sc])?;
    let run = need(expect_code(run, 0)?, &["INFO  fw update: slot B activates at the next reset"])?;
    let (Some(ready), Some(sent)) = (log_time_ns(&run.stdout, "INFO  fw update: ready"), log_time_ns(&run.stdout, "host  firmware: downloaded")) else {
        return fail("no time for the update service's start or the end of the download in the log", run);
    };
    let mid = ready + (sent.saturating_sub(ready)) / 2;
    let flash = copy_card(cx, &base, "cut-update")?;
    let run = cx.boot("cut-update-dl", &flash, &[], &["--scenario", &sc, "--power-cut-at", &format!("{mid}ns")])?;
    let run = need(expect_code(run, 9)?, &["the power was cut"])?;
    if run.stdout.contains("firmware: downloaded") || run.stdout.contains("fw update: writing image") {
        return fail(format!("the cut at {mid} ns was not during the download"), run);
    }
    boots_after_cut(cx, &flash, false).map_err(|(m, r)| (format!("after a cut during the download: {m}"), r))?;
    let mut commit: Vec<(u64, String)> = vec![(0, "before the commit's first byte".into())];
    commit.extend([4096 * 3 + 10, erased - 1].map(|c| (c, "while the slot is erased".to_string())));
    commit.extend((0..3).map(|i| (erased + n * i / 3, format!("while the image is programmed ({i}/3)"))));
    commit.push((erased + n - 1, "on the image's last byte".into()));
    commit.extend([0, 8, 24, 31].map(|j| (erased + n + j, format!("pending record, {j} of 32 bytes written"))));
    for (cut, what) in &commit {
        let flash = copy_card(cx, &base, "cut-update")?;
        let run = cx.boot("cut-update-1", &flash, &[], &["--scenario", &sc, "--power-cut-after-flash-bytes", &cut.to_string()])?;
        let run = need(expect_code(run, 9)?, &["the power was cut"]).map_err(|(m, r)| (format!("commit, cut after {cut} bytes ({what}): {m}"), r))?;
        if *cut > 0 && !run.stdout.contains("fw update: writing image 0.2.0") {
            return fail(format!("commit, cut after {cut} bytes ({what}): the slot was never written"), run);
        }
        // The pending record is incomplete: the old image, confirmed.
        boots_after_cut(cx, &flash, false).map_err(|(m, r)| (format!("after a cut during the commit after {cut} bytes ({what}): {m}"), r))?;
    }
    // From the whole commit (B pending): run 2, the first boot, writes the
    // bootloader's trial record, then the firmware's confirmation.
    for j in [0u64, 16, 31, 32, 48, 63] {
        let (what, again) = if j < 32 { ("trial record torn: B is still pending", true) } else { ("trial recorded, confirmation torn: B never confirmed", false) };
        let flash = copy_card(cx, &committed, "cut-update")?;
        let run = cx.boot("cut-update-2", &flash, &[], &["--max-time", "260ms", "--power-cut-after-flash-bytes", &j.to_string()])?;
        let run = need(expect_code(run, 9)?, &["the power was cut"]).map_err(|(m, r)| (format!("first boot, cut after {j} bytes: {m}"), r))?;
        if j >= 32 && !run.stdout.contains("booting slot B (on trial") {
            return fail(format!("first boot, cut after {j} bytes ({what}): the trial never started"), run);
        }
        boots_after_cut(cx, &flash, again).map_err(|(m, r)| (format!("after a cut during the first boot after {j} bytes ({what}): {m}"), r))?;
    }
    remove_cards(cx, &["cut-update-base", "cut-update", "cut-update-done"]);
    Ok(())
}

/// The simulated time (ns) of the first log line containing `what`
/// (lines start "[  186.899781 ms] ").
fn log_time_ns(log: &str, what: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(what))?;
    let ms = line.strip_prefix('[')?.split(" ms]").next()?.trim();
    let (int, frac) = ms.split_once('.').unwrap_or((ms, ""));
    let frac = format!("{frac:0<6}");
    Some(int.parse::<u64>().ok()? * 1_000_000 + frac.get(..6)?.parse::<u64>().ok()?)
}

/// A copy of card `from` (flash and fuses) as `<tag>.bin` / `.otp`.
fn copy_card(cx: &Ctx, from: &Path, tag: &str) -> Result<PathBuf, (String, Option<Run>)> {
    let to = cx.tmp.join(format!("{tag}.bin"));
    for ext in ["bin", "otp"] {
        std::fs::copy(from.with_extension(ext), to.with_extension(ext)).map_err(|e| io(e.to_string()))?;
    }
    Ok(to)
}

/// The card boots after a power cut: the new image 0.2.0 on trial, which
/// confirms itself (`new`), or the old one confirmed; with its flash
/// configuration either way.
fn boots_after_cut(cx: &Ctx, flash: &Path, new: bool) -> R {
    let run = cx.boot("cut-update-check", flash, &[], &["--max-time", "230ms"])?;
    let config = "INFO  config: from flash copy 0 (sequence 1; other copy blank): 1 namespace(s)";
    let want: &[&str] = if new {
        &["journal: confirmed slot A, pending B, on trial -", "booting slot B (on trial", "INFO  boot: slot B, image 0.2.0", "INFO  boot: slot B confirmed", config]
    } else {
        &["booting slot A (confirmed)", "INFO  boot: slot A, image 0.1.0", config]
    };
    need(expect_code(run, 0)?, want)?;
    Ok(())
}

/// Whether `hay` holds `needle` anywhere.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Encrypted namespaces configured in flash (`adapter-secure` flashed as
/// `cargo xtask flash` does): the flash image holds no copy of any
/// namespace key or key half, only blobs wrapped with the card's device
/// key in its OTP. The card unwraps them into the engines and runs
/// verified host I/O; the targets' media hold AES-XTS ciphertext of the
/// host's data under the scenario's keys (the simulator decrypts every
/// written block with its own AES-XTS and the key the test knows), so
/// the keys the engines used are the ones wrapped. The same flash with a
/// re-provisioned OTP (another device key) refuses each encrypted
/// namespace by name in the boot log and serves no data: no block reaches
/// a target, no sector reads back wrong.
pub fn flash_keys(cx: &Ctx) -> R {
    let k = kit(cx)?;
    let device_key = DeviceKey::generate().map_err(io)?;
    let configs: Vec<dpu_config::Config> = config_of("adapter-secure", &device_key).map_err(io)?.into_iter().collect();
    if configs.first().is_none_or(|c| c.ns_keys.len() != 3) {
        return Err(io("adapter-secure: the flash configuration does not hold its 3 wrapped keys".into()));
    }
    let out = cx.tmp.join("flash-keys.bin");
    let otp = crate::flash::otp_for(&k.key, 0, &device_key).map_err(io)?;
    write_card(&out, &Card { bootloader: Some(&k.bootloader), slot_a: Some(&k.fw), configs: &configs, ..Default::default() }, &otp).map_err(io)?;
    let path = crate::build::root().join("targets/scenarios/adapter-secure.toml");
    let scenario = dpu_targets::Scenario::load(&path).map_err(|e| io(e.to_string()))?;
    let keys: Vec<[u8; 64]> = scenario.namespace_cfgs().iter().filter_map(|n| n.encryption.as_ref().map(|k| k.0)).collect();
    if keys.len() != 3 {
        return Err(io(format!("adapter-secure: {} encrypted namespaces, expected 3", keys.len())));
    }
    // No key in the clear on the card outside the OTP.
    let clear_key = |when: &str| -> Result<(), (String, Option<Run>)> {
        let image = std::fs::read(&out).map_err(|e| io(format!("{}: {e}", out.display())))?;
        for (i, key) in keys.iter().enumerate() {
            for (what, part) in [("key", &key[..]), ("Key1", &key[..32]), ("Key2", &key[32..])] {
                if contains(&image, part) {
                    return Err(io(format!("the flash image {when} holds namespace key {i}'s {what} in the clear")));
                }
            }
        }
        Ok(())
    };
    clear_key("as flashed")?;
    // The other card: the same flash, another device key in its OTP.
    let other = cx.tmp.join("flash-keys-other.bin");
    std::fs::copy(&out, &other).map_err(|e| io(e.to_string()))?;
    let other_otp = crate::flash::otp_for(&k.key, 0, &DeviceKey::generate().map_err(io)?).map_err(io)?;
    std::fs::write(other.with_extension("otp"), dpu_imgtool::flash::otp_bytes(&other_otp)).map_err(|e| io(e.to_string()))?;
    let sc = path.to_string_lossy().to_string();
    let run = cx.boot("flash-keys", &out, &[], &["--scenario", &sc])?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "INFO  config: from flash copy 0 (sequence 1; other copy blank): 3 namespace(s), 2 port(s), 2 remote controller(s), 0 target subsystem(s)",
            "INFO  crypto: 3 namespace key(s) unwrapped with the device key into 10 engines",
            "verify errors: 0, I/O errors: 0",
            "outcome: scenario passed",
        ],
    )?;
    no_warnings(&run)?;
    // Nor after the card ran (the simulator wrote its flash back).
    clear_key("after a run")?;
    // No key in the log or the stats.
    let stats_text = run.stats.as_ref().map(|s| s.to_string()).unwrap_or_default();
    for key in &keys {
        let head: String = key[..8].iter().map(|b| format!("{b:02x}")).collect();
        if run.stdout.contains(&head) || run.stderr.contains(&head) || stats_text.contains(&head) {
            return fail(format!("key material {head}.. appears in the output"), run);
        }
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    let n = |a: &serde_json::Value, k: &str| a[k].as_u64().unwrap_or(u64::MAX);
    if at_rest.len() != 2 || at_rest.iter().any(|a| n(a, "written") < 50 || n(a, "ciphertext_ok") != n(a, "written") || n(a, "plaintext") != 0 || n(a, "bad") != 0) {
        return fail(format!("media of the encrypted remote namespaces: {at_rest:?}"), run);
    }
    let run = cx.boot("flash-keys-other", &other, &[], &["--scenario", &sc])?;
    let run = need(
        run,
        &[
            "ERROR crypto: fn1 nsid 1: its wrapped key does not unwrap with this card's device key (wrapped for another card, or altered) (status 7): the namespace is not served",
            "ERROR crypto: fn2 nsid 1: its wrapped key does not unwrap with this card's device key",
            "ERROR crypto: fn1 nsid 2: its wrapped key does not unwrap with this card's device key",
            "ERROR crypto: 3 of 3 namespace key(s) refused",
            "verify errors: 0, I/O errors: ",
        ],
    )?;
    if run.code == 0 || run.count("crypto: 3 namespace key(s) unwrapped") != 0 {
        return fail("a card with another device key served the encrypted namespaces", run);
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    if at_rest.len() != 2 || at_rest.iter().any(|a| n(a, "written") != 0) {
        return fail(format!("a card that could not unwrap its keys wrote to the targets: {at_rest:?}"), run);
    }
    remove_cards(cx, &["flash-keys", "flash-keys-other"]);
    Ok(())
}
