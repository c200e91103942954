//! Well-known names and numbers of NVMe over Fabrics on TCP.

/// The well-known Discovery Service NQN (NVMe Base 2.0 §4.5, NVMe over
/// Fabrics 1.1 §5): the SUBNQN a host uses to connect to a discovery
/// controller.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// IANA port for NVMe/TCP I/O controllers (NVMe/TCP Transport 1.0, TRSVCID).
pub const DEFAULT_PORT: u16 = 4420;

/// IANA port for the NVMe/TCP discovery service ("nvme-disc"; NVMe/TCP
/// Transport 1.0, TRSVCID).
pub const DISCOVERY_PORT: u16 = 8009;

/// PDU Format Version 1.0 (ICReq/ICResp PFV, NVMe/TCP Transport 1.0
/// §3.6.2.2): the only version defined.
pub const PFV_1_0: u16 = 0;

/// Longest NQN in bytes, not counting the terminating NUL (NVMe Base 2.0
/// §4.5: at most 223 bytes).
pub const NQN_MAX_LEN: usize = 223;

/// Size of an NQN field in Connect data and the Discovery Log Page.
pub const NQN_FIELD_LEN: usize = 256;

/// Digest length in bytes (HDGST and DDGST are one CRC32C each).
pub const DIGEST_LEN: usize = 4;
