//! What a device model gets instead of the whole bus: [`DevCtx`], the
//! narrow borrows of the bus's shared parts a device acts through, and
//! the [`Component`] trait by which events reach it.
//!
//! A device owns its registers and its behaviour (a DMA engine runs its
//! descriptors in `dma.rs`, the accelerators theirs in `accel/`, the
//! local SSDs theirs in `ssd/`); what it touches outside itself is here:
//!
//! * [`LocalMem`]: DPU memory as a bus master sees it. A write breaks the
//!   LR/SC reservations it touches and, when it lands on a code page,
//!   is recorded by memory so that the harts' code cache drops the
//!   decoded instructions there before any hart runs again.
//! * the event queue, to schedule its own work (by its [`ComponentId`]);
//! * [`Irq`]: the interrupt side (mailbox doorbells, PLIC lines);
//! * [`PcieSide`]: the PCIe endpoint (bus-master enable, MSI-X), the link
//!   (timing) and host memory, for the devices that reach the host;
//! * the per-I/O trace, when on, and the OTP fuses (the crypto engines'
//!   device key).
//!
//! The split follows the bus's fields (`Bus::with_devices`): borrowing a
//! context and a device at once is a split borrow, not a copy.

use crate::bus::Reservations;
use crate::dev::mailbox::Mailbox;
use crate::dev::otp::Otp;
use crate::dev::plic::Plic;
use crate::event::{ComponentId, EventQueue, Payload};
use crate::iotrace::IoTrace;
use crate::mem::Memory;
use crate::pcie::{Dir, Effect, Endpoint, HostMemory, Link};
use dpu_hal::regs::{mailbox, pcie as pregs};
use std::cell::RefCell;

/// A device that receives events addressed to its [`ComponentId`].
pub trait Component {
    /// Handles one of the events the component scheduled (`payload` as
    /// it defined it), at `ctx.now`.
    fn on_event(&mut self, payload: Payload, ctx: &mut DevCtx<'_>);
}

/// What a device acts through (see the module doc).
pub struct DevCtx<'a> {
    /// Current simulated time (cycles).
    pub now: u64,
    pub mem: LocalMem<'a>,
    pub events: &'a mut EventQueue,
    pub irq: Irq<'a>,
    pub pcie: PcieSide<'a>,
    /// Per-I/O trace, when enabled.
    pub iotrace: Option<&'a RefCell<IoTrace>>,
    /// OTP fuses (read only: the device key of the key ladder).
    pub fuses: &'a Otp,
}

impl DevCtx<'_> {
    /// Carries out PCIe endpoint effects now: doorbell notifications ring
    /// the owning hart's mailbox; MSI-X writes travel up the link to the
    /// host.
    pub fn apply_effects(&mut self, effects: &mut Vec<Effect>) {
        for e in effects.drain(..) {
            match e {
                Effect::Notify(h) => self.irq.ring_mailbox(h, pregs::MAILBOX_BIT),
                Effect::Msi { addr, data, .. } => {
                    let end = self.pcie.link.send(Dir::Up, self.now, 4);
                    let at = end + self.pcie.link.posted_latency;
                    self.events.push(at, self.pcie.host, crate::host::msi_payload(addr, data));
                }
            }
        }
    }
}

/// DPU memory as a bus master (DMA engine, accelerator, SSD, NIC) reads
/// and writes it.
pub struct LocalMem<'a> {
    pub(crate) mem: &'a mut Memory,
    pub(crate) res: &'a mut Reservations,
}

impl LocalMem<'_> {
    /// Reads `out.len()` bytes at `addr`; `None` if a byte is not RAM.
    pub fn read(&mut self, addr: u64, out: &mut [u8]) -> Option<()> {
        self.mem.read_bytes(addr, out)
    }

    /// Whether `[addr, addr+len)` is all RAM.
    pub fn is_ram(&self, addr: u64, len: u64) -> bool {
        self.mem.range_is_ram(addr, len)
    }

    /// Whether `[addr, addr+len)` is RAM a device may write (not the boot ROM).
    pub fn is_writable_ram(&self, addr: u64, len: u64) -> bool {
        self.mem.region_of(addr).is_some_and(|r| r.writable) && self.mem.range_is_ram(addr, len)
    }

    /// A device write: moves the bytes and breaks the reservations on
    /// them; memory records a write to code ([`Memory::note_code_write`],
    /// acted on by the harts' code cache before any of them runs again).
    /// Bytes outside RAM are dropped (callers check the range first).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        let _ = self.mem.write_bytes(addr, data);
        self.res.snoop_store(addr, data.len() as u64);
    }
}

/// The interrupt side: mailbox doorbells and PLIC lines into the harts.
pub struct Irq<'a> {
    pub(crate) mailbox: &'a mut Mailbox,
    pub(crate) plic: &'a mut Plic,
    pub(crate) lines: &'a mut [u64],
}

impl Irq<'_> {
    /// A device rings hart `h`'s mailbox with `bits`.
    pub fn ring_mailbox(&mut self, h: u32, bits: u64) {
        let off = u64::from(h) * mailbox::SLOT + mailbox::DOORBELL;
        self.mailbox.write(off, 8, bits, self.plic, self.lines);
    }
}

/// The PCIe side a device reaching the host uses.
pub struct PcieSide<'a> {
    pub endpoint: &'a mut Endpoint,
    pub link: &'a mut Link,
    pub host_mem: &'a RefCell<HostMemory>,
    /// The host model's component (MSI-X writes go to it).
    pub host: ComponentId,
}
