//! SPI NOR boot flash model (Micron MT25QL512ABB class; geometry, JEDEC ID
//! and timing from `targets/boards/*.toml` `[flash]`), behind the SPI
//! controller (`dev::spi`). Command set: `dpu_hal::regs::spi_nor`.
//!
//! What it models, after the MT25Q datasheet:
//! * a command is the bytes between CS# falling and rising; PAGE PROGRAM
//!   and the ERASE commands start on CS# rising, only with the write
//!   enable latch set (WRITE ENABLE), and clear it when they end;
//! * while a program or erase runs (status WIP = 1) every command but
//!   READ STATUS / READ FLAG STATUS is ignored; it lasts the typical
//!   tPP / tSSE / tSE of the board file;
//! * programming only clears bits (new = old AND data); a page program
//!   wraps inside its 256-byte page; erase sets a 4 KiB subsector or a
//!   64 KiB sector to FFh;
//! * 3-byte commands address the first 16 MiB unless ENTER 4-BYTE ADDRESS
//!   MODE was given; the 4-byte opcodes always take 4 address bytes.
//!
//! Power cuts: [`NorFlash::power_cut`] stops the array at any point of a
//! running program or erase. Programs and erases progress byte by byte,
//! in address order, over their duration: a cut leaves the bytes before
//! the cut point done, the byte at the cut half done (half the bits it
//! was clearing, or setting), and the rest untouched, like a real part
//! that leaves an interrupted operation in an undefined mix. Every
//! operation is recorded in a [`Journal`] so a test can rebuild the flash
//! as a cut at any other moment would have left it ([`Journal::replay`]).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use dpu_hal::regs::spi_nor as cmd;

/// Storage granule of the model (the subsector size of the part; a
/// granule never written reads FFh and costs no memory).
const BLOCK: usize = 4096;

/// Geometry, identity and timing of the part (cycles at the core clock).
#[derive(Clone, Debug)]
pub struct FlashSpec {
    pub size: u64,
    pub jedec_id: [u8; 3],
    pub page: u64,
    pub subsector: u64,
    pub sector: u64,
    pub page_program: u64,
    pub subsector_erase: u64,
    pub sector_erase: u64,
}

impl FlashSpec {
    /// From the board description, with times in cycles of `clock_hz`.
    pub fn from_board(board: &dpu_targets::Board, clock_hz: u64) -> FlashSpec {
        let f = &board.flash;
        let c = |ns: u64| dpu_targets::ns_to_cycles(ns, clock_hz).max(1);
        FlashSpec {
            size: f.size,
            jedec_id: f.jedec_id,
            page: f.page_size,
            subsector: f.subsector_size,
            sector: f.sector_size,
            page_program: c(f.page_program_ns),
            subsector_erase: c(f.subsector_erase_ns),
            sector_erase: c(f.sector_erase_ns),
        }
    }
}

/// The memory array: sparse 4 KiB blocks, erased (FFh) when absent.
#[derive(Clone, Debug)]
pub struct FlashArray {
    size: u64,
    blocks: Vec<Option<Box<[u8; BLOCK]>>>,
    /// Blocks changed since the array was loaded or last saved.
    dirty: Vec<bool>,
}

impl FlashArray {
    /// An erased array of `size` bytes.
    pub fn erased(size: u64) -> FlashArray {
        let n = (size as usize).div_ceil(BLOCK);
        FlashArray { size, blocks: vec![None; n], dirty: vec![false; n] }
    }

