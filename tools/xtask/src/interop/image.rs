//! The guest image for the Linux NVMe/TCP target: installs the Debian
//! packages the host needs, unpacks the Debian kernel (without installing it)
//! and packs a busybox initramfs with the modules nvmet-tcp needs and
//! `init.sh`. Everything is cached under `target/interop/`: the kernel per
//! version, the initramfs by the hash of its content.

use super::progress;
use crate::build::{root, show};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Host programs, each with the Debian package that provides it.
const HOST_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", QEMU),
    ("busybox-static", BUSYBOX),
    ("kmod", DEPMOD),
    ("cpio", "/bin/cpio"),
    ("nvme-cli", NVME_CLI),
];
pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const BUSYBOX: &str = "/bin/busybox";
const DEPMOD: &str = "/sbin/depmod";
/// nvme-cli: the initiator guest's `nvme discover` (packed with the shared
/// libraries it links, as `ldd` lists them).
const NVME_CLI: &str = "/usr/sbin/nvme";

/// The metapackage whose dependency names the current Debian kernel.
const KERNEL_META: &str = "linux-image-amd64";

/// Checksum providers, loaded before anything else (see `init.sh`).
const EARLY_MODULES: &[&str] = &["crc32c_generic", "crct10dif_generic", "crc64_rocksoft_generic"];
/// NIC drivers: virtio-net is what QEMU gets; e1000 is the fallback.
const NIC_MODULES: &[&str] = &["virtio_pci", "virtio_net", "e1000"];
/// The target; brd (the RAM disk) is loaded separately with its size.
const TARGET_MODULES: &[&str] = &["configfs", "nvmet", "nvmet_tcp"];
/// The guest-side host for the self-test.
const HOST_MODULES: &[&str] = &["nvme_core", "nvme_fabrics", "nvme_tcp"];
/// Loaded by name with parameters in `init.sh`, so it must be a module.
const RAMDISK_MODULE: &str = "brd";

const INIT_SCRIPT: &str = include_str!("init.sh");

/// A bootable guest: kernel image and initramfs.
pub struct GuestImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// `target/interop/`, created if missing.
pub fn work_dir() -> Result<PathBuf, String> {
    let d = root().join("target/interop");
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

/// Installs missing packages, then returns the (cached) kernel and initramfs.
pub fn prepare() -> Result<GuestImage, String> {
    ensure_packages()?;
    let dir = work_dir()?;
    let (version, kroot) = kernel(&dir)?;
    let initrd = initramfs(&dir, &version, &kroot)?;
    Ok(GuestImage { kernel: kroot.join(format!("boot/vmlinuz-{version}")), initrd })
}

// ------------------------------------------------------------------ packages

pub(crate) fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", package])
        .output()
        .map(|o| o.status.success() && o.stdout.starts_with(b"ii"))
        .unwrap_or(false)
}

/// Runs `apt-get ARGS` non-interactively; on failure returns its output tail.
fn apt_get(args: &[&str], dir: Option<&Path>) -> Result<(), String> {
    // One apt-get at a time in this process (the interop guest is set up
    // while other tests, which may install tshark, run): dpkg has one lock.
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = APT.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Command::new("apt-get");
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.output().map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    // apt's `E:` lines say what went wrong; without them, its last lines.
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    let mut why: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    if why.is_empty() {
        why = text.lines().collect();
        why.drain(..why.len().saturating_sub(6));
    }
    Err(format!("`{}` failed ({}):\n  {}", show(&c), out.status, why.join("\n  ")))
}

/// Runs `apt-get ARGS`, and once more after `apt-get update` if it fails
/// (stale package lists make downloads fail with 404).
pub(crate) fn apt_get_retrying(args: &[&str], dir: Option<&Path>) -> Result<(), String> {
    if apt_get(args, dir).is_ok() {
        return Ok(());
    }
    progress("apt-get failed; running apt-get update and retrying");
    apt_get(&["update"], None)?;
    apt_get(args, dir)
}

