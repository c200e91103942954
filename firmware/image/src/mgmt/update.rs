//! Firmware update over the management API (ours, SPDK has none):
//! `dpu_fw_download` pushes a signed image in pieces into the update
//! service's management staging buffer (`crate::fwupdate::mgmt_staging`),
//! `dpu_fw_commit` asks the update service to verify it, write it into a
//! flash slot and/or record the slot for the next boot, with the actions
//! of NVMe Firmware Commit (NVMe Base 2.0 §5.12, Figure 183: 0 replace,
//! 1 replace and activate at the next reset, 2 activate at the next
//! reset). The commit is answered at once (`"state": "committing"`);
//! its outcome shows in `dpu_fw_get_status` (`update`). `dpuctl fw
//! update FILE` does all three.
//!
//! Pieces arrive in order: a piece's `offset` is the number of bytes
//! staged so far (or 0, which starts over), so a client that lost a
//! connection can ask `dpu_fw_get_status` where to resume. The image is
//! checked (signature, anti-rollback counter, chip, size) by the update
//! service before the flash is touched, as for an update from the host.

use crate::fwupdate::{self, Outcome, Reply, Request, DEPTH};
use base64ct::{Base64, Encoding};
use dpu_ring::{Consumer, Producer};
use dpu_rpc::{code, Params, RpcError, Writer};

/// Largest piece (decoded bytes): its base64 text and the request around
/// it stay under the server's request bound (`dpu_rpc::MAX_REQUEST`).
pub const MAX_PIECE: usize = 2048;
/// base64 text of a [`MAX_PIECE`] piece.
const MAX_TEXT: usize = MAX_PIECE.div_ceil(3) * 4;

/// No such operation here (-EOPNOTSUPP, SPDK's style of errno codes).
const NOT_SUPPORTED: i32 = -95;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Committing { slot: u8, action: u8 },
    Ended { slot: u8, action: u8, outcome: Outcome },
}

pub struct Update {
    ends: Option<(Producer<'static, Request, DEPTH>, Consumer<'static, Reply, DEPTH>)>,
    /// Bytes staged so far.
    staged: u32,
    state: State,
    tag: u32,
    /// The base64 text of a piece, and the piece (DDR, not the stack).
    text: Option<&'static mut [u8]>,
    piece: Option<&'static mut [u8]>,
}

impl Update {
    pub fn new() -> Update {
        Update {
            ends: fwupdate::mgmt_ends(),
            staged: 0,
            state: State::Idle,
            tag: 0,
            text: dpu_rt::alloc::ddr_bytes(MAX_TEXT, 8),
            piece: dpu_rt::alloc::ddr_bytes(MAX_PIECE, 8),
        }
    }

    /// Takes the update service's answer, if any.
    pub fn poll(&mut self) {
        let Some((_, rx)) = self.ends.as_mut() else { return };
        while let Some(r) = rx.pop() {
            if let State::Committing { slot, action } = self.state {
                if r.tag == self.tag {
                    self.state = State::Ended { slot, action, outcome: r.outcome };
                    defmt::info!("mgmt: firmware commit (slot {=u8}, action {=u8}): {=str}", slot, action, outcome_name(r.outcome));
                }
            }
        }
    }

    fn staging(&self) -> Result<usize, RpcError> {
        fwupdate::mgmt_staging().ok_or_else(|| {
            RpcError::new(NOT_SUPPORTED, "not supported: firmware update needs a card booted from flash by the bootloader (this one was loaded as an ELF)")
        })
    }

    fn idle(&self) -> Result<(), RpcError> {
        match self.state {
            State::Committing { .. } => Err(RpcError::new(code::BUSY, "busy: a firmware commit is in progress; see dpu_fw_get_status")),
            _ => Ok(()),
        }
    }

