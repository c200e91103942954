//! The boot log: plain text lines on the console UART, prefixed `boot:`
//! (the simulator stamps them with time and hart).

use core::fmt;

/// Writes one line.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut dpu_hal::uart::Writer, format_args!("boot: {}\n", format_args!($($arg)*)));
    }};
}

/// Bytes as lowercase hex.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An image version as major.minor.revision[+build].
pub struct Version(pub dpu_fwimage::Version);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(f, "{}.{}.{}", v.major, v.minor, v.revision)?;
        if v.build != 0 {
            write!(f, "+{}", v.build)?;
        }
        Ok(())
    }
}