fn ensure_packages() -> Result<(), String> {
    let missing: Vec<&str> = HOST_PACKAGES.iter().map(|(p, _)| *p).filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        let list = missing.join(" ");
        progress(&format!("installing Debian packages: {list}"));
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(&missing);
        apt_get_retrying(&args, None).map_err(|e| {
            format!(
                "cannot install the Debian packages {list}: {e}\n\
                 install them as root, then retry:\n  \
                 apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {list}"
            )
        })?;
    }
    for (package, program) in HOST_PACKAGES {
        if !Path::new(program).exists() {
            return Err(format!("{program} is missing although {package} is installed; reinstall it: apt-get install --reinstall {package}"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ kernel

/// The versioned kernel package `linux-image-amd64` depends on, e.g.
/// `linux-image-6.1.0-48-amd64`.
fn kernel_package() -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_META])
        .output()
        .map_err(|e| format!("cannot run apt-cache: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.chars().nth(12).is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .ok_or_else(|| format!("`apt-cache depends {KERNEL_META}` names no linux-image-<version> package (run apt-get update?)"))
}

/// Kernel versions already unpacked under `dir`, newest name last.
fn cached_kernels(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some(e.file_name().to_str()?.strip_prefix("linux-")?.to_string()))
        .filter(|ver: &String| dir.join(format!("linux-{ver}/.complete")).exists())
        .collect();
    v.sort();
    v
}

/// Downloads and unpacks the Debian kernel into `dir/linux-VERSION/` (once)
/// and runs depmod there (the package ships no modules.dep). Returns the
/// version and that directory.
fn kernel(dir: &Path) -> Result<(String, PathBuf), String> {
    let package = match kernel_package() {
        Ok(p) => p,
        Err(e) => {
            // Offline with an unpacked kernel: use it.
            let Some(v) = cached_kernels(dir).pop() else { return Err(e) };
            progress(&format!("{e}; using the cached kernel {v}"));
            format!("linux-image-{v}")
        }
    };
    let version = package.trim_start_matches("linux-image-").to_string();
    let kroot = dir.join(format!("linux-{version}"));
    if kroot.join(".complete").exists() {
        return Ok((version, kroot));
    }
    let deb = match find_deb(dir, &package) {
        Some(d) => d,
        None => {
            progress(&format!("downloading {package} (apt-get download)"));
            apt_get_retrying(&["download", &package], Some(dir)).map_err(|e| {
                format!(
                    "cannot download the kernel package {package}: {e}\n\
                     fetch it by hand (or copy {package}_*.deb there), then retry:\n  cd {} && apt-get download {package}",
                    dir.display()
                )
            })?;
            find_deb(dir, &package).ok_or_else(|| format!("apt-get download left no {package}_*.deb in {}", dir.display()))?
        }
    };
    progress(&format!("unpacking {}", deb.display()));
    let tmp = dir.join(format!("linux-{version}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    let vmlinuz = tmp.join(format!("boot/vmlinuz-{version}"));
    let moddir = tmp.join(format!("lib/modules/{version}"));
    if !vmlinuz.exists() || !moddir.is_dir() {
        return Err(format!("{} holds no boot/vmlinuz-{version} or lib/modules/{version}", deb.display()));
    }
    run(Command::new(DEPMOD).arg("-b").arg(&tmp).arg(&version))?;
    let _ = std::fs::remove_dir_all(&kroot);
    std::fs::rename(&tmp, &kroot).map_err(|e| format!("{} -> {}: {e}", tmp.display(), kroot.display()))?;
    write(&kroot.join(".complete"), b"")?;
    Ok((version, kroot))
}

fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
    })
}

// ------------------------------------------------------------------ initramfs

/// `nvmet-tcp.ko` -> `nvmet_tcp`: the name modprobe and lsmod use.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// modules.dep: module name -> (path of its .ko, paths of every dependency).
fn parse_modules_dep(text: &str) -> HashMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (path, deps) = l.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_string).collect();
            Some((module_name(path), (path.to_string(), deps)))
        })
        .collect()
}

/// The modular part of each wanted list, and every .ko file to pack
/// (dependencies included). Built-in modules are dropped from the lists.
struct ModulePlan {
    lists: Vec<(&'static str, Vec<String>)>,
    files: BTreeSet<String>,
}

fn plan_modules(moddir: &Path) -> Result<ModulePlan, String> {
    let dep = parse_modules_dep(&read(&moddir.join("modules.dep"))?);
    let builtin: BTreeSet<String> = read(&moddir.join("modules.builtin"))?.lines().map(module_name).collect();
    if !dep.contains_key(RAMDISK_MODULE) {
        return Err(format!("the kernel has no loadable {RAMDISK_MODULE} module (init.sh passes it parameters)"));
    }
    let mut files = BTreeSet::new();
    let mut lists = Vec::new();
    let groups: [(&str, &[&str]); 5] = [
        ("EARLY_MODULES", EARLY_MODULES),
        ("NIC_MODULES", NIC_MODULES),
        ("TARGET_MODULES", TARGET_MODULES),
        ("HOST_MODULES", HOST_MODULES),
        ("RAMDISK_MODULE", &[RAMDISK_MODULE]),
    ];
    for (var, names) in groups {
        let mut loadable = Vec::new();
        for name in names {
            if let Some((path, deps)) = dep.get(*name) {
                files.insert(path.clone());
                files.extend(deps.iter().cloned());
                loadable.push(name.to_string());
            } else if !builtin.contains(*name) {
                return Err(format!("the kernel in {} has no module {name}", moddir.display()));
            }
        }
        lists.push((var, loadable));
    }
    Ok(ModulePlan { lists, files })
}

/// 64-bit FNV-1a, for the initramfs cache key (stable across Rust versions).
struct Fnv(u64);

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Builds `dir/initramfs-VERSION-HASH.cpio.gz` unless it exists; HASH covers
/// every file that goes in.
fn initramfs(dir: &Path, version: &str, kroot: &Path) -> Result<PathBuf, String> {
    let moddir = kroot.join(format!("lib/modules/{version}"));
    let plan = plan_modules(&moddir)?;
    let modules_sh: String =
        plan.lists.iter().map(|(var, names)| format!("{var}=\"{}\"\n", names.join(" "))).collect();
    // (path in the initramfs, source file) for everything copied from the host.
    let mut copies: Vec<(String, PathBuf)> = vec![("bin/busybox".into(), PathBuf::from(BUSYBOX)), ("usr/sbin/nvme".into(), PathBuf::from(NVME_CLI))];
    for lib in shared_libraries(Path::new(NVME_CLI))? {
        copies.push((lib.trim_start_matches('/').to_string(), PathBuf::from(&lib)));
    }
    for f in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
        copies.push((format!("lib/modules/{version}/{f}"), moddir.join(f)));
    }
    for f in &plan.files {
        copies.push((format!("lib/modules/{version}/{f}"), moddir.join(f)));
    }

    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.add(version.as_bytes());
    h.add(INIT_SCRIPT.as_bytes());
    h.add(b"libraries executable");
    h.add(modules_sh.as_bytes());
    let mut contents = Vec::with_capacity(copies.len());
    for (dest, src) in &copies {
        let bytes = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
        h.add(dest.as_bytes());
        h.add(&bytes);
        contents.push(bytes);
    }
    let out = dir.join(format!("initramfs-{version}-{:016x}.cpio.gz", h.0));
    if out.exists() {
        return Ok(out);
    }

