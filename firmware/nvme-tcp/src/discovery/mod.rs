//! The Discovery Log Page (Get Log Page LID 70h; NVMe Base 2.0
//! §5.16.1.23, NVMe over Fabrics 1.1 §5.3): a 1024-byte header followed
//! by NUMREC 1024-byte entries, each naming a port and subsystem a host
//! may connect to.
//!
//! * [`DiscoveryLog`]: parse from the bytes a host read, entries yielded
//!   one by one as borrowed [`EntryView`]s.
//! * [`EntryRepr`] and [`write_log_range`]: render the log, or any byte
//!   range of it a Get Log Page asks for, without holding it whole.

mod entry;
mod log;

#[cfg(test)]
mod tests;

pub use entry::{EntryRepr, EntryView};
pub use log::{write_log_range, DiscoveryLog, EntryIter, LogHeader};

/// Get Log Page LID of the Discovery Log Page.
pub const LID_DISCOVERY: u8 = 0x70;
/// Size of the header and of each entry.
pub const RECORD_LEN: usize = 1024;

/// Why discovery data could not be parsed or rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DiscoveryError {
    /// Fewer bytes than the header or entry needs.
    Truncated { need: usize },
    /// RECFMT other than 0.
    UnsupportedRecfmt(u16),
    /// A text field longer than its field (TRSVCID 32, TRADDR 256,
    /// TSAS 256 bytes) or an NQN that does not fit (223 bytes, no NUL).
    FieldTooLong,
    /// A text field that is not ASCII/UTF-8.
    BadText,
}

/// Transport types (TRTYPE).
pub mod trtype {
    pub const RDMA: u8 = 1;
    pub const FC: u8 = 2;
    pub const TCP: u8 = 3;
    pub const LOOP: u8 = 254;
}

/// Address families (ADRFAM).
pub mod adrfam {
    pub const IPV4: u8 = 1;
    pub const IPV6: u8 = 2;
    pub const IB: u8 = 3;
    pub const FC: u8 = 4;
    pub const INTRA_HOST: u8 = 254;
}

/// Subsystem types (SUBTYPE).
pub mod subtype {
    /// A referral to another discovery service.
    pub const DISCOVERY_REFERRAL: u8 = 1;
    /// An NVM subsystem.
    pub const NVM: u8 = 2;
    /// The current discovery subsystem itself.
    pub const CURRENT_DISCOVERY: u8 = 3;
}

/// Transport requirements (TREQ) bits.
pub mod treq {
    /// Bits 1:0, secure channel: not specified.
    pub const SECURE_NOT_SPECIFIED: u8 = 0;
    /// Bits 1:0, secure channel: required.
    pub const SECURE_REQUIRED: u8 = 1;
    /// Bits 1:0, secure channel: not required.
    pub const SECURE_NOT_REQUIRED: u8 = 2;
    /// Bit 2: SQ flow control may be disabled (Linux nvmet sets it).
    pub const DISABLE_SQ_FLOW_CONTROL: u8 = 1 << 2;
}
