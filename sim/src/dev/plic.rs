//! PLIC model (RISC-V PLIC spec 1.0.0; layout in `dpu_hal::regs::plic`).
//! One machine-mode context per hart. Sources are level-triggered through a
//! gateway: a high level makes the source pending unless it is claimed and not
//! yet completed; completion re-arms it if the level is still high (§4, §5).

use dpu_hal::regs::csr::MIP_MEIP;
use dpu_hal::regs::plic::*;

pub struct Plic {
    sources: usize,
    priority: Vec<u32>,
    level: Vec<bool>,
    pending: Vec<bool>,
    in_service: Vec<bool>,
    /// enable[ctx][word]
    enable: Vec<Vec<u32>>,
    threshold: Vec<u32>,
}

impl Plic {
    /// `sources` = highest source id (ids are 1..=sources).
    pub fn new(sources: u32, contexts: usize) -> Plic {
        let n = sources as usize + 1;
        let words = n.div_ceil(32);
        Plic {
            sources: sources as usize,
            priority: vec![0; n],
            level: vec![false; n],
            pending: vec![false; n],
            in_service: vec![false; n],
            enable: vec![vec![0; words]; contexts],
            threshold: vec![0; contexts],
        }
    }

    fn enabled(&self, ctx: usize, src: usize) -> bool {
        self.enable[ctx][src / 32] & (1 << (src % 32)) != 0
    }

    /// Best claimable source for a context: highest priority above the
    /// threshold, lowest id on ties.
    fn best(&self, ctx: usize) -> Option<usize> {
        let mut best: Option<(u32, usize)> = None;
        for (w, &en) in self.enable[ctx].iter().enumerate() {
            let mut bits = en;
            while bits != 0 {
                let src = w * 32 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if src == 0 || src > self.sources || !self.pending[src] {
                    continue;
                }
                let p = self.priority[src];
                if p > self.threshold[ctx] && best.is_none_or(|(bp, _)| p > bp) {
                    best = Some((p, src));
                }
            }
        }
        best.map(|(_, s)| s)
    }

    fn update_ctx(&self, ctx: usize, lines: &mut [u64]) {
        if self.best(ctx).is_some() {
            lines[ctx] |= MIP_MEIP;
        } else {
            lines[ctx] &= !MIP_MEIP;
        }
    }

    fn update_source(&self, src: usize, lines: &mut [u64]) {
        for ctx in 0..self.threshold.len() {
            if self.enabled(ctx, src) {
                self.update_ctx(ctx, lines);
            }
        }
    }

    fn update_all(&self, lines: &mut [u64]) {
        for ctx in 0..self.threshold.len() {
            self.update_ctx(ctx, lines);
        }
    }

    /// Drives source `src`'s interrupt line.
    pub fn set_level(&mut self, src: u32, high: bool, lines: &mut [u64]) {
        let s = src as usize;
        if s == 0 || s > self.sources {
            return;
        }
        self.level[s] = high;
        if high && !self.in_service[s] && !self.pending[s] {
            self.pending[s] = true;
            self.update_source(s, lines);
        }
    }

    pub fn read(&mut self, off: u64, size: u8, lines: &mut [u64]) -> Option<u64> {
        if size != 4 || off % 4 != 0 {
            return None;
        }
        let ctxs = self.threshold.len() as u64;
        let v = if off < PENDING {
            let s = (off / 4) as usize;
            *self.priority.get(s)?
        } else if off < ENABLE {
            let w = ((off - PENDING) / 4) as usize;
            let mut v = 0u32;
            for b in 0..32 {
                if self.pending.get(w * 32 + b).copied().unwrap_or(false) {
                    v |= 1 << b;
                }
            }
            v
        } else if off < ENABLE + ENABLE_STRIDE * ctxs {
            let ctx = ((off - ENABLE) / ENABLE_STRIDE) as usize;
            let w = (((off - ENABLE) % ENABLE_STRIDE) / 4) as usize;
            self.enable[ctx].get(w).copied().unwrap_or(0)
        } else if (CONTEXT..CONTEXT + CONTEXT_STRIDE * ctxs).contains(&off) {
            let ctx = ((off - CONTEXT) / CONTEXT_STRIDE) as usize;
            match (off - CONTEXT) % CONTEXT_STRIDE {
                THRESHOLD => self.threshold[ctx],
                CLAIM => match self.best(ctx) {
                    Some(s) => {
                        self.pending[s] = false;
                        self.in_service[s] = true;
                        self.update_source(s, lines);
                        s as u32
                    }
                    None => 0,
                },
                _ => 0,
            }
        } else {
            return None;
        };
        Some(u64::from(v))
    }

