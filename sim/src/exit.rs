//! `dpusim`'s exit statuses: the one table the CLI, the stats JSON
//! (`exit_code`), the GDB stub and `cargo xtask run` share.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | pass: the firmware passed, the scenario's `[expect]` held, or a run without a scenario reached `--max-time`/`--max-cycles` |
//! | 1 | scenario failed: `[expect]` not met, verify or I/O errors |
//! | 2 | bad input: arguments, files, unwritable output paths |
//! | 3 | firmware fault: a fatal trap (fault report on stderr) |
//! | 4 | no progress: deadlock (every hart waits in `wfi` and no event is pending) or livelock (a device model keeps scheduling work at the same instant) |
//! | 5 | time limit reached before the scenario's jobs finished (no report) |
//! | 6 | interrupted (Ctrl-C / SIGINT): summary and stats still written |
//! | 7 | the firmware rejected its boot configuration (its reason on stderr) |
//! | 8 | secure boot refused: the boot ROM refused the first-stage bootloader, or the bootloader found no slot it may boot (the boot log says why) |
//! | 9 | power cut (a power-cut test): the flash keeps what the interrupted operation had done |
//! | 10-15 | reserved |
//! | 16 + N | the firmware failed with code N < 100 (test finisher) |
//! | 116 | the firmware failed with a code of 100 or more (a panic: 0xdead) |
//!
//! The firmware's raw failure code is printed on stderr.

pub const PASS: u8 = 0;
pub const SCENARIO_FAILED: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const FIRMWARE_FAULT: u8 = 3;
pub const DEADLOCK: u8 = 4;
pub const TIME_LIMIT: u8 = 5;
pub const INTERRUPTED: u8 = 6;
/// The firmware rejected its boot configuration (`Finish::ConfigRejected`).
pub const BOOT_CONFIG_REJECTED: u8 = 7;
/// Secure boot found nothing it may run (`Outcome::BootRefused`,
/// `Finish::NoBootableImage`).
pub const SECURE_BOOT_REFUSED: u8 = 8;
/// The power was cut (`Outcome::PowerCut`).
pub const POWER_CUT: u8 = 9;
/// Exit status of firmware failure code 0 (codes N < 100 give 16 + N).
pub const FIRMWARE_FAIL_BASE: u8 = 16;
/// Exit status of firmware failure codes of 100 and more.
pub const FIRMWARE_FAIL_HIGH: u8 = 116;

/// The firmware's panic handler fails with this code.
pub const PANIC_CODE: u16 = 0xdead;

/// Exit status for the firmware's test-finisher failure code `code`.
pub fn firmware_fail(code: u16) -> u8 {
    if code < 100 {
        FIRMWARE_FAIL_BASE + code as u8
    } else {
        FIRMWARE_FAIL_HIGH
    }
}
