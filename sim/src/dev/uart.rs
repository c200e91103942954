//! 16550-subset console UART (`dpu_hal::regs::uart`). Transmit is immediate;
//! output is assembled into lines per writing hart so concurrent writers
//! stay readable. No receive path yet (RBR reads 0, LSR.DR clear).

use crate::console::{Console, Source};
use dpu_hal::regs::uart::{IER, LSR, LSR_THR_EMPTY, LSR_TX_IDLE, RBR, THR};

pub struct Uart {
    regs: [u8; 8],
    line: Vec<Vec<u8>>,
}

impl Uart {
    pub fn new(harts: usize) -> Uart {
        Uart { regs: [0; 8], line: vec![Vec::new(); harts] }
    }

    pub fn read(&self, off: u64, size: u8) -> Option<u64> {
        if size != 1 || off >= 8 {
            return None;
        }
        Some(match off {
            RBR => 0,
            LSR => u64::from(LSR_THR_EMPTY | LSR_TX_IDLE),
            o => u64::from(self.regs[o as usize]),
        })
    }

    pub fn write(&mut self, hart: u32, now: u64, off: u64, size: u8, v: u64, console: &mut Console) -> bool {
        if size != 1 || off >= 8 {
            return false;
        }
        match off {
            THR => {
                let b = v as u8;
                let buf = &mut self.line[hart as usize];
                if b == b'\n' {
                    let text = String::from_utf8_lossy(buf).trim_end_matches('\r').to_string();
                    buf.clear();
                    console.emit(now, hart, Source::Uart, None, text);
                } else if buf.len() < 4096 {
                    buf.push(b);
                }
            }
            IER => self.regs[IER as usize] = v as u8 & 0x0f,
            LSR => {}
            o => self.regs[o as usize] = v as u8,
        }
        true
    }
}