    pub fn write(&mut self, off: u64, size: u8, v: u64, lines: &mut [u64]) -> bool {
        if size != 4 || off % 4 != 0 {
            return false;
        }
        let v = v as u32;
        let ctxs = self.threshold.len() as u64;
        if off < PENDING {
            let s = (off / 4) as usize;
            if let Some(p) = self.priority.get_mut(s) {
                if s != 0 {
                    *p = v & 7;
                }
            }
            self.update_all(lines);
        } else if off < ENABLE {
            // Pending bits are read-only.
        } else if off < ENABLE + ENABLE_STRIDE * ctxs {
            let ctx = ((off - ENABLE) / ENABLE_STRIDE) as usize;
            let w = (((off - ENABLE) % ENABLE_STRIDE) / 4) as usize;
            if let Some(e) = self.enable[ctx].get_mut(w) {
                *e = if w == 0 { v & !1 } else { v };
            }
            self.update_ctx(ctx, lines);
        } else if (CONTEXT..CONTEXT + CONTEXT_STRIDE * ctxs).contains(&off) {
            let ctx = ((off - CONTEXT) / CONTEXT_STRIDE) as usize;
            match (off - CONTEXT) % CONTEXT_STRIDE {
                THRESHOLD => {
                    self.threshold[ctx] = v & 7;
                    self.update_ctx(ctx, lines);
                }
                CLAIM => {
                    let s = v as usize;
                    // Completion of a source not enabled for this context is ignored (§7).
                    if s != 0 && s <= self.sources && self.in_service[s] && self.enabled(ctx, s) {
                        self.in_service[s] = false;
                        if self.level[s] {
                            self.pending[s] = true;
                        }
                        self.update_source(s, lines);
                    }
                }
                _ => {}
            }
        } else {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_off(ctx: u64, reg: u64) -> u64 {
        CONTEXT + CONTEXT_STRIDE * ctx + reg
    }

    #[test]
    fn claim_complete_level_semantics() {
        let mut lines = vec![0u64; 2];
        let mut p = Plic::new(64, 2);
        p.write(4 * 5, 4, 3, &mut lines); // priority(5) = 3
        p.write(ENABLE + ENABLE_STRIDE, 4, 1 << 5, &mut lines); // ctx 1 enables 5
        p.set_level(5, true, &mut lines);
        assert_eq!(lines[1] & MIP_MEIP, MIP_MEIP);
        assert_eq!(lines[0] & MIP_MEIP, 0);
        assert_eq!(p.read(ctx_off(1, CLAIM), 4, &mut lines), Some(5));
        assert_eq!(lines[1] & MIP_MEIP, 0, "claimed source is no longer pending");
        assert_eq!(p.read(ctx_off(1, CLAIM), 4, &mut lines), Some(0));
        // Level still high at completion: pending again.
        p.write(ctx_off(1, CLAIM), 4, 5, &mut lines);
        assert_eq!(lines[1] & MIP_MEIP, MIP_MEIP);
        p.read(ctx_off(1, CLAIM), 4, &mut lines);
        p.set_level(5, false, &mut lines);
        p.write(ctx_off(1, CLAIM), 4, 5, &mut lines);
        assert_eq!(lines[1] & MIP_MEIP, 0);
    }

    #[test]
    fn threshold_and_priority_order() {
        let mut lines = vec![0u64; 1];
        let mut p = Plic::new(64, 1);
        p.write(4 * 3, 4, 1, &mut lines);
        p.write(4 * 40, 4, 2, &mut lines);
        p.write(ENABLE, 4, 1 << 3, &mut lines);
        p.write(ENABLE + 4, 4, 1 << 8, &mut lines);
        p.set_level(3, true, &mut lines);
        p.set_level(40, true, &mut lines);
        p.write(ctx_off(0, THRESHOLD), 4, 1, &mut lines);
        assert_eq!(p.read(ctx_off(0, CLAIM), 4, &mut lines), Some(40));
        assert_eq!(p.read(ctx_off(0, CLAIM), 4, &mut lines), Some(0), "source 3 is at the threshold");
        // Source 0 does not exist; priority 0 never interrupts.
        p.write(4 * 40, 4, 0, &mut lines);
        assert_eq!(lines[0] & MIP_MEIP, 0);
    }

    #[test]
    fn bad_access_sizes_are_rejected() {
        let mut lines = vec![0u64; 1];
        let mut p = Plic::new(8, 1);
        assert_eq!(p.read(0, 8, &mut lines), None);
        assert!(!p.write(2, 4, 0, &mut lines));
    }
}
