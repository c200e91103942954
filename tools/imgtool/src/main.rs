//! `dpu-imgtool`: sign, inspect and verify DPU images; make keys.
//! (`cargo xtask flash` builds a whole flash image with the same library.)

use clap::{Parser, Subcommand};
use dpu_imgtool::image::{self, Kind, Meta, Version};
use dpu_imgtool::key;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Signed DPU images: sign an ELF, show or verify an image, make a signing key")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pack an ELF into a signed image.
    Sign {
        /// The RV64 ELF (built for the DPU chip: it carries a .dpu_chip stamp).
        elf: PathBuf,
        /// Where to write the image.
        out: PathBuf,
        /// Signing key file (default: $DPU_SIGNING_KEY, else the development
        /// key under target/keys/, generated on first use).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Image kind: firmware or bootloader.
        #[arg(long, default_value = "firmware")]
        kind: String,
        /// Image version (major.minor.revision[+build]).
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        version: Version,
        /// Anti-rollback security counter (the card refuses images below its OTP counter).
        #[arg(long, default_value_t = 0)]
        security_counter: u32,
    },
    /// Show an image's header.
    Info { image: PathBuf },
    /// Check an image's payload hash and signature against a key file.
    Verify {
        image: PathBuf,
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Make a new signing key file (never overwrites one).
    Keygen { out: PathBuf },
}

fn target_dir() -> PathBuf {
    let d = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    d.canonicalize().unwrap_or(d)
}

fn kind_name(k: Option<Kind>) -> &'static str {
    match k {
        Some(Kind::Firmware) => "firmware",
        Some(Kind::Bootloader) => "bootloader",
        None => "unknown",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Sign { elf, out, key, kind, version, security_counter } => {
            let kind = match kind.as_str() {
                "firmware" => Kind::Firmware,
                "bootloader" => Kind::Bootloader,
                k => return Err(format!("--kind {k}: firmware or bootloader")),
            };
            let k = key::select(key.as_deref(), &target_dir()).map_err(|e| e.to_string())?;
            if k.generated {
                eprintln!("dpu-imgtool: generated a development signing key: {}", k.path.display());
            }
            let e = image::read_elf(&elf).map_err(|e| e.to_string())?;
            let img = image::pack(&e, Meta { kind, version, security_counter }, &k.signing).map_err(|e| e.to_string())?;
            std::fs::write(&out, &img).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("{}: {} {version}, security counter {security_counter}, {} bytes, signed by {}", out.display(), kind_name(Some(kind)), img.len(), k.path.display());
        }
        Cmd::Info { image: p } => {
            let img = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let i = image::info(&img).map_err(|e| format!("{}: {e}", p.display()))?;
            println!("kind             {}", kind_name(i.kind));
            println!("version          {}", i.version);
            println!("security counter {}", i.security_counter);
            println!("entry            {:#x}", i.entry);
            println!("chip layout      {:#018x}", i.chip);
            println!("payload          {} bytes, SHA-256 {}", i.payload_size, hex(&i.payload_hash));
            println!("signer key       {}", hex(&i.public_key));
            for (load, off, file, mem) in &i.segments {
                println!("segment          {load:#012x}: {file} bytes from payload offset {off}, {mem} in memory");
            }
        }
        Cmd::Verify { image: p, key } => {
            let img = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let k = key::select(key.as_deref(), &target_dir()).map_err(|e| e.to_string())?;
            let i = image::verify(&img, &k.public()).map_err(|e| format!("{}: refused: {e}", p.display()))?;
            println!("{}: good signature by {} ({} {})", p.display(), k.path.display(), kind_name(i.kind), i.version);
        }
        Cmd::Keygen { out } => {
            let k = key::generate(&out, "DPU signing key").map_err(|e| e.to_string())?;
            println!("{}: public key {}, OTP key hash {}", out.display(), hex(&k.public()), hex(&k.public_hash()));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpu-imgtool: error: {e}");
            ExitCode::FAILURE
        }
    }
}