    /// An array holding `bytes` (FFh after them).
    pub fn from_bytes(size: u64, bytes: &[u8]) -> FlashArray {
        let mut a = FlashArray::erased(size);
        for (i, chunk) in bytes.chunks(BLOCK).enumerate().take(a.blocks.len()) {
            if chunk.iter().any(|&b| b != 0xff) {
                let mut b = Box::new([0xffu8; BLOCK]);
                b[..chunk.len()].copy_from_slice(chunk);
                a.blocks[i] = Some(b);
            }
        }
        a
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn read_byte(&self, addr: u64) -> u8 {
        let a = (addr % self.size) as usize;
        self.blocks[a / BLOCK].as_ref().map_or(0xff, |b| b[a % BLOCK])
    }

    /// Copies `out.len()` bytes from `addr` (wrapping at the end).
    pub fn read(&self, addr: u64, out: &mut [u8]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.read_byte(addr + i as u64);
        }
    }

    fn set_byte(&mut self, addr: u64, v: u8) {
        let a = (addr % self.size) as usize;
        let blk = &mut self.blocks[a / BLOCK];
        if blk.is_none() {
            if v == 0xff {
                return;
            }
            *blk = Some(Box::new([0xff; BLOCK]));
        }
        if let Some(b) = blk {
            b[a % BLOCK] = v;
        }
        self.dirty[a / BLOCK] = true;
    }

    /// Writes bytes as they are (image building, tests): no NOR rules.
    pub fn write_raw(&mut self, addr: u64, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            self.set_byte(addr + i as u64, v);
        }
    }

    /// The whole array as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0xffu8; self.size as usize];
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(b) = b {
                let end = ((i + 1) * BLOCK).min(v.len());
                v[i * BLOCK..end].copy_from_slice(&b[..end - i * BLOCK]);
            }
        }
        v
    }

    /// Loads an image file; it must not be larger than the flash (a
    /// shorter file reads FFh after its end).
    pub fn load(path: &Path, size: u64) -> Result<FlashArray, String> {
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
        if len > size {
            return Err(format!("{}: {len} bytes, larger than the board's {size}-byte flash", path.display()));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(FlashArray::from_bytes(size, &bytes))
    }

    /// Writes the blocks changed since loading into `path` (a new file
    /// gets the array up to its last written block: the erased tail of a
    /// flash image is left out, and reads back as FFh), then forgets they
    /// changed.
    pub fn save(&mut self, path: &Path) -> Result<(), String> {
        let e = |x: std::io::Error| format!("{}: {x}", path.display());
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(_) => {
                let end = self.blocks.iter().rposition(Option::is_some).map_or(0, |i| ((i + 1) * BLOCK).min(self.size as usize));
                std::fs::write(path, &self.to_bytes()[..end]).map_err(e)?;
                self.dirty.fill(false);
                return Ok(());
            }
        };
        let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(e)?;
        let mut len = len;
        for i in 0..self.blocks.len() {
            if !self.dirty[i] {
                continue;
            }
            let at = (i * BLOCK) as u64;
            let bytes = self.blocks[i].as_deref().copied().unwrap_or([0xff; BLOCK]);
            // An erased block past the file's end reads FFh already.
            if at >= len && bytes.iter().all(|&b| b == 0xff) {
                continue;
            }
            if at > len {
                // Erased flash between the file's end and this block.
                f.seek(SeekFrom::Start(len)).map_err(e)?;
                f.write_all(&vec![0xff; (at - len) as usize]).map_err(e)?;
            }
            let n = (self.size - at).min(BLOCK as u64) as usize;
            f.seek(SeekFrom::Start(at)).map_err(e)?;
            f.write_all(&bytes[..n]).map_err(e)?;
            len = len.max(at + n as u64);
        }
        self.dirty.fill(false);
        Ok(())
    }

    /// Applies operation `op` as far as `done` of `total` progress units
    /// (bytes, in address order): complete bytes, then one half-done byte.
    fn apply(&mut self, op: &Op, done: u128, total: u128) {
        let len = op.len() as u128;
        let num = done * len;
        let (full, part) = ((num / total) as usize, num % total != 0);
        for i in 0..(op.len() as usize).min(full) {
            self.apply_byte(op, i, false);
        }
        if part && full < op.len() as usize {
            self.apply_byte(op, full, true);
        }
    }

    fn apply_byte(&mut self, op: &Op, i: usize, half: bool) {
        let addr = op.byte_addr(i);
        let old = self.read_byte(addr);
        let new = match &op.kind {
            OpKind::Program(data) => {
                let clear = old & !data[i];
                // Half done: the lower half of the bits being cleared.
                let clear = if half { clear & low_half(clear) } else { clear };
                old & !clear
            }
            OpKind::Erase => {
                let set = !old;
                let set = if half { set & low_half(set) } else { set };
                old | set
            }
        };
        self.set_byte(addr, new);
    }
}

