//! The chip interconnect as seen by a hart: RAM (through [`Memory`]), device
//! windows, interrupt lines, LR/SC reservations and the contention windows
//! of the timing model. (The decoded-instruction cache is not here: it is
//! `cpu::code::CodeCache`, kept coherent by what [`Memory`] records.)
//!
//! It also holds the device models and registers the bus-side components
//! (`Bus::new`: a name and a handler each, [`Bus::deliver`]); a device
//! runs its own behaviour through a [`DevCtx`] split off the bus
//! ([`Bus::with_devices`]), not through the bus itself.

use crate::console::Console;
use crate::dev::clint::Clint;
use crate::dev::finisher::{self, Finish};
use crate::dev::mailbox::Mailbox;
use crate::dev::plic::Plic;
use crate::dev::trace::TracePort;
use crate::dev::uart::Uart;
use crate::devctx::{Component, DevCtx, Irq, LocalMem, PcieSide};
use crate::event::{ComponentId, EventQueue, Payload};
use crate::mem::Memory;
use crate::dma::DmaEngines;
use crate::pcie::config::Identity;
use crate::pcie::{Endpoint, HostMemory, Link};
use dpu_targets::{window, Board, Chip};
use std::cell::RefCell;
use std::rc::Rc;

/// No reservation held.
pub const NO_RESERVATION: u64 = u64::MAX;
/// Reservation set granule (bytes): a store anywhere in it breaks the reservation.
const RESERVATION_GRANULE: u64 = 64;

/// The bits of `Bus::reserved_bits` of every granule `[addr, addr+size)`
/// touches (`size` > 0).
#[inline(always)]
fn granule_bits(addr: u64, size: u64) -> u64 {
    let first = addr / RESERVATION_GRANULE;
    let n = (addr + size - 1) / RESERVATION_GRANULE - first + 1;
    if n >= 64 {
        u64::MAX
    } else {
        ((1u64 << n) - 1).rotate_left((first % 64) as u32)
    }
}

/// The harts' LR/SC reservations (RISC-V unprivileged spec §8.2): one
/// granule address per hart, broken by any store or device write to it.
pub struct Reservations {
    held: Vec<u64>,
    active: u32,
    /// Summary of the reserved granules: the `granule_bits` of every
    /// reservation placed since none was held (a superset of those held
    /// now; zero when none is), so that most stores skip the scan of every
    /// hart's reservation.
    bits: u64,
}

impl Reservations {
    pub fn new(harts: usize) -> Reservations {
        Reservations { held: vec![NO_RESERVATION; harts], active: 0, bits: 0 }
    }

    /// Places hart `h`'s reservation on `addr`.
    pub fn reserve(&mut self, h: u32, addr: u64) {
        let r = &mut self.held[h as usize];
        if *r == NO_RESERVATION {
            self.active += 1;
        }
        *r = addr & !(RESERVATION_GRANULE - 1);
        self.bits |= granule_bits(addr, 1);
    }

    /// Consumes hart `h`'s reservation; true if it still covered `addr`.
    pub fn take(&mut self, h: u32, addr: u64) -> bool {
        let r = std::mem::replace(&mut self.held[h as usize], NO_RESERVATION);
        if r == NO_RESERVATION {
            return false;
        }
        self.released(1);
        r == addr & !(RESERVATION_GRANULE - 1)
    }

    /// `n` reservations fewer are held.
    fn released(&mut self, n: u32) {
        self.active -= n;
        if self.active == 0 {
            self.bits = 0;
        }
    }

    /// A store to `[addr, addr+size)` breaks every reservation on it.
    #[inline(always)]
    pub fn snoop_store(&mut self, addr: u64, size: u64) {
        if self.bits & granule_bits(addr, size) != 0 {
            self.snoop_slow(addr, size);
        }
    }

    #[cold]
    fn snoop_slow(&mut self, addr: u64, size: u64) {
        let first = addr & !(RESERVATION_GRANULE - 1);
        let last = (addr + size - 1) & !(RESERVATION_GRANULE - 1);
        let mut broken = 0;
        for r in self.held.iter_mut() {
            if *r != NO_RESERVATION && (first..=last).contains(r) {
                *r = NO_RESERVATION;
                broken += 1;
            }
        }
        self.released(broken);
    }

