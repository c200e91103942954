//! The management API under the simulator: `management-rpc.toml` has an
//! operator node call every read-only method and send malformed,
//! oversized, slow, unauthorized and disallowed requests while verified
//! I/O runs; dpusim checks each answer against the scenario's
//! expectations. A variant with one wrong expectation must fail, naming
//! the call (the checks can fail).

use super::{expect_code, fail, io, need, Ctx, Run};
use crate::build::root;

/// `[[rpc]]` entries in the scenario (each must report `ok`).
fn rpc_count(text: &str) -> usize {
    text.lines().filter(|l| l.trim() == "[[rpc]]").count()
}

pub fn management_rpc(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/management-rpc.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("management-rpc", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &["scenario passed", "verify errors: 0, I/O errors: 0", "mgmt: JSON-RPC on 10.0.0.1:5260", "mgmt: refused 10.0.0.77: not on the allow-list"],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if want < 20 || ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    for needle in ["error -32700", "error -32600", "error -32601", "error -32602", "error -32001", "error -19", "refused (connection reset, no answer)"] {
        if !run.stderr.contains(needle) {
            return fail(format!("no call reported `{needle}`"), run);
        }
    }
    // One wrong expectation: the run fails and says which call.
    let bad = text.replacen("expect_error = -32601", "expect_error = -32602", 1);
    if bad == text {
        return fail("the scenario has no `expect_error = -32601` to alter".to_string(), run);
    }
    let bad_path = cx.tmp.join("management-rpc-wrong-expectation.toml");
    std::fs::write(&bad_path, bad).map_err(|e| (format!("{}: {e}", bad_path.display()), None))?;
    // Scenario-relative paths (none today) stay valid from the temp dir.
    let run = cx.run_image("management-rpc-wrong", &fw, &["--scenario", &bad_path.to_string_lossy(), "-q"]).map_err(io)?;
    need(expect_code(run, 1)?, &["management calls failed", "unknown method: expected error -32602"])?;
    Ok(())
}

/// `management-iostat.toml`: `bdev_get_iostat` and
/// `dpu_get_function_iostat` after two fixed-size verified jobs expect
/// exact read and write counts (bytes = ops x 4096). Those numbers must
/// be the ones the host model's report gives for each job, so the card's
/// count is checked against the host's. A variant expecting one more
/// write must fail (the expectations are checked).
pub fn management_iostat(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/management-iostat.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("management-iostat", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(expect_code(run, 0)?, &["scenario passed", "verify errors: 0, I/O errors: 0"])?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    // The host's own count of each job's I/Os is the scenario's.
    for (job, bdev) in [("pf.fn0:", "fn0n1"), ("vf1.fn1:", "fn1n1")] {
        let Some(report) = run.stdout.split(job).nth(1) else { return fail(format!("no result for job `{job}`"), run) };
        let ios = |dir: &str| report.lines().take(3).find(|l| l.trim_start().starts_with(dir)).and_then(|l| l.split("ios=").nth(1)).and_then(|v| v.split(',').next()).and_then(|v| v.trim().parse::<u64>().ok());
        let (Some(r), Some(w)) = (ios("read"), ios("write")) else { return fail(format!("job `{job}` reports no read and write counts"), run) };
        let Some(line) = text.lines().find(|l| l.contains(&format!("name = \"{bdev}\"")) && l.contains("num_read_ops")) else { return fail(format!("the scenario expects nothing of `{bdev}`"), run) };
        let expected = format!("num_read_ops = {r}, bytes_read = {}, num_write_ops = {w}, bytes_written = {}", r * 4096, w * 4096);
        if !line.contains(&expected) {
            return fail(format!("the host's job `{job}` did {r} reads and {w} writes; the scenario's expectation for `{bdev}` is not `{expected}`: {line}"), run);
        }
    }
    // One write too many expected: the run fails, naming the call.
    let bad = text.replacen("num_write_ops = 45, bytes_written = 184320, num_unmap_ops", "num_write_ops = 46, bytes_written = 184320, num_unmap_ops", 1);
    if bad == text {
        return fail("the scenario has no `num_write_ops = 45` to alter".to_string(), run);
    }
    let bad_path = cx.tmp.join("management-iostat-wrong-count.toml");
    std::fs::write(&bad_path, bad).map_err(|e| (format!("{}: {e}", bad_path.display()), None))?;
    let run = cx.run_image("management-iostat-wrong", &fw, &["--scenario", &bad_path.to_string_lossy(), "-q"]).map_err(io)?;
    need(expect_code(run, 1)?, &["management calls failed", "iostat after the jobs: exact counts"])?;
    Ok(())
}

/// `management-sriov.toml`: the VF count refused while the host has
/// SR-IOV enabled, above the endpoint's maximum and below a VF with a
/// namespace; with SR-IOV disabled it is set to 3 and the host, enabling
/// SR-IOV again, reads TotalVFs 3 and enumerates 3 VFs. A variant whose
/// host asks for 4 must fail as Linux refuses it (the host really reads
/// the value the card set).
pub fn management_sriov(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/management-sriov.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("management-sriov", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &["scenario passed", "verify errors: 0, I/O errors: 0", "pci: enabled 2 VFs", "pci: VFs disabled", "mgmt: SR-IOV TotalVFs 64 -> 3 (of 64)", "pci: enabled 3 VFs", "sriov: 3 VFs enumerated again"],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    let more = text.replacen("enable_at = \"3ms\", vfs = 3 }", "enable_at = \"3ms\", vfs = 4 }", 1);
    if more == text {
        return fail("the scenario has no `vfs = 3` in its sriov_cycle to alter".to_string(), run);
    }
    let more_path = cx.tmp.join("management-sriov-more.toml");
    std::fs::write(&more_path, more).map_err(|e| (format!("{}: {e}", more_path.display()), None))?;
    let run = cx.run_image("management-sriov-more", &fw, &["--scenario", &more_path.to_string_lossy(), "-q"]).map_err(io)?;
    need(expect_code(run, 1)?, &["SR-IOV: 4 VFs requested, the PF supports 3"])?;
    Ok(())
}

/// `management-live.toml`: a RAM block device created and mapped to VF 1
/// through the API while the PF runs verified I/O; the host hears of it
/// by a Namespace Attribute Changed event; a job then verifies I/O on the
/// new namespace; refusals name their field; detach drains
/// and the device is deleted. A variant whose VF 1 job starts before the
/// attach must fail (the namespace is really attached at run time).
pub fn management_live(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/management-live.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("management-live", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "mgmt: RAM block device Malloc0: 16384 blocks of 512 B",
            "nvme fn1: namespace 1 attached (RAM, 16384 blocks of 512 B)",
            "nvme fn1: namespace 1 drained",
            "mgmt: RAM block device Malloc0 deleted",
            // The host heard of both changes (Namespace Attribute Changed).
            "nvme fn1: namespace attribute changed ([1]); rescanned: 1 namespace(s)",
            "nvme fn1: namespace attribute changed ([1]); rescanned: 0 namespace(s)",
        ],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    for job in ["boot-ns.fn0", "live-ns.fn1"] {
        if !run.stdout.contains(job) && !run.stderr.contains(job) {
            return fail(format!("no result for job `{job}`"), run);
        }
    }
    // The VF 1 job started before the attach finds no namespace.
    let early = text.replacen("startdelay = \"2ms\"", "startdelay = \"100us\"", 1);
    if early == text {
        return fail("the scenario has no `startdelay = \"2ms\"` to alter".to_string(), run);
    }
    let early_path = cx.tmp.join("management-live-early.toml");
    std::fs::write(&early_path, early).map_err(|e| (format!("{}: {e}", early_path.display()), None))?;
    let run = cx.run_image("management-live-early", &fw, &["--scenario", &early_path.to_string_lossy(), "-q"]).map_err(io)?;
    need(expect_code(run, 1)?, &["function 1 has no namespace 1"])?;
    Ok(())
}

/// `adapter-attach-live.toml`: a card with no remote controller gets one
/// through `bdev_nvme_attach_controller` while the PF runs verified I/O;
/// the answer lists the block devices of the target's namespaces, one is
/// mapped to VF 1 and carries verified I/O over NVMe/TCP; detach is
/// refused while mapped and works after `dpu_ns_detach` (every core
/// closes its queue), the controller attaches again; attaches to a port
/// with no listener, to a subsystem the target does not have and to an
/// address nothing answers fail with the reason and leave nothing.
pub fn adapter_attach_live(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/adapter-attach-live.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("adapter-attach-live", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "nvmf: service up: 1 port(s), 0 remote controller(s)",
            "nvmf: ctrl 0: attaching 10.0.0.10:4420 (run time)",
            "mgmt: controller Nvme0 attached: 2 namespace(s)",
            "nvme fn1: namespace 1 attached (remote controller 0 nsid 1, 16384 blocks of 512 B)",
            "nvme fn1: namespace 1 drained",
            "mgmt: controller Nvme0 detached",
            "ctrl 0: I/O queue closed (detached)",
            "nvmf: ctrl 1: attach failed: the target refused Connect",
            "attach failed: connection refused",
            "attach failed: no answer to ARP from the address",
        ],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    // VF 1's job ran over NVMe/TCP and did I/O.
    let Some(job) = run.stdout.split("remote-ns.fn1:").nth(1) else { return fail("no result for job `remote-ns.fn1`".to_string(), run) };
    if !job.lines().take(4).any(|l| l.contains("verify:") && l.contains(" 0 errors")) {
        return fail("job `remote-ns.fn1` has no clean verify line".to_string(), run);
    }
    Ok(())
}

/// `adapter-ec-live.toml`: an EC 2+1 volume made at run time
/// (`bdev_ec_create`) over three controllers attached at run time, with
/// its refusals; mapped to VF 1, where a verified randrw job runs on it
/// while the PF's job runs; the volume starts as a new one (fresh
/// identity, superblocks written to all three members); delete refused
/// while mapped, then done, and a former member's controller detaches.
/// Every member target must have served the volume's writes. A second
/// volume gets a crypto device on it, mapped with a verified job.
pub fn adapter_ec_live(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/adapter-ec-live.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let otp = device_key_otp(cx, "adapter-ec-live")?;
    let otp_s = otp.to_string_lossy().to_string();
    let run = cx.run_image("adapter-ec-live", &fw, &["--scenario", &sc, "--otp", &otp_s]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "mgmt: EC volume ec0: 2+1 (0 spare(s)) as volume 0, 4080 blocks of 512 B (255 stripes)",
            "ec: volume 0: made at run time (2+1, 255 stripes)",
            "ec: volume 0: new volume (made at run time)",
            "ec: volume 0: started at events 1; members lost 0b0",
            "nvme fn1: namespace 1 attached (erasure-coded volume 0, 4080 blocks of 512 B)",
            "nvme fn1: namespace 1 drained",
            "mgmt: EC volume ec0 (volume 0) deleted",
            "ec: volume 0: deleted (generation 1)",
            "mgmt: controller Tb detached",
            // The deleted volume's index, dropped by its repair core, is
            // reused (a new generation, a new identity).
            "mgmt: EC volume ec1: 1+1 (0 spare(s)) as volume 0, 2040 blocks of 512 B (255 stripes)",
            "ec: volume 0: made at run time (1+1, 255 stripes)",
            "mgmt: crypto device cec1 on ec1, key k0 in key slot 0",
            "nvme fn1: namespace 1 attached (erasure-coded volume 0, 2040 blocks of 512 B)",
        ],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    let Some(job) = run.stdout.split("ec-live.fn1:").nth(1) else { return fail("no result for job `ec-live.fn1`".to_string(), run) };
    if !job.lines().take(4).any(|l| l.contains("verify:") && l.contains(" 0 errors")) {
        return fail("job `ec-live.fn1` has no clean verify line".to_string(), run);
    }
    let ios: u64 = job.lines().take(3).filter_map(|l| l.split("ios=").nth(1)).filter_map(|r| r.split(',').next()?.trim().parse::<u64>().ok()).sum();
    if ios < 60 {
        return fail(format!("job `ec-live.fn1` did {ios} I/Os on the volume"), run);
    }
    // The crypto device on the second volume: its own clean job.
    let Some(job) = run.stdout.split("ec-crypto.fn1:").nth(1) else { return fail("no result for job `ec-crypto.fn1`".to_string(), run) };
    let checked = job.lines().take(4).find(|l| l.contains("verify:") && l.contains(" 0 errors")).and_then(|l| l.split("verify:").nth(1)?.split_whitespace().next()?.parse::<u64>().ok());
    if checked.is_none_or(|n| n < 64) {
        return fail(format!("job `ec-crypto.fn1` must read back its writes clean: {checked:?} sectors checked"), run);
    }
    // The volume's fragments went to all three members (its data and
    // parity rotate over them): each target served writes.
    let targets = run.stat("targets").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    for t in ["t0", "t1", "t2"] {
        let writes = targets.iter().find(|x| x["name"] == t).and_then(|x| x["writes"].as_u64()).unwrap_or(0);
        if writes < 20 {
            return fail(format!("target {t} (a member of ec0) served {writes} writes"), run);
        }
    }
    Ok(())
}

/// `live-settings.toml`: every scripted call answered as expected (the
/// refusals name their field or user), and what only the card and the
/// target model see: eth1's new address was taken (the target model saw
/// the controller's connections come from 10.0.1.77 and only from
/// there), the digests set as defaults were negotiated (the target
/// model's ICReq count), the data plane took the new I/O timeout and
/// RTO, and VF 1's job over the moved port verified clean.
pub fn live_settings(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/live-settings.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("live-settings", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "mgmt: port 1 is now 10.0.1.77/24 mtu 1500",
            "taken: I/O timeout 40000 us, TCP min RTO 7 ms",
            "mgmt: controller Nvme0 attached: 1 namespace(s)",
            "mgmt: refused 10.0.0.77: not on the allow-list",
            "mgmt: port 1 is now 10.0.1.1/24 mtu 1500",
        ],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let Some(t0) = doc["targets"].as_array().and_then(|v| v.iter().find(|t| t["name"] == "t0")).cloned() else { return fail("no stats for target t0", run) };
    if t0["peers"] != serde_json::json!(["10.0.1.77"]) {
        return fail(format!("target t0 saw connections from {}, want only 10.0.1.77 (eth1's new address)", t0["peers"]), run);
    }
    let conns = t0["connections"].as_u64().unwrap_or(0);
    if conns < 2 || t0["hdgst_connections"].as_u64() != Some(conns) || t0["ddgst_connections"].as_u64() != Some(conns) {
        return fail(format!("every connection to t0 must negotiate both digests: {t0}"), run);
    }
    let Some(job) = run.stdout.split("remote-ns.fn1:").nth(1) else { return fail("no result for job `remote-ns.fn1`".to_string(), run) };
    if !job.lines().take(4).any(|l| l.contains("verify:") && l.contains(" 0 errors")) {
        return fail("job `remote-ns.fn1` has no clean verify line".to_string(), run);
    }
    Ok(())
}

/// The key halves of `adapter-crypto-live.toml` (a test key).
pub const CRYPTO_LIVE_KEY: &str = "8f2a6c1e9b3d4f5a0c7e2b8d6f1a3c5e7b9d0f2a4c6e8b1d3f5a7c9e0b2d4f6a";
pub const CRYPTO_LIVE_KEY2: &str = "13579bdf02468ace13579bdf02468ace0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Fuses with the test device key (`dpu_imgtool::devkey`), written as
/// `<tag>.otp`: the engines wrap and unwrap keys with it.
pub fn device_key_otp(cx: &Ctx, tag: &str) -> Result<std::path::PathBuf, (String, Option<Run>)> {
    let key = crate::flash::signing_key(None).map_err(io)?;
    let dk = dpu_imgtool::devkey::DeviceKey::from_bytes(*b"dpusim systest device key, 32 B.");
    let words = crate::flash::otp_for(&key, 0, &dk).map_err(io)?;
    let path = cx.tmp.join(format!("{tag}.otp"));
    std::fs::write(&path, dpu_imgtool::flash::otp_bytes(&words)).map_err(|e| io(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// `adapter-crypto-live.toml`: key `k0` made through
/// `accel_crypto_key_create` (wrapped by the engines with the device
/// key), crypto device `crypt0` on a run-time remote namespace mapped to
/// VF 1 under verified I/O on the PF; the target's media hold AES-XTS
/// ciphertext of the host's data under the key the test knows (checked
/// by the simulator's own AES-XTS), none in plaintext; the key appears in
/// no answer, log line or stat. Without a device key in the fuses the
/// key is refused (-19) and the run fails; mapping the base instead of
/// the crypto device leaves plaintext on the media, which the check sees.
pub fn adapter_crypto_live(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/adapter-crypto-live.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let otp = device_key_otp(cx, "adapter-crypto-live")?;
    let otp_s = otp.to_string_lossy().to_string();
    // Where the key is left in card memory at the end: each half as the
    // hex text the requests carried and as bytes.
    let hex_text = |h: &str| h.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let needles = [hex_text(CRYPTO_LIVE_KEY), hex_text(CRYPTO_LIVE_KEY2), CRYPTO_LIVE_KEY.to_string(), CRYPTO_LIVE_KEY2.to_string()];
    let mut args: Vec<&str> = vec!["--scenario", &sc, "--otp", &otp_s];
    for n in &needles {
        args.extend(["--find-bytes", n.as_str()]);
    }
    let run = cx.run_image("adapter-crypto-live", &fw, &args).map_err(io)?;
    // The management server leaves no copy of a request's key: not its
    // own buffer, not the socket's receive ring, not the NIC's receive
    // buffers (the key is in the engines' slots, and in flash wrapped).
    if let Some(l) = run.stderr.lines().find(|l| l.contains("dpusim: find-bytes") && !l.contains(": 0 place(s)")) {
        return fail(format!("key material left in card memory after the run: {l}"), run);
    }
    if run.stderr.lines().filter(|l| l.contains("dpusim: find-bytes")).count() != needles.len() {
        return fail("dpusim did not report the key audit (--find-bytes)", run);
    }
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0, I/O errors: 0",
            "mgmt: crypto key k0 (AES_XTS) created, kept wrapped with the device key",
            "mgmt: controller Nvme0 attached: 1 namespace(s)",
            "mgmt: crypto device crypt0 on Nvme0n1, key k0 in key slot 0",
            "mgmt: crypto device cryptram on ram0, key k0 in key slot 1",
            "nvme fn0: namespace 2 attached (RAM, 16384 blocks of 512 B)",
            "nvme fn1: namespace 1 attached (remote controller 0 nsid 1, 16384 blocks of 512 B)",
            "nvme fn1: namespace 1 drained",
            "mgmt: crypto device crypt0 deleted (key slot 0 cleared)",
            "mgmt: crypto key k0 destroyed",
        ],
    )?;
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    for name in ["crypt-ns.fn1", "crypt-ram.fn0"] {
        let Some(job) = run.stdout.split(&format!("{name}:")).nth(1) else { return fail(format!("no result for job `{name}`"), run) };
        if !job.lines().take(4).any(|l| l.contains("verify:") && l.contains(" 0 errors")) {
            return fail(format!("job `{name}` has no clean verify line"), run);
        }
    }
    // The key: in no answer, log line or stat (the scenario's own text
    // carries it, and dpusim echoes no request).
    let stats_text = run.stats.as_ref().map(|s| s.to_string()).unwrap_or_default();
    for half in [CRYPTO_LIVE_KEY, CRYPTO_LIVE_KEY2] {
        let head = &half[..16];
        if run.stdout.contains(head) || run.stderr.contains(head) || stats_text.contains(head) {
            return fail(format!("key material {head}.. appears in the output"), run);
        }
    }
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    let n = |a: &serde_json::Value, k: &str| a[k].as_u64().unwrap_or(u64::MAX);
    if at_rest.len() != 1 || at_rest.iter().any(|a| n(a, "written") < 50 || n(a, "ciphertext_ok") != n(a, "written") || n(a, "plaintext") != 0 || n(a, "bad") != 0) {
        return fail(format!("media of the crypto device's base: {at_rest:?}"), run);
    }
    // No device key in the fuses: the engines cannot wrap, the key is refused.
    let run = cx.run_image("adapter-crypto-live-no-otp", &fw, &["--scenario", &sc, "-q"]).map_err(io)?;
    need(expect_code(run, 1)?, &["no device key in its OTP fuses"])?;
    // The base mapped in the clear instead: the media check sees plaintext.
    // (No crypto device made, so the base is free to map.)
    let plain = text
        .replacen("params = { function = 1, nsid = 1, bdev = \"crypt0\" }", "params = { function = 1, nsid = 1, bdev = \"Nvme0n1\" }", 1)
        .replace("base_bdev_name = \"Nvme0n1\"", "base_bdev_name = \"Nvme9n1\"");
    let plain_is_text = plain.matches("bdev = \"Nvme0n1\" }").count() != 2 || !plain.contains("base_bdev_name = \"Nvme9n1\", name = \"crypt0\"");
    if plain_is_text {
        return Err(("the scenario has no attach of `crypt0` or creation of it to alter".to_string(), None));
    }
    let plain_path = cx.tmp.join("adapter-crypto-live-plain.toml");
    std::fs::write(&plain_path, plain).map_err(|e| (format!("{}: {e}", plain_path.display()), None))?;
    let run = cx.run_image("adapter-crypto-live-plain", &fw, &["--scenario", &plain_path.to_string_lossy(), "--otp", &otp_s, "-q"]).map_err(io)?;
    let Some(doc) = run.stats.clone() else { return fail("no readable stats JSON (plain variant)", run) };
    let at_rest = doc["at_rest"].as_array().cloned().unwrap_or_default();
    if plain_is_text || at_rest.first().is_none_or(|a| n(a, "written") < 50 || n(a, "plaintext") != n(a, "written")) {
        return fail(format!("the base mapped in the clear left no plaintext the media check saw: {at_rest:?}"), run);
    }
    let _ = std::fs::remove_file(&otp);
    Ok(())
}

/// `target-live.toml`: a card that boots with no NVMe/TCP subsystem gets
/// one through SPDK's `nvmf_*` methods (a RAM block device as namespace
/// 1, a listener on eth0:4420, an allowed host); refusals are checked;
/// the initiator model finds it in the discovery log, connects and
/// verifies randrw, and keeps its connections when taken off the
/// allow-list; a namespace removed under I/O fails what follows with
/// Invalid Namespace; deleting the subsystem closes the connections and
/// frees the device.
/// A variant whose host was never allowed is refused at
/// Connect (the subsystem's allow-list is really checked; before this
/// change the card answered no `nvmf_*` method and the run failed).
pub fn target_live(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let path = root().join("targets/scenarios/target-live.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("{}: {e}", path.display()), None))?;
    let sc = path.to_string_lossy().to_string();
    let fw = cx.built.firmware.clone();
    let run = cx.run_image("target-live", &fw, &["--scenario", &sc]).map_err(io)?;
    let run = need(
        expect_code(run, 0)?,
        &[
            "scenario passed",
            "verify errors: 0",
            "nvmf target: subsystems can be added at run time",
            "mgmt: nvmf subsystem nqn.2026-12.io.dpusim:live0 created",
            "mgmt: nvmf subsystem nqn.2026-12.io.dpusim:live0: namespace 1 is Malloc0 (8192 blocks of 512 B)",
            "mgmt: nvmf subsystem nqn.2026-12.io.dpusim:live0 listens on port 0 TCP 4420",
            "host nqn.2026-12.io.dpusim:h0 removed",
            // The namespace removals reached h0 as Namespace Attribute
            // Changed notices (its held AER), and it rescanned.
            "initiator h0: asynchronous event: type 0x2, information 0x0, log page 0x4",
            "initiator h0: changed namespaces: [2]",
            "initiator h0: namespace 2 is gone (inactive)",
            // The deleted subsystem's controllers are torn down on every
            // core that held one of h0's queues; no I/O was outstanding
            // (the admin queue's held AER was).
            "nvmf target: closing a connection on TCP 4420 (qid 0): its subsystem or listener was removed",
            "initiator h0: queue 1: connection closed by the controller; 0 command(s) failed",
            "initiator h0: queue 2: connection closed by the controller; 0 command(s) failed",
            "mgmt: RAM block device Malloc0 deleted",
        ],
    )?;
    // The discovery log's generation counts the run-time changes made
    // before h0 read it (NVMe Base 2.0 §5.16.1.23: a host re-reads a log
    // whose GENCTR moved); a boot-only card's log stays at 1.
    let genctr = run
        .stderr
        .lines()
        .find_map(|l| l.split("initiator h0: discovery log: 1 entries (GENCTR ").nth(1))
        .and_then(|r| r.split(')').next())
        .and_then(|g| g.parse::<u64>().ok());
    if genctr.is_none_or(|g| g < 2) {
        return fail(format!("discovery log GENCTR {genctr:?}: the run-time subsystem's changes must move it past 1"), run);
    }
    let want = rpc_count(&text);
    let ok = run.stderr.lines().filter(|l| l.contains("dpusim: ") && l.contains(": ok: ")).count();
    if ok != want {
        return fail(format!("{ok} management calls answered as expected, of {want} scripted"), run);
    }
    for needle in ["error -17", "error -19", "error -16", "error -32602"] {
        if !run.stderr.contains(needle) {
            return fail(format!("no call reported `{needle}`"), run);
        }
    }
    // Namespace 1's job is clean; namespace 2's I/Os after its removal
    // fail with Invalid Namespace or Format (SCT 0h, SC 0Bh), and only so.
    for (header, removed) in [("live0.h0: ", false), ("gone.h0: ", true)] {
        let Some((verify, ios, firsts)) = super::job_errors(&run, header) else { return fail(format!("no job result `{header}`"), run) };
        let invalid_ns = !firsts.is_empty() && firsts.iter().all(|l| l.contains("status SCT 0x0 SC 0x0b"));
        if verify != 0 || (!removed && ios != 0) || (removed && (ios == 0 || !invalid_ns)) {
            return fail(format!("job `{header}`: {verify} verify errors, {ios} I/O errors, first: {firsts:?}"), run);
        }
    }
    // h0 found the live subsystem in the discovery log, then an admin and
    // two I/O queue connections carried verified reads and writes; its
    // only errors are namespace 2's.
    let inits = run.stat("initiators").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
    let n = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let good = inits.len() == 1
        && n(&inits[0], "discovery_entries") == 1
        && n(&inits[0], "reads") > 50
        && n(&inits[0], "writes") > 50
        && n(&inits[0], "io_errors") == inits[0]["errors_by_status"]["0x0/0x0b"].as_u64().unwrap_or(u64::MAX)
        // nvmf_subsystem_remove_ns of namespace 2 (and of 1 at the end)
        // raised Namespace Attribute Changed notices on h0's held AER; h0
        // read the Changed Namespace List and identified the namespaces.
        && n(&inits[0], "namespace_notices") >= 1
        && n(&inits[0], "namespace_rescans") >= 1;
    if !good {
        return fail(format!("initiator stats: {inits:?}"), run);
    }
    // A host that is not on the allow-list: its Connect is refused.
    // (Without discovery: the log already hides the subsystem from it.)
    let stranger = text.replacen("hostnqn = \"nqn.2026-12.io.dpusim:h0\"", "hostnqn = \"nqn.2026-12.io.dpusim:stranger\"", 1).replacen("discover = true", "discover = false", 1)
        .replacen("io_errors = 100000", "io_errors = 0", 1);
    if stranger == text {
        return fail("the scenario has no `hostnqn = \"nqn.2026-12.io.dpusim:h0\"` to alter".to_string(), run);
    }
    let stranger_path = cx.tmp.join("target-live-stranger.toml");
    std::fs::write(&stranger_path, stranger).map_err(|e| (format!("{}: {e}", stranger_path.display()), None))?;
    let run = cx.run_image("target-live-stranger", &fw, &["--scenario", &stranger_path.to_string_lossy(), "-q"]).map_err(io)?;
    // Connect Invalid Host (NVMe-oF 1.1 §3.3: SCT 1h, SC 84h).
    need(expect_code(run, 1)?, &["admin queue: Connect refused: status SCT 0x1 SC 0x84"])?;
    Ok(())
}

/// Wall-clock bound for the `--hostfwd` test: boot, then the calls.
const HOSTFWD_WALL: std::time::Duration = std::time::Duration::from_secs(240);

/// `dpusim --hostfwd` with `dpuctl`'s client: wall-clock driven (the
/// only system test that is), so it retries while the card boots and is
/// bounded in wall time; the simulator is killed afterwards whatever
/// happened.
pub fn hostfwd_dpuctl(cx: &Ctx) -> Result<(), (String, Option<Run>)> {
    let sc = root().join("targets/scenarios/management-rpc.toml").to_string_lossy().to_string();
    let fw = cx.built.firmware.to_string_lossy().to_string();
    let sim = Forwarded::start(cx, &["--elf", &fw, "-q", "--scenario", &sc, "--hostfwd", "tcp:127.0.0.1:0", "--max-time", "60s"])?;
    let result = (|| -> Result<(), String> {
        let addr = sim.addr;
        let mut c = dpuctl::Client::new(addr);
        c.token = Some("mgmt-test-token".into());
        c.timeout = std::time::Duration::from_secs(60);
        // Until the card has booted its management server, connections are reset.
        let bdevs = loop {
            match c.call("bdev_get_bdevs", None) {
                Ok(v) => break v,
                Err(dpuctl::Error::Closed { .. } | dpuctl::Error::Timeout { .. }) if sim.in_time() => std::thread::sleep(std::time::Duration::from_millis(500)),
                Err(e) => return Err(format!("bdev_get_bdevs: {e}")),
            }
        };
        let names: Vec<&str> = bdevs.as_array().into_iter().flatten().filter_map(|b| b["name"].as_str()).collect();
        if names != ["fn1n1", "fn2n1"] {
            return Err(format!("bdev_get_bdevs through --hostfwd: {bdevs}"));
        }
        match c.call("bdev_frobnicate", None) {
            Err(dpuctl::Error::Rpc { code: -32601, .. }) => {}
            other => return Err(format!("unknown method: {other:?}")),
        }
        c.token = Some("wrong".into());
        match c.call("rpc_get_methods", None) {
            Err(dpuctl::Error::Rpc { code: -32001, .. }) => {}
            other => return Err(format!("wrong token: {other:?}")),
        }
        Ok(())
    })();
    sim.end(result)
}

/// A `dpusim --hostfwd` child: its forwarded address, its stderr lines
/// (read on a thread), killed when done whatever happened.
pub struct Forwarded {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    pub addr: std::net::SocketAddr,
    pub started: std::time::Instant,
}

impl Forwarded {
    /// Runs dpusim with `args` (which include `--hostfwd tcp:127.0.0.1:0`)
    /// and waits for the port it listens on.
    pub fn start(cx: &Ctx, args: &[&str]) -> Result<Forwarded, (String, Option<Run>)> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(&cx.built.dpusim)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| (format!("cannot run dpusim: {e}"), None))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err(("dpusim's stderr was not captured".into(), None));
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = std::time::Instant::now();
        let mut log = Vec::new();
        loop {
            let left = HOSTFWD_WALL.checked_sub(started.elapsed());
            let line = left.and_then(|l| rx.recv_timeout(l).ok());
            let Some(line) = line else {
                let _ = child.kill();
                let _ = child.wait();
                return Err((format!("dpusim ended or printed no hostfwd line in time\ndpusim stderr:\n{}", log.join("\n")), None));
            };
            if let Some(addr) = line.strip_prefix("dpusim: hostfwd: listening on tcp:").and_then(|r| r.split_whitespace().next()).and_then(|a| a.parse().ok()) {
                return Ok(Forwarded { child, rx, addr, started });
            }
            log.push(line);
        }
    }

    /// Whether wall time is left for retries.
    pub fn in_time(&self) -> bool {
        self.started.elapsed() < HOSTFWD_WALL
    }

    /// Ends the run with Ctrl-C (the simulator writes the flash back and
    /// its summary) and returns its stderr.
    pub fn interrupt(mut self) -> Result<Vec<String>, String> {
        let st = std::process::Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().map_err(|e| e.to_string())?;
        if !st.success() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        Ok(self.rx.try_iter().collect())
    }

    /// Kills the run; `result`'s error gets the run's stderr.
    pub fn end(mut self, result: Result<(), String>) -> Result<(), (String, Option<Run>)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log: Vec<String> = self.rx.try_iter().collect();
        result.map_err(|e| (format!("{e}\ndpusim stderr:\n{}", log.join("\n")), None))
    }
}
