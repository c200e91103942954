//! Where a PDU's data and data digest sit relative to the PDU start, so a
//! stream receiver can skip the padding, hand the data to DMA or a block
//! layer and check the digest without the data passing through the
//! parser (NVMe/TCP Transport 1.0 §3.6.1: CH, PSH, HDGST, PAD,
//! DATA, DDGST).

/// The data region of a received PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataSpan {
    /// First data byte, counted from the first byte of the PDU (= PDO for
    /// data-bearing types; = HLEN for TermReq error data).
    pub offset_from_pdu_start: u32,
    /// Data bytes.
    pub len: u32,
    /// A 4-byte data digest follows the data.
    pub ddgst: bool,
    /// Padding bytes between the header (digest) and the data:
    /// PDO - HLEN - (4 if HDGST). Skip them; they are covered by no digest.
    pub pad_before: u32,
}

impl DataSpan {
    /// Offset of the data digest from the PDU start (meaningful when `ddgst`).
    pub fn digest_offset(&self) -> u32 {
        self.offset_from_pdu_start + self.len
    }

    /// Offset just past the end of the PDU (= PLEN).
    pub fn end(&self) -> u32 {
        self.digest_offset() + if self.ddgst { 4 } else { 0 }
    }
}