    /// Every reservation dropped (a reset).
    pub fn clear(&mut self) {
        self.held.fill(NO_RESERVATION);
        self.active = 0;
        self.bits = 0;
    }
}

/// A bus-side component's event handler (see [`Bus::deliver`]).
pub type DeviceRoute = fn(&mut Bus, u64, Payload);

/// The device components that act through a [`DevCtx`], borrowed
/// alongside it (`Bus::with_devices`).
pub struct Devices<'a> {
    pub dma: &'a mut DmaEngines,
    pub crypto: &'a mut crate::accel::crypto::CryptoEngines,
    pub ec: &'a mut crate::accel::ec::EcEngine,
    pub ssds: &'a mut crate::ssd::bay::SsdBay,
    pub net: &'a mut crate::net::network::Network,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Finisher,
    Clint,
    Plic,
    Uart,
    Trace,
    Mailbox,
    Pcie,
    Dma,
    BootCfg,
    Nic,
    Crypto,
    Ec,
    Trng,
    Spi,
    Otp,
    Ssd,
}

/// Per-window bandwidth accounting (see `timing.contention` in the chip file).
///
/// Every region has a rate (units per cycle: accesses for SMEM, bytes for
/// DDR). Within one scheduling window, traffic beyond `rate * window length`
/// waits in a queue: each access pays `overflow / rate * queue_penalty`
/// extra cycles. Harts run one after another inside a window, so this is an
/// average-load model, not a cycle-exact arbiter.
pub struct Window {
    pub count: Vec<u64>,
    budget: Vec<u64>,
    rate: Vec<u64>,
    queue_penalty: u64,
    /// Total extra cycles charged since reset (statistics).
    pub stall_cycles: u64,
}

impl Window {
    pub fn start(&mut self, len: u64) {
        for (i, c) in self.count.iter_mut().enumerate() {
            *c = 0;
            self.budget[i] = self.rate[i].saturating_mul(len);
        }
    }

    /// Charges `units` to `region`; returns the queueing delay in cycles.
    #[inline(always)]
    pub fn charge(&mut self, region: u8, units: u64) -> u64 {
        let r = region as usize;
        let c = self.count[r] + units;
        self.count[r] = c;
        if c <= self.budget[r] {
            0
        } else {
            let extra = (c - self.budget[r]) / self.rate[r] * self.queue_penalty;
            self.stall_cycles += extra;
            extra
        }
    }
}

pub struct Bus {
    pub mem: Memory,
    /// Interrupt lines driven by devices into each hart's `mip` (MSIP/MTIP/MEIP).
    pub lines: Vec<u64>,
    pub(crate) res: Reservations,
    /// Event handlers of the components registered by `Bus::new`, by
    /// component id (`None`: a component the machine handles, e.g. the host).
    routes: Vec<Option<DeviceRoute>>,
    /// The host model's component id: the far end of the PCIe link.
    pub host_id: ComponentId,
    /// The power supply's component id (`power_cut_at`).
    power_id: ComponentId,
    pub clint: Clint,
    pub plic: Plic,
    pub uart: Uart,
    pub mailbox: Mailbox,
    pub trace: TracePort,
    pub events: EventQueue,
    /// Set by the finisher; the engine stops.
    pub finish: Option<Finish>,
    pub console: Console,
    pub window: Window,
    mmio: Vec<(u64, u64, Dev)>,
    pub mmio_accesses: u64,
    pub pcie: Endpoint,
    pub link: Link,
    pub dma: DmaEngines,
    /// Crypto engines, erasure-coding engine, TRNG ([`crate::accel`]).
    pub crypto: crate::accel::crypto::CryptoEngines,
    pub ec: crate::accel::ec::EcEngine,
    pub trng: crate::accel::trng::Trng,
    /// Host DRAM, shared with the host model.
    pub host_mem: Rc<RefCell<HostMemory>>,
    /// Boot configuration blob the firmware reads (see `dpu_hal::regs::bootcfg`).
    pub bootcfg: Vec<u8>,
    /// The boot flash behind its SPI controller.
    pub spi: crate::dev::spi::Spi,
    /// OTP fuses.
    pub otp: crate::dev::otp::Otp,
    /// Cycles the device just accessed holds the bus beyond the access
    /// (a slow peripheral: the SPI controller while bytes shift); the
    /// accessing hart adds them to the access's cost.
    pub mmio_stall: u64,
    /// The power was cut (`Event::PowerCut`): the run ends.
    pub power_cut: bool,
    /// The firmware asked for a warm restart (`regs::finisher::WARM_RESTART`):
    /// the machine carries it out after the current quantum.
    pub warm_restart: bool,
    /// Per-I/O trace, when enabled (shared with the host model).
    pub iotrace: Option<Rc<RefCell<crate::iotrace::IoTrace>>>,
    /// Debugger software breakpoints (checked by harts in debug mode).
    pub breakpoints: rustc_hash::FxHashSet<u64>,
    /// The NIC and the network behind it ([`crate::net::component`]).
    pub net: crate::net::network::Network,
    /// Local NVMe SSDs ([`crate::ssd::bay`]), one per fitted slot.
    pub ssds: crate::ssd::bay::SsdBay,
}