    /// `dpu_fw_download {offset, data}`: `data` is base64 (RFC 4648 §4,
    /// padded), at most [`MAX_PIECE`] bytes once decoded.
    pub fn download(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["offset", "data"])?;
        let offset = Params::required("offset", p.u64("offset")?)?;
        let staging = self.staging()?;
        self.idle()?;
        let (Some(text), Some(piece)) = (self.text.as_deref_mut(), self.piece.as_deref_mut()) else {
            return Err(RpcError::new(code::NO_MEMORY, "out of memory: no buffer for firmware pieces"));
        };
        let text = Params::required("data", p.str("data", text)?)?;
        let bytes = Base64::decode(text, piece)
            .map_err(|_| RpcError::invalid_params(format_args!("invalid params: `data` must be base64 of at most {MAX_PIECE} bytes")))?;
        if bytes.is_empty() {
            return Err(RpcError::invalid_params(format_args!("invalid params: `data` is empty")));
        }
        if offset != 0 && offset != u64::from(self.staged) {
            return Err(RpcError::invalid_params(format_args!(
                "invalid params: `offset` must be {} (the bytes staged so far) or 0 to start over, got {offset}",
                self.staged
            )));
        }
        let end = offset as usize + bytes.len();
        if end > fwupdate::MAX_IMAGE as usize {
            return Err(RpcError::invalid_params(format_args!("invalid params: the image would be larger than a flash slot ({} bytes)", fwupdate::MAX_IMAGE)));
        }
        dpu_hal::mem::write(staging + offset as usize, bytes);
        self.staged = end as u32;
        if offset == 0 {
            self.state = State::Idle;
        }
        w.begin_object();
        w.field_u64("staged", u64::from(self.staged));
        w.end_object();
        Ok(())
    }

    /// `dpu_fw_commit {slot, action}`: slot 1 or 2, action 0..=2 (NVMe
    /// Firmware Commit's; 3, activate without a reset, is not offered).
    pub fn commit(&mut self, p: &Params<'_>, w: &mut Writer<'_>) -> Result<(), RpcError> {
        p.only(&["slot", "action"])?;
        let slot = Params::required("slot", p.u64_in("slot", 1..=2)?)? as u8;
        let action = p.u64_in("action", 0..=2)?.unwrap_or(1) as u8;
        self.staging()?;
        self.idle()?;
        let replace = action != 2;
        if replace && self.staged == 0 {
            return Err(RpcError::invalid_params(format_args!("invalid params: action {action} writes the downloaded image, and none was downloaded (dpu_fw_download)")));
        }
        let Some(fslot) = fwupdate::flash_slot(slot) else {
            return Err(RpcError::invalid_params(format_args!("invalid params: `slot` must be 1 or 2")));
        };
        let Some((tx, _)) = self.ends.as_mut() else {
            return Err(RpcError::new(code::INTERNAL_ERROR, "internal error: no channel to the firmware update service"));
        };
        self.tag = self.tag.wrapping_add(1);
        let r = Request { tag: self.tag, slot: fslot, len: self.staged, replace, activate: action != 0 };
        tx.push(r).map_err(|_| RpcError::new(code::BUSY, "busy: the firmware update service has not taken the previous commit yet; retry"))?;
        dpu_hal::mailbox::ring(fwupdate::FW_HART, fwupdate::DOORBELL_FW);
        self.state = State::Committing { slot, action };
        defmt::info!("mgmt: firmware commit requested: slot {=u8} ({=str}), action {=u8}, {=u32} bytes staged", slot, fslot.name(), action, self.staged);
        w.begin_object();
        w.field_str("state", "committing");
        w.end_object();
        Ok(())
    }

    /// The `update` member of `dpu_fw_get_status`.
    pub fn status(&self, w: &mut Writer<'_>) {
        w.begin_object();
        w.field_u64("staged", u64::from(self.staged));
        let (state, sa) = match self.state {
            State::Idle => ("idle", None),
            State::Committing { slot, action } => ("committing", Some((slot, action))),
            State::Ended { slot, action, outcome } => (outcome_name(outcome), Some((slot, action))),
        };
        w.field_str("state", state);
        if let Some((slot, action)) = sa {
            w.field_u64("slot", u64::from(slot));
            w.field_u64("action", u64::from(action));
        }
        w.end_object();
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::InvalidImage => "invalid image",
        Outcome::SlotInUse => "slot in use",
        Outcome::FlashError => "flash error",
    }
}
