//! The defmt global logger.
//!
//! Each hart has its own encoder and writes its own byte stream to the trace
//! port (the port demultiplexes by hart), so frames of different harts can
//! never interleave and harts never wait for each other to log. Interrupts
//! are masked on the logging hart for the length of a frame, so an
//! interrupt handler's frame cannot land inside another frame.

use core::cell::UnsafeCell;
use dpu_hal::memory_map::HARTS;

struct HartLog {
    encoder: defmt::Encoder,
    in_frame: bool,
    restore_mie: bool,
}

struct PerHart([UnsafeCell<HartLog>; HARTS]);

// SAFETY: hart h only ever touches slot h (indexed by its own mhartid), with
// interrupts masked while it does.
unsafe impl Sync for PerHart {}

static LOGS: PerHart = PerHart(
    [const { UnsafeCell::new(HartLog { encoder: defmt::Encoder::new(), in_frame: false, restore_mie: false }) };
        HARTS],
);

fn mine() -> &'static mut HartLog {
    let h = dpu_hal::csr::mhartid() as usize;
    // SAFETY: see `PerHart`: only this hart accesses its slot, and the
    // logger is never re-entered on one hart (interrupts are masked and a
    // nested acquire is refused below).
    unsafe { &mut *LOGS.0[h % HARTS].get() }
}

fn emit(bytes: &[u8]) {
    dpu_hal::trace::write(bytes);
}

#[defmt::global_logger]
struct TraceLogger;

// SAFETY: acquire/release bracket each frame on the calling hart; frames
// are per hart (see module docs).
unsafe impl defmt::Logger for TraceLogger {
    fn acquire() {
        let mie = dpu_hal::csr::interrupts_disable();
        let log = mine();
        if log.in_frame {
            // A fault inside the logger itself: give up on this hart.
            dpu_hal::finisher::fault();
            crate::park();
        }
        log.in_frame = true;
        log.restore_mie = mie;
        log.encoder.start_frame(emit);
    }

    unsafe fn flush() {}

    unsafe fn release() {
        let log = mine();
        log.encoder.end_frame(emit);
        log.in_frame = false;
        if log.restore_mie {
            dpu_hal::csr::interrupts_enable();
        }
    }

    unsafe fn write(bytes: &[u8]) {
        mine().encoder.write(bytes, emit);
    }
}