impl Bus {
    pub fn new(chip: &Chip, board: &Board, memory: Memory, trace: TracePort) -> Bus {
        let harts = chip.harts() as usize;
        let d = &chip.devices;
        let p = &board.pcie;
        let identity = Identity {
            vendor: p.vendor_id,
            device: p.device_id,
            vf_device: p.vf_device_id,
            bar_size: dpu_hal::regs::bar0::SIZE,
            msix_vectors: p.pf_msix_vectors,
            msix_table: dpu_hal::regs::bar0::MSIX_TABLE as u32,
            msix_pba: dpu_hal::regs::bar0::MSIX_PBA as u32,
            link: (p.gen, p.lanes),
            max_payload: p.max_payload,
            total_vfs: p.total_vfs as u16,
        };
        let mmio = vec![
            (d.finisher.base, d.finisher.base + window::FINISHER, Dev::Finisher),
            (d.clint.base, d.clint.base + window::CLINT, Dev::Clint),
            (d.plic.base, d.plic.base + window::PLIC, Dev::Plic),
            (d.uart.base, d.uart.base + window::UART, Dev::Uart),
            (d.trace.base, d.trace.base + window::TRACE, Dev::Trace),
            (d.mailbox.base, d.mailbox.base + chip.mailbox_window(), Dev::Mailbox),
            (d.pcie.base, d.pcie.base + window::PCIE, Dev::Pcie),
            (d.dma.base, d.dma.base + chip.dma_window(), Dev::Dma),
            (d.bootcfg.base, d.bootcfg.base + d.bootcfg.size, Dev::BootCfg),
            (d.nic.base, d.nic.base + chip.nic_window(), Dev::Nic),
            (d.crypto.base, d.crypto.base + chip.crypto_window(), Dev::Crypto),
            (d.ec.base, d.ec.base + chip.ec_window(), Dev::Ec),
            (d.trng.base, d.trng.base + window::TRNG, Dev::Trng),
            (d.spi.base, d.spi.base + window::SPI, Dev::Spi),
            (d.otp.base, d.otp.base + window::OTP, Dev::Otp),
            (d.ssd.base, d.ssd.base + chip.ssd_window(), Dev::Ssd),
        ];
        let regions = memory.regions().len();
        let ct = &chip.timing.contention;
        let rate = memory
            .regions()
            .iter()
            .map(|r| match r.kind {
                crate::mem::RegionKind::Smem { .. } => u64::from(ct.smem_accesses_per_cycle),
                crate::mem::RegionKind::Ddr => u64::from(ct.ddr_bytes_per_cycle),
                crate::mem::RegionKind::BootRom => 1 << 20,
            })
            .collect();
        // The components that receive events, in a fixed order (a warm
        // restart's fresh devices get the same ids).
        let mut events = EventQueue::default();
        let mut routes: Vec<Option<DeviceRoute>> = Vec::new();
        let mut register = |name: &'static str, route: Option<DeviceRoute>| {
            routes.push(route);
            events.register(name)
        };
        let clint_id = register("clint", Some(|bus, now, p| bus.clint.update_timer(p.a as usize, now, &mut bus.lines, &mut bus.events)));
        let host_id = register("host", None);
        let power_id = register("power", Some(|bus, now, _| bus.power_off(now)));
        let dma_id = register("dma", Some(|bus, now, p| bus.with_devices(now, |d, ctx| d.dma.on_event(p, ctx))));
        let crypto_id = register("crypto", Some(|bus, now, p| bus.with_devices(now, |d, ctx| d.crypto.on_event(p, ctx))));
        let ec_id = register("ec", Some(|bus, now, p| bus.with_devices(now, |d, ctx| d.ec.on_event(p, ctx))));
        let ssd_id = register("ssd", Some(|bus, now, p| bus.with_devices(now, |d, ctx| d.ssds.on_event(p, ctx))));
        let net_id = register("network", Some(|bus, now, p| bus.with_devices(now, |d, ctx| d.net.on_event(p, ctx))));
        Bus {
            mem: memory,
            lines: vec![0; harts],
            res: Reservations::new(harts),
            routes,
            host_id,
            power_id,
            clint: Clint::new(harts, chip.chip.clock_hz / chip.chip.timebase_hz, clint_id),
            plic: Plic::new(d.plic.sources, harts),
            uart: Uart::new(harts),
            mailbox: Mailbox::new(harts, d.mailbox.irq_base),
            trace,
            events,
            finish: None,
            console: Console::new(chip.chip.clock_hz),
            window: Window {
                count: vec![0; regions],
                budget: vec![0; regions],
                rate,
                queue_penalty: u64::from(ct.queue_penalty),
                stall_cycles: 0,
            },
            mmio,
            mmio_accesses: 0,
            pcie: Endpoint::new(identity, p.vf_msix_vectors, harts),
            link: Link::new(board, chip.chip.clock_hz),
            dma: DmaEngines::new(
                dma_id,
                d.dma.engines as usize,
                d.dma.channels_per_engine as usize,
                u64::from(d.dma.bytes_per_cycle),
                u64::from(d.dma.descriptor_cycles),
            ),
            crypto: crate::accel::crypto::CryptoEngines::new(
                crypto_id,
                d.crypto.engines as usize,
                d.crypto.queues_per_engine as usize,
                d.crypto.key_slots as usize,
                crate::accel::crypto::CryptoTiming {
                    aes_bytes_per_cycle: u64::from(d.crypto.aes_bytes_per_cycle),
                    sha_bytes_per_cycle: u64::from(d.crypto.sha_bytes_per_cycle),
                    descriptor_cycles: u64::from(d.crypto.descriptor_cycles),
                    data_unit_cycles: u64::from(d.crypto.data_unit_cycles),
                },
            ),
            ec: crate::accel::ec::EcEngine::new(
                ec_id,
                d.ec.queues as usize,
                d.ec.max_k as u8,
                d.ec.max_m as u8,
                u64::from(d.ec.bytes_per_cycle),
                u64::from(d.ec.descriptor_cycles),
                u64::from(d.ec.invert_cycles_per_row),
            ),
            trng: crate::accel::trng::Trng::new(0, d.trng.min_entropy_bits, d.trng.irq, Default::default()),
            host_mem: Rc::new(RefCell::new(HostMemory::new())),
            bootcfg: vec![0; d.bootcfg.size as usize],
            spi: crate::dev::spi::Spi::new(crate::dev::nor_flash::NorFlash::new(
                crate::dev::nor_flash::FlashSpec::from_board(board, chip.chip.clock_hz),
                crate::dev::nor_flash::FlashArray::erased(board.flash.size),
            )),
            otp: crate::dev::otp::Otp::new(d.otp.words as usize, dpu_targets::ns_to_cycles(d.otp.program_ns, chip.chip.clock_hz).max(1)),
            mmio_stall: 0,
            power_cut: false,
            warm_restart: false,
            iotrace: None,
            breakpoints: Default::default(),
            net: crate::net::network::Network::new(
                net_id,
                crate::net::nic::Nic::new(
                    d.nic.ports as usize,
                    d.nic.queues_per_port as usize,
                    &board
                        .network
                        .ports
                        .iter()
                        .map(|p| (dpu_targets::parse_mac(&p.mac).unwrap_or([2, 0, 0, 0, 0, 1]), p.speed_gbps))
                        .collect::<Vec<_>>(),
                    u64::from(d.nic.bytes_per_cycle),
                    u64::from(d.nic.descriptor_cycles),
                ),
                chip.chip.clock_hz,
            ),
            ssds: crate::ssd::bay::SsdBay::new(
                ssd_id,
                (0..board.ssd.count as usize)
                    .map(|i| crate::ssd::Ssd::new(i, crate::ssd::Profile::from_board(&board.ssd, chip.chip.clock_hz)))
                    .collect(),
            ),
        }
    }

    /// Runs a bus-side component's handler for an event addressed to it;
    /// `false` if `e` is not for a component registered here (the
    /// machine handles it).
    #[inline]
    pub fn deliver(&mut self, e: crate::event::Event, now: u64) -> bool {
        match self.routes.get(e.to.index()) {
            Some(Some(route)) => {
                route(self, now, e.payload);
                true
            }
            _ => false,
        }
    }

    /// Runs `f` with the device components and the context they act
    /// through, then applies what their memory writes did to code.
    #[inline]
    pub fn with_devices<T>(&mut self, now: u64, f: impl FnOnce(&mut Devices<'_>, &mut DevCtx<'_>) -> T) -> T {
        let t = {
            let Bus { mem, res, events, mailbox, plic, lines, pcie, link, host_mem, host_id, iotrace, otp, dma, crypto, ec, ssds, net, .. } = self;
            let mut ctx = DevCtx {
                now,
                mem: LocalMem { mem, res },
                events,
                irq: Irq { mailbox, plic, lines },
                pcie: PcieSide { endpoint: pcie, link, host_mem, host: *host_id },
                iotrace: iotrace.as_deref(),
                fuses: otp,
            };
            let mut devices = Devices { dma, crypto, ec, ssds, net };
            f(&mut devices, &mut ctx)
        };
        t
    }

    /// Carries out PCIe endpoint effects at time `now` (see
    /// [`DevCtx::apply_effects`]).
    pub fn apply_effects(&mut self, now: u64, effects: &mut Vec<crate::pcie::Effect>) {
        if !effects.is_empty() {
            self.with_devices(now, |_, ctx| ctx.apply_effects(effects));
        }
    }

    /// A host access arriving at the endpoint at `now`
    /// ([`crate::pcie::host_access`]).
    pub fn host_access(&mut self, op: crate::pcie::HostOp, now: u64) -> crate::pcie::HostReply {
        self.with_devices(now, |_, ctx| crate::pcie::host_access::host_access(op, ctx))
    }

    /// Power goes away now: the flash and the OTP stop where they are,
    /// and the run ends.
    pub fn power_off(&mut self, now: u64) {
        self.spi.flash.power_cut(now);
        self.otp.power_cut(now);
        self.power_cut = true;
    }

    /// Schedules a power cut at cycle `at` (`dpusim --power-cut-at`).
    pub fn power_cut_at(&mut self, at: u64) {
        self.events.push(at, self.power_id, Payload::default());
    }

    fn device(&self, addr: u64) -> Option<(Dev, u64)> {
        self.mmio.iter().find(|(b, e, _)| addr >= *b && addr < *e).map(|&(b, _, d)| (d, addr - b))
    }

    /// Device register read. `None` = access fault (no device, bad size or alignment).
    pub fn mmio_read(&mut self, hart: u32, now: u64, addr: u64, size: u8) -> Option<u64> {
        if addr % u64::from(size) != 0 {
            return None;
        }
        let (dev, off) = self.device(addr)?;
        self.mmio_accesses += 1;
        match dev {
            Dev::Finisher => (size == 4).then_some(0),
            Dev::Clint => self.clint.read(now, off, size),
            Dev::Plic => self.plic.read(off, size, &mut self.lines),
            Dev::Uart => self.uart.read(off, size),
            Dev::Trace => None,
            Dev::Mailbox => {
                let _ = hart;
                self.mailbox.read(off, size)
            }
            Dev::Pcie => self.pcie.dpu_read(off, size),
            Dev::Dma => self.dma.read(off, size),
            Dev::Nic => self.net.nic.read(off, size),
            Dev::Crypto => self.crypto.read(off, size),
            Dev::Ec => self.ec.read(off, size),
            Dev::Trng => {
                let v = self.trng.read(off, size);
                self.trng_irq();
                v
            }
            Dev::BootCfg => {
                let o = off as usize;
                let b = self.bootcfg.get(o..o + size as usize)?;
                let mut v = [0u8; 8];
                v[..b.len()].copy_from_slice(b);
                Some(u64::from_le_bytes(v))
            }
            Dev::Spi => {
                let (v, stall) = self.spi.read(off, size, now)?;
                self.mmio_stall = stall;
                Some(v)
            }
            Dev::Otp => self.otp.read(off, size, now),
            Dev::Ssd => self.ssds.mmio_read(off, size),
        }
    }

    /// Device register write. `false` = access fault.
    pub fn mmio_write(&mut self, hart: u32, now: u64, addr: u64, size: u8, v: u64) -> bool {
        if addr % u64::from(size) != 0 {
            return false;
        }
        let Some((dev, off)) = self.device(addr) else { return false };
        self.mmio_accesses += 1;
        match dev {
            Dev::Finisher => {
                if size != 4 || off != 0 {
                    return false;
                }
                if v as u32 & 0xffff == dpu_hal::regs::finisher::WARM_RESTART {
                    self.warm_restart = true;
                } else if let Some(f) = finisher::decode(hart, v as u32) {
                    self.finish.get_or_insert(f);
                }
                true
            }
            Dev::Clint => self.clint.write(now, off, size, v, &mut self.lines, &mut self.events),
            Dev::Plic => self.plic.write(off, size, v, &mut self.lines),
            Dev::Uart => self.uart.write(hart, now, off, size, v, &mut self.console),
            Dev::Trace => {
                if self.trace.unresolved() {
                    self.trace.resolve(&mut self.mem);
                }
                self.trace.write(hart, now, off, size, v, &mut self.console)
            }
            Dev::Mailbox => self.mailbox.write(off, size, v, &mut self.plic, &mut self.lines),
            Dev::Pcie => {
                let mut fx = Vec::new();
                let ok = self.pcie.dpu_write(off, size, v, &mut fx);
                self.apply_effects(now, &mut fx);
                ok
            }
            Dev::Dma => match self.dma.write(off, size, v) {
                Ok(Some(ch)) => {
                    self.with_devices(now, |d, ctx| d.dma.kick(ch, ctx));
                    true
                }
                Ok(None) => true,
                Err(()) => false,
            },
            Dev::Nic => match self.net.nic.write(off, size, v) {
                Ok(crate::net::nic::Kick::Tx(p, q)) => {
                    self.with_devices(now, |d, ctx| d.net.nic_tx_kick(p, q, ctx));
                    true
                }
                Ok(_) => true,
                Err(()) => false,
            },
            Dev::Crypto => match self.crypto.write(off, size, v) {
                Ok(Some((e, q))) => {
                    self.with_devices(now, |d, ctx| d.crypto.kick(e, q, ctx));
                    true
                }
                Ok(None) => true,
                Err(()) => false,
            },
            Dev::Ec => match self.ec.write(off, size, v) {
                Ok(Some(q)) => {
                    self.with_devices(now, |d, ctx| d.ec.kick(q, ctx));
                    true
                }
                Ok(None) => true,
                Err(()) => false,
            },
            Dev::Trng => {
                let ok = self.trng.write(off, size, v);
                self.trng_irq();
                ok
            }
            Dev::BootCfg => false,
            Dev::Spi => match self.spi.write(off, size, v, now) {
                Some(stall) => {
                    self.mmio_stall = stall;
                    if let Some(at) = self.spi.flash.cut_at.take() {
                        self.power_cut_at(at);
                    }
                    true
                }
                None => false,
            },
            Dev::Otp => self.otp.write(off, size, v, now),
            Dev::Ssd => self.with_devices(now, |d, ctx| d.ssds.mmio_write(off, size, v, ctx)),
        }
    }

    /// Drives the TRNG's health-failure line into the PLIC.
    pub fn trng_irq(&mut self) {
        if self.trng.irq_pending {
            self.trng.irq_pending = false;
            let irq = self.trng.irq;
            self.plic.set_level(irq, true, &mut self.lines);
            self.plic.set_level(irq, false, &mut self.lines);
        }
    }

    // ------------------------------------------------------------ LR / SC

    /// Places hart `h`'s reservation on `addr`.
    #[inline]
    pub fn reserve(&mut self, h: u32, addr: u64) {
        self.res.reserve(h, addr);
    }

    /// Consumes hart `h`'s reservation; true if it still covered `addr`.
    #[inline]
    pub fn take_reservation(&mut self, h: u32, addr: u64) -> bool {
        self.res.take(h, addr)
    }

    /// A store to `[addr, addr+size)` breaks every reservation on it.
    #[inline(always)]
    pub fn snoop_store(&mut self, addr: u64, size: u64) {
        self.res.snoop_store(addr, size);
    }

    /// A warm restart (`regs::finisher::WARM_RESTART`): the card-internal
    /// devices go back to their reset state; the PCIe endpoint keeps its
    /// host-visible side (configuration, BAR0, MSI-X) and loses only the
    /// firmware's doorbell steering and the notifications not yet taken;
    /// memory, flash, OTP, the host, local SSDs and the network beyond the
    /// NIC stay. Events already queued for the old devices find nothing in
    /// flight and do nothing.
    pub fn card_reset(&mut self, chip: &Chip, board: &Board) {
        let harts = chip.harts() as usize;
        let d = &chip.devices;
        self.lines.fill(0);
        self.res.clear();
        self.clint = Clint::new(harts, chip.chip.clock_hz / chip.chip.timebase_hz, self.clint.id);
        self.plic = Plic::new(d.plic.sources, harts);
        self.mailbox = Mailbox::new(harts, d.mailbox.irq_base);
        self.trace.restart();
        self.pcie.card_reset();
        let fresh = Bus::new(chip, board, crate::mem::Memory::new(Vec::new()), TracePort::new(0, None));
        self.dma = fresh.dma;
        self.crypto = fresh.crypto;
        self.ec = fresh.ec;
        self.net.nic = fresh.net.nic;
        self.mmio_stall = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> Bus {
        let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
        let board = Board::load(dpu_targets::default_board_path()).unwrap();
        let mem = crate::machine::memory_for(&chip);
        Bus::new(&chip, &board, mem, TracePort::new(chip.harts() as usize, None))
    }

    /// A store or DMA write breaks the reservations on every granule it
    /// touches (not only its first and last), and only those (RISC-V
    /// unprivileged spec §8.2: a store to the reservation set by another
    /// hart or device makes the SC fail).
    #[test]
    fn writes_break_the_reservations_they_touch() {
        let mut b = bus();
        let base = 0x8000_0000u64;
        // A 512-byte DMA write over granules 0..8 breaks a reservation in
        // granule 2, in the middle.
        b.reserve(1, base + 2 * RESERVATION_GRANULE + 8);
        b.snoop_store(base, 512);
        assert!(!b.take_reservation(1, base + 2 * RESERVATION_GRANULE + 8), "a reservation inside a DMA write survived");
        // A store 4 KiB away (the same summary bit) keeps it.
        b.reserve(1, base + 16);
        b.snoop_store(base + 4096 + 16, 8);
        assert!(b.take_reservation(1, base + 16));
        // A store into the granule breaks it; one next to it does not.
        b.reserve(2, base + 64);
        b.reserve(3, base + 256);
        b.snoop_store(base + 120, 8);
        assert!(!b.take_reservation(2, base + 64));
        assert!(b.take_reservation(3, base + 256));
        // A store straddling two granules breaks both.
        b.reserve(4, base + 1024);
        b.reserve(5, base + 1088);
        b.snoop_store(base + 1084, 8);
        assert!(!b.take_reservation(4, base + 1024) && !b.take_reservation(5, base + 1088));
        assert_eq!((b.res.active, b.res.bits), (0, 0), "no reservation held: summary cleared");
    }

    /// A device's write (through its `DevCtx`) onto a code page is
    /// recorded in memory before the bus hands control back (the harts'
    /// code cache drops what it overlaps before any hart runs again: see
    /// `cpu::code`), and breaks the reservations on the bytes it wrote; a
    /// write to a page no code was decoded from is not recorded.
    #[test]
    fn a_device_write_to_code_is_recorded_for_the_code_cache() {
        let mut b = bus();
        let base = b.mem.regions().iter().find(|r| r.writable).unwrap().base;
        b.mem.write_bytes(base, &[0x13, 0, 0, 0, 0x13, 0, 0, 0]).unwrap(); // two `nop`s
        let slot = b.mem.page_slot(base >> crate::mem::PAGE_SHIFT).unwrap();
        b.mem.mark_code(slot);
        b.reserve(7, base + 4);
        b.with_devices(0, |_, ctx| ctx.mem.write(base + 4, &[0x13, 0, 0, 0]));
        assert_eq!(b.mem.take_code_writes(), vec![(base + 4, 4)]);
        assert!(!b.take_reservation(7, base + 4), "the device write broke the reservation");
        b.with_devices(0, |_, ctx| ctx.mem.write(base + 0x10000, &[1, 2, 3, 4]));
        assert!(!b.mem.code_written(), "not a code page: nothing recorded");
    }
}