    progress(&format!("building the initramfs ({} modules) -> {}", plan.files.len(), out.display()));
    let stage = dir.join(format!("initramfs.stage.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let result = (|| {
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc/dpusim", "root"] {
            mkdir(&stage.join(d))?;
        }
        for ((dest, _), bytes) in copies.iter().zip(&contents) {
            let p = stage.join(dest);
            mkdir(p.parent().expect("has a parent"))?;
            write(&p, bytes)?;
        }
        write(&stage.join("init"), INIT_SCRIPT.as_bytes())?;
        write(&stage.join("etc/dpusim/modules.sh"), modules_sh.as_bytes())?;
        for exe in ["init", "bin/busybox", "usr/sbin/nvme"] {
            set_executable(&stage.join(exe))?;
        }
        // Shared libraries and the ELF interpreter: execve() needs the
        // interpreter executable (EACCES otherwise).
        for (dest, _) in copies.iter().filter(|(d, _)| d.contains(".so")) {
            set_executable(&stage.join(dest))?;
        }
        // modules.dep, modules.alias, ... for exactly the packed modules.
        run(Command::new(DEPMOD).arg("-b").arg(&stage).arg(version))?;
        let tmp = out.with_extension("partial");
        run(Command::new("bash").arg("-o").arg("pipefail").arg("-c")
            .arg(r#"cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -9n > "$2""#)
            .arg("pack-initramfs").arg(&stage).arg(&tmp))?;
        std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    // Older initramfs builds are never used again.
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p != out && name.starts_with("initramfs-") && name.ends_with(".cpio.gz") {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(out)
}

/// The shared libraries `exe` loads (and its ELF interpreter), as absolute
/// paths from `ldd` ("libx.so.1 => /lib/.../libx.so.1 (0x...)" and
/// "/lib64/ld-linux-x86-64.so.2 (0x...)"); the initramfs holds each at
/// that path.
fn shared_libraries(exe: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("ldd").arg(exe).output().map_err(|e| format!("cannot run ldd {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("ldd {} failed: {}", exe.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_ldd(text: &str) -> Vec<String> {
    let mut libs = BTreeSet::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.insert(p.to_string());
        }
    }
    libs.into_iter().collect()
}

// ------------------------------------------------------------------ helpers

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run `{}`: {e}", show(cmd)))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({}): {}", show(cmd), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(p, bytes).map_err(|e| format!("{}: {e}", p.display()))
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn set_executable(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibnvme.so.1 => /lib/x86_64-linux-gnu/libnvme.so.1 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(parse_ldd(text), ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libnvme.so.1", "/lib64/ld-linux-x86-64.so.2"]);
    }

    #[test]
    fn modules_dep_lines_give_names_paths_and_dependencies() {
        let dep = parse_modules_dep(
            "kernel/fs/configfs/configfs.ko:\n\
             kernel/drivers/nvme/target/nvmet-tcp.ko.xz: kernel/drivers/nvme/target/nvmet.ko.xz kernel/fs/configfs/configfs.ko\n",
        );
        assert_eq!(dep["configfs"], ("kernel/fs/configfs/configfs.ko".to_string(), vec![]));
        let (path, deps) = &dep["nvmet_tcp"];
        assert_eq!(path, "kernel/drivers/nvme/target/nvmet-tcp.ko.xz");
        assert_eq!(deps, &["kernel/drivers/nvme/target/nvmet.ko.xz", "kernel/fs/configfs/configfs.ko"]);
    }
}