/// The lowest half (rounded up) of the set bits of `bits`.
fn low_half(bits: u8) -> u8 {
    let keep = bits.count_ones().div_ceil(2);
    let mut out = 0u8;
    let mut n = 0;
    for b in 0..8 {
        if bits & (1 << b) != 0 && n < keep {
            out |= 1 << b;
            n += 1;
        }
    }
    out
}

/// A program or erase operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Bytes for `addr`, `addr+1`, ... (wrapping inside the page).
    Program(Vec<u8>),
    Erase,
}

/// One program or erase the array carried out (or was carrying out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    /// Program: start address; erase: unit base.
    pub addr: u64,
    /// Program: page size (wrap); erase: unit size.
    pub unit: u64,
    pub start: u64,
    pub end: u64,
}

impl Op {
    /// Bytes the operation changes.
    pub fn len(&self) -> u64 {
        match &self.kind {
            OpKind::Program(d) => d.len() as u64,
            OpKind::Erase => self.unit,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn byte_addr(&self, i: usize) -> u64 {
        match &self.kind {
            OpKind::Program(_) => {
                let page = self.addr & !(self.unit - 1);
                page + ((self.addr + i as u64) & (self.unit - 1))
            }
            OpKind::Erase => self.addr + i as u64,
        }
    }
}

/// Every program and erase of a run, in order, with its time span.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub ops: Vec<Op>,
}

impl Journal {
    /// The array as a power cut at cycle `cut` would have left it, given
    /// the array `before` the journaled run.
    pub fn replay(&self, before: &FlashArray, cut: u64) -> FlashArray {
        let mut a = before.clone();
        for op in &self.ops {
            if op.start >= cut {
                break;
            }
            let total = u128::from(op.end - op.start).max(1);
            let done = u128::from(cut.min(op.end) - op.start);
            a.apply(op, done, total);
        }
        a
    }

    /// Program/erase bytes of the whole journal.
    pub fn bytes(&self) -> u64 {
        self.ops.iter().map(Op::len).sum()
    }

    /// The cycle at which `n` program/erase bytes of the journal are done
    /// (a cut then leaves exactly those bytes written); `None` past the end.
    pub fn cycle_after_bytes(&self, mut n: u64) -> Option<u64> {
        for op in &self.ops {
            let len = op.len();
            if n < len {
                let d = u128::from(op.end - op.start) * u128::from(n) / u128::from(len.max(1));
                return Some(op.start + d as u64);
            }
            n -= len;
        }
        None
    }
}

/// Where a command is.
#[derive(Clone, Debug)]
enum Phase {
    /// Waiting for the opcode.
    Opcode,
    /// Collecting address bytes for `op` (`need` in total).
    Address { op: u8, need: usize },
    /// Reading from `addr` (after `dummy` more dummy bytes).
    Read { addr: u64, dummy: usize },
    /// Page program data for `addr`.
    Program { addr: u64, data: Vec<u8> },
    /// An erase of `unit` bytes at `addr`, waiting for CS# rising.
    Erase { addr: u64, unit: u64 },
    /// READ ID answer position.
    Id(usize),
    /// Status / flag status polling.
    Status(u8),
    /// A command taking no more bytes (executes on CS# rising).
    Simple(u8),
    /// Ignored (busy, unknown opcode, too many bytes).
    Ignore,
}

/// The flash chip: array, command decoder, status, running operation.
pub struct NorFlash {
    pub spec: FlashSpec,
    pub array: FlashArray,
    phase: Phase,
    addr_bytes: Vec<u8>,
    selected: bool,
    wel: bool,
    addr4: bool,
    reset_enabled: bool,
    busy: Option<Op>,
    /// Every program and erase (for power-cut replays).
    pub journal: Journal,
    /// Power is cut once this many program/erase bytes are done
    /// ([`NorFlash::cut_after_bytes`]).
    cut_budget: Option<u64>,
    bytes_started: u64,
    /// Set when an operation started that the cut budget ends: the cycle
    /// of the cut (the machine schedules a power cut there).
    pub cut_at: Option<u64>,
    /// Power is off: nothing responds.
    pub off: bool,
}

impl NorFlash {
    pub fn new(spec: FlashSpec, array: FlashArray) -> NorFlash {
        NorFlash {
            spec,
            array,
            phase: Phase::Opcode,
            addr_bytes: Vec::new(),
            selected: false,
            wel: false,
            addr4: false,
            reset_enabled: false,
            busy: None,
            journal: Journal::default(),
            cut_budget: None,
            bytes_started: 0,
            cut_at: None,
            off: false,
        }
    }

    /// Cut power once `n` more program/erase bytes are done.
    pub fn cut_after_bytes(&mut self, n: u64) {
        self.cut_budget = Some(self.bytes_started + n);
    }

    /// Completes the running operation if it is over at `now`.
    fn settle(&mut self, now: u64) {
        if let Some(op) = &self.busy {
            if now >= op.end {
                let op = self.busy.take().expect("checked");
                self.array.apply(&op, 1, 1);
                self.wel = false;
            }
        }
    }

    /// Whether a program or erase is running.
    pub fn busy(&mut self, now: u64) -> bool {
        self.settle(now);
        self.busy.is_some()
    }

    /// Status register (READ STATUS).
    fn status(&mut self, now: u64) -> u8 {
        self.settle(now);
        u8::from(self.busy.is_some()) * cmd::SR_WIP | u8::from(self.wel) * cmd::SR_WEL
    }

    /// CS# falls.
    pub fn select(&mut self, now: u64) {
        self.settle(now);
        self.selected = true;
        self.phase = Phase::Opcode;
        self.addr_bytes.clear();
    }

    /// One byte each way while selected.
    pub fn exchange(&mut self, out: u8, now: u64) -> u8 {
        if !self.selected || self.off {
            return 0xff;
        }
        match std::mem::replace(&mut self.phase, Phase::Ignore) {
            Phase::Opcode => {
                self.settle(now);
                let busy = self.busy.is_some();
                self.phase = match out {
                    cmd::READ_STATUS | cmd::READ_FLAG_STATUS => Phase::Status(out),
                    _ if busy => Phase::Ignore,
                    cmd::READ_ID => Phase::Id(0),
                    cmd::READ | cmd::FAST_READ | cmd::PAGE_PROGRAM | cmd::SUBSECTOR_ERASE | cmd::SECTOR_ERASE => {
                        Phase::Address { op: out, need: if self.addr4 { 4 } else { 3 } }
                    }
                    cmd::READ4 | cmd::FAST_READ4 | cmd::PAGE_PROGRAM4 | cmd::SUBSECTOR_ERASE4 | cmd::SECTOR_ERASE4 => {
                        Phase::Address { op: out, need: 4 }
                    }
                    cmd::WRITE_ENABLE | cmd::WRITE_DISABLE | cmd::ENTER_4BYTE | cmd::EXIT_4BYTE | cmd::RESET_ENABLE | cmd::RESET_MEMORY => {
                        Phase::Simple(out)
                    }
                    _ => Phase::Ignore,
                };
                0xff
            }
            Phase::Address { op, need } => {
                self.addr_bytes.push(out);
                if self.addr_bytes.len() < need {
                    self.phase = Phase::Address { op, need };
                    return 0xff;
                }
                let addr = self.addr_bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)) % self.spec.size;
                self.phase = match op {
                    cmd::READ | cmd::READ4 => Phase::Read { addr, dummy: 0 },
                    cmd::FAST_READ | cmd::FAST_READ4 => Phase::Read { addr, dummy: 1 },
                    cmd::PAGE_PROGRAM | cmd::PAGE_PROGRAM4 => Phase::Program { addr, data: Vec::new() },
                    cmd::SUBSECTOR_ERASE | cmd::SUBSECTOR_ERASE4 => Phase::Erase { addr: addr & !(self.spec.subsector - 1), unit: self.spec.subsector },
                    _ => Phase::Erase { addr: addr & !(self.spec.sector - 1), unit: self.spec.sector },
                };
                0xff
            }
            Phase::Read { addr, dummy } => {
                if dummy > 0 {
                    self.phase = Phase::Read { addr, dummy: dummy - 1 };
                    return 0xff;
                }
                self.phase = Phase::Read { addr: (addr + 1) % self.spec.size, dummy: 0 };
                self.array.read_byte(addr)
            }
            Phase::Program { addr, mut data } => {
                // More than a page: the last page's worth is kept.
                if data.len() as u64 == self.spec.page {
                    data.remove(0);
                    let a = (addr & !(self.spec.page - 1)) + ((addr + 1) & (self.spec.page - 1));
                    data.push(out);
                    self.phase = Phase::Program { addr: a, data };
                } else {
                    data.push(out);
                    self.phase = Phase::Program { addr, data };
                }
                0xff
            }
            Phase::Id(i) => {
                self.phase = Phase::Id(i + 1);
                // Manufacturer, type, capacity, then the extended ID
                // length and bytes (10h: 16 more bytes; zero here).
                match i {
                    0..=2 => self.spec.jedec_id[i],
                    3 => 0x10,
                    _ => 0x00,
                }
            }
            Phase::Status(op) => {
                self.phase = Phase::Status(op);
                let sr = self.status(now);
                if op == cmd::READ_STATUS {
                    sr
                } else {
                    u8::from(sr & cmd::SR_WIP == 0) * cmd::FSR_READY | u8::from(self.addr4) * cmd::FSR_ADDR4
                }
            }
            p @ (Phase::Erase { .. } | Phase::Simple(_)) => {
                // Extra bytes make the command invalid: it is not executed.
                let _ = p;
                self.phase = Phase::Ignore;
                0xff
            }
            Phase::Ignore => 0xff,
        }
    }

    /// CS# rises: a complete program, erase or simple command executes.
    pub fn deselect(&mut self, now: u64) {
        if !self.selected {
            return;
        }
        self.selected = false;
        if self.off {
            return;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Opcode);
        let reset_enabled = std::mem::take(&mut self.reset_enabled);
        match phase {
            Phase::Simple(cmd::WRITE_ENABLE) => self.wel = true,
            Phase::Simple(cmd::WRITE_DISABLE) => self.wel = false,
            Phase::Simple(cmd::ENTER_4BYTE) => self.addr4 = true,
            Phase::Simple(cmd::EXIT_4BYTE) => self.addr4 = false,
            Phase::Simple(cmd::RESET_ENABLE) => self.reset_enabled = true,
            Phase::Simple(cmd::RESET_MEMORY) if reset_enabled => {
                self.wel = false;
                self.addr4 = false;
            }
            Phase::Program { addr, data } if self.wel && !data.is_empty() => {
                let (start, end) = (now, now + self.spec.page_program);
                self.start(Op { kind: OpKind::Program(data), addr, unit: self.spec.page, start, end });
            }
            Phase::Erase { addr, unit } if self.wel => {
                let t = if unit == self.spec.sector { self.spec.sector_erase } else { self.spec.subsector_erase };
                self.start(Op { kind: OpKind::Erase, addr, unit, start: now, end: now + t });
            }
            _ => {}
        }
    }

    fn start(&mut self, op: Op) {
        let len = op.len();
        if let Some(limit) = self.cut_budget {
            if self.cut_at.is_none() && self.bytes_started + len > limit {
                let k = limit - self.bytes_started;
                self.cut_at = Some(op.start + ((u128::from(op.end - op.start) * u128::from(k)) / u128::from(len.max(1))) as u64);
            }
        }
        self.bytes_started += len;
        self.journal.ops.push(op.clone());
        self.busy = Some(op);
    }

    /// The run ends with the power on: a running program or erase
    /// completes (its time is up before anyone could look).
    pub fn finish(&mut self, _now: u64) {
        if let Some(op) = self.busy.take() {
            self.array.apply(&op, 1, 1);
            self.wel = false;
        }
    }

    /// Power goes away at `now`: a running program or erase stops where it
    /// is (see the module doc); nothing responds afterwards.
    pub fn power_cut(&mut self, now: u64) {
        if let Some(op) = self.busy.take() {
            if now >= op.end {
                self.array.apply(&op, 1, 1);
            } else {
                let total = u128::from(op.end - op.start).max(1);
                self.array.apply(&op, u128::from(now.saturating_sub(op.start)), total);
            }
        }
        self.off = true;
        self.selected = false;
    }

    /// Finishes whatever runs (the end of a simulation is not a power cut:
    /// the operation completes as it would on the card).
    pub fn complete(&mut self) {
        if let Some(op) = self.busy.take() {
            self.array.apply(&op, 1, 1);
            self.wel = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FlashSpec {
        FlashSpec {
            size: 1 << 26,
            jedec_id: [0x20, 0xba, 0x20],
            page: 256,
            subsector: 4096,
            sector: 65536,
            page_program: 120_000,
            subsector_erase: 50_000_000,
            sector_erase: 150_000_000,
        }
    }

    /// Runs one command (CS# low, bytes, CS# high) at `now`; returns what came back.
    fn command(f: &mut NorFlash, now: u64, bytes: &[u8]) -> Vec<u8> {
        f.select(now);
        let v = bytes.iter().map(|&b| f.exchange(b, now)).collect();
        f.deselect(now);
        v
    }

    fn read4(f: &mut NorFlash, now: u64, addr: u32, n: usize) -> Vec<u8> {
        let mut b = vec![cmd::READ4];
        b.extend_from_slice(&addr.to_be_bytes());
        b.extend(std::iter::repeat_n(0, n));
        command(f, now, &b)[5..].to_vec()
    }

    fn program4(f: &mut NorFlash, now: u64, addr: u32, data: &[u8]) {
        command(f, now, &[cmd::WRITE_ENABLE]);
        let mut b = vec![cmd::PAGE_PROGRAM4];
        b.extend_from_slice(&addr.to_be_bytes());
        b.extend_from_slice(data);
        command(f, now, &b);
    }

    #[test]
    fn jedec_id_and_status() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        assert_eq!(&command(&mut f, 0, &[cmd::READ_ID, 0, 0, 0])[1..], &[0x20, 0xba, 0x20]);
        assert_eq!(command(&mut f, 0, &[cmd::READ_STATUS, 0])[1], 0);
        command(&mut f, 0, &[cmd::WRITE_ENABLE]);
        assert_eq!(command(&mut f, 0, &[cmd::READ_STATUS, 0])[1], cmd::SR_WEL);
        command(&mut f, 0, &[cmd::WRITE_DISABLE]);
        assert_eq!(command(&mut f, 0, &[cmd::READ_STATUS, 0])[1], 0);
    }

    #[test]
    fn program_only_clears_bits_and_takes_tpp() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        program4(&mut f, 1000, 0x0100_0010, &[0xf0, 0x0f]);
        // WIP for tPP; reads are ignored meanwhile.
        assert_eq!(command(&mut f, 1000 + 119_999, &[cmd::READ_STATUS, 0])[1], cmd::SR_WIP | cmd::SR_WEL);
        assert_eq!(read4(&mut f, 1000 + 119_999, 0x0100_0010, 2), vec![0xff, 0xff], "ignored while busy");
        assert_eq!(command(&mut f, 1000 + 120_000, &[cmd::READ_STATUS, 0])[1], 0, "done, WEL cleared");
        assert_eq!(read4(&mut f, 121_000, 0x0100_0010, 2), vec![0xf0, 0x0f]);
        // A second program ANDs: 0xf0 & 0x3c = 0x30; bits never come back.
        program4(&mut f, 200_000, 0x0100_0010, &[0x3c, 0xff]);
        assert_eq!(read4(&mut f, 400_000, 0x0100_0010, 2), vec![0x30, 0x0f]);
    }

    #[test]
    fn program_without_write_enable_does_nothing() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        command(&mut f, 0, &[cmd::PAGE_PROGRAM4, 0, 0, 0, 0, 0x00]);
        assert_eq!(command(&mut f, 0, &[cmd::READ_STATUS, 0])[1], 0, "nothing started");
        assert_eq!(read4(&mut f, 10, 0, 1), vec![0xff]);
    }

    #[test]
    fn page_program_wraps_inside_the_page() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        program4(&mut f, 0, 0x1fe, &[1, 2, 3, 4]);
        assert_eq!(read4(&mut f, 1_000_000, 0x1fe, 2), vec![1, 2]);
        assert_eq!(read4(&mut f, 1_000_000, 0x100, 2), vec![3, 4], "wrapped to the page start");
        assert_eq!(read4(&mut f, 1_000_000, 0x200, 1), vec![0xff], "next page untouched");
    }

    #[test]
    fn erase_sets_ff_with_datasheet_timing() {
        let mut f = NorFlash::new(spec(), FlashArray::from_bytes(1 << 26, &vec![0u8; 0x2_0000]));
        command(&mut f, 0, &[cmd::WRITE_ENABLE]);
        command(&mut f, 0, &[cmd::SUBSECTOR_ERASE4, 0, 0, 0x10, 0x23]); // any address inside
        assert!(f.busy(49_999_999));
        assert!(!f.busy(50_000_000));
        assert_eq!(read4(&mut f, 50_000_000, 0x0fff, 2), vec![0x00, 0xff]);
        assert_eq!(read4(&mut f, 50_000_000, 0x1fff, 2), vec![0xff, 0x00]);
        command(&mut f, 60_000_000, &[cmd::WRITE_ENABLE]);
        command(&mut f, 60_000_000, &[cmd::SECTOR_ERASE4, 0, 1, 0, 0]);
        assert!(f.busy(60_000_000 + 149_999_999));
        assert!(!f.busy(60_000_000 + 150_000_000));
        assert_eq!(read4(&mut f, 300_000_000, 0x1_0000, 1), vec![0xff]);
        assert_eq!(read4(&mut f, 300_000_000, 0xffff, 1), vec![0x00], "sector below untouched");
    }

    #[test]
    fn three_byte_commands_need_4byte_mode_above_16mib() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        f.array.write_raw(0x0100_0000, &[0x5a]);
        f.array.write_raw(0x0000_0000, &[0xa5]);
        assert_eq!(command(&mut f, 0, &[cmd::READ, 0, 0, 0, 0])[4], 0xa5);
        command(&mut f, 0, &[cmd::ENTER_4BYTE]);
        assert_eq!(command(&mut f, 0, &[cmd::READ, 1, 0, 0, 0, 0])[5], 0x5a);
        assert_eq!(command(&mut f, 0, &[cmd::READ_FLAG_STATUS, 0])[1], cmd::FSR_READY | cmd::FSR_ADDR4);
        // FAST READ: one dummy byte.
        assert_eq!(command(&mut f, 0, &[cmd::FAST_READ4, 1, 0, 0, 0, 0, 0])[6], 0x5a);
    }

    #[test]
    fn a_power_cut_leaves_a_partial_program_or_erase() {
        let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
        let data: Vec<u8> = (0..=255u8).map(|i| i & 0x7f).collect();
        program4(&mut f, 0, 0x1000, &data);
        // A quarter of tPP: 64 bytes done, byte 64 half done.
        f.power_cut(30_000 + 30);
        let mut got = [0u8; 256];
        f.array.read(0x1000, &mut got);
        assert_eq!(&got[..64], &data[..64]);
        assert_ne!(got[64], 0xff & data[64], "half done");
        assert_eq!(got[64] & data[64], data[64], "only bits being cleared were touched");
        assert!(got[65..].iter().all(|&b| b == 0xff));
        // Nothing answers once the power is off.
        assert_eq!(command(&mut f, 40_000, &[cmd::READ_ID, 0])[1], 0xff);

        let mut f = NorFlash::new(spec(), FlashArray::from_bytes(1 << 26, &vec![0x00u8; 0x1000]));
        command(&mut f, 0, &[cmd::WRITE_ENABLE]);
        command(&mut f, 0, &[cmd::SUBSECTOR_ERASE4, 0, 0, 0, 0]);
        f.power_cut(25_000_000);
        let mut got = vec![0u8; 4096];
        f.array.read(0, &mut got);
        assert!(got[..2048].iter().all(|&b| b == 0xff) && got[2048..].iter().all(|&b| b == 0), "half erased");
    }

    #[test]
    fn cut_after_bytes_and_replay_agree() {
        // As the machine does: the power goes at `cut_at`, before any
        // later command.
        let run = |cut: Option<u64>| {
            let mut f = NorFlash::new(spec(), FlashArray::erased(1 << 26));
            if let Some(n) = cut {
                f.cut_after_bytes(n);
            }
            let mut t = 0;
            command(&mut f, t, &[cmd::WRITE_ENABLE]);
            command(&mut f, t, &[cmd::SUBSECTOR_ERASE4, 0, 0, 0, 0]);
            if let Some(at) = f.cut_at {
                return (f, Some(at));
            }
            t += 50_000_000;
            for p in 0..4u32 {
                program4(&mut f, t, p * 256, &[p as u8; 256]);
                if let Some(at) = f.cut_at {
                    return (f, Some(at));
                }
                t += 120_000;
            }
            (f, None)
        };
        let (full, _) = run(None);
        assert_eq!(full.journal.bytes(), 4096 + 4 * 256);
        for n in [0, 1, 4095, 4096, 4096 + 300, 4096 + 1023] {
            let (mut live, at) = run(Some(n));
            let at = at.expect("the cut falls inside the run");
            assert_eq!(Some(at), full.journal.cycle_after_bytes(n));
            live.power_cut(at);
            let replayed = full.journal.replay(&FlashArray::erased(1 << 26), at);
            assert!(live.array.to_bytes()[..8192] == replayed.to_bytes()[..8192], "cut after {n} bytes: the live flash and the replay differ");
        }
    }

    #[test]
    fn save_writes_back_what_changed() {
        let dir = std::env::temp_dir().join(format!("dpu-flash-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.bin");
        let mut a = FlashArray::erased(1 << 20);
        a.write_raw(5, b"abc");
        a.save(&p).unwrap();
        let mut b = FlashArray::load(&p, 1 << 20).unwrap();
        assert_eq!(b.read_byte(6), b'b');
        b.write_raw(0x8_0000, b"z");
        b.save(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0x8_1000, "the erased tail stays out of the file");
        let c = FlashArray::load(&p, 1 << 20).unwrap();
        assert_eq!((c.read_byte(5), c.read_byte(0x8_0000)), (b'a', b'z'));
        assert_eq!(c.read_byte(0x4_0000), 0xff, "the gap reads erased");
        assert!(FlashArray::load(&p, 1 << 19).is_err(), "a file larger than the flash is refused");
    }
}
