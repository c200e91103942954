//! Exact cycle profiler: every executed instruction's cycles are charged to
//! the current node of a call tree built from calls (`jal`/`jalr` writing a
//! link register) and returns (`jalr x0, 0(ra|t0)`); traps push a frame for
//! the trap vector and `mret` pops it. Tail calls stay in the caller's frame.

use crate::isa::{Kind, Op, SINK};
use rustc_hash::FxHashMap;

/// One call-tree node: a function reached through a given call path.
#[derive(Clone, Debug)]
pub struct Node {
    /// Entry address of the function.
    pub func: u64,
    pub parent: usize,
    pub children: Vec<(u64, usize)>,
    pub cycles: u64,
    pub instructions: u64,
}

/// A hart's profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub nodes: Vec<Node>,
    cur: usize,
}

impl Default for Profile {
    fn default() -> Self {
        Profile { nodes: vec![Node { func: 0, parent: 0, children: Vec::new(), cycles: 0, instructions: 0 }], cur: 0 }
    }
}

impl Profile {
    /// Charges one instruction at `pc` that took `cycles`, then follows calls and returns.
    pub fn step(&mut self, op: &Op, pc: u64, next_pc: u64, cycles: u64) {
        if self.cur == 0 && self.nodes[0].func == 0 {
            // First instruction seen: the root frame is where the hart started.
            self.nodes[0].func = pc;
        }
        let n = &mut self.nodes[self.cur];
        n.cycles += cycles;
        n.instructions += 1;
        let link = |r: u8| r == 1 || r == 5;
        match op.kind {
            Kind::Jal | Kind::Jalr if op.rd != SINK && link(op.rd) => self.call(next_pc),
            Kind::Jalr if op.rd == SINK && link(op.rs1) && op.imm == 0 => self.ret(),
            Kind::Mret => self.ret(),
            _ => {}
        }
    }

    /// Enters a frame for `target` under the current node.
    pub fn call(&mut self, target: u64) {
        let cur = self.cur;
        if let Some(&(_, c)) = self.nodes[cur].children.iter().find(|(f, _)| *f == target) {
            self.cur = c;
            return;
        }
        let id = self.nodes.len();
        self.nodes.push(Node { func: target, parent: cur, children: Vec::new(), cycles: 0, instructions: 0 });
        self.nodes[cur].children.push((target, id));
        self.cur = id;
    }

    pub fn ret(&mut self) {
        self.cur = self.nodes[self.cur].parent;
    }

    /// Clears the counts (keeps the tree): starts a measurement window.
    pub fn reset_counts(&mut self) {
        for n in &mut self.nodes {
            n.cycles = 0;
            n.instructions = 0;
        }
    }

    /// (path of function addresses from the root, cycles, instructions) of
    /// every node with self time.
    pub fn paths(&self) -> Vec<(Vec<u64>, u64, u64)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.cycles == 0 {
                continue;
            }
            let mut path = vec![n.func];
            let mut p = i;
            while p != 0 {
                p = self.nodes[p].parent;
                path.push(self.nodes[p].func);
            }
            path.reverse();
            out.push((path, n.cycles, n.instructions));
        }
        out
    }
}

/// Per-function totals across profiles, resolved to names.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FunctionCost {
    pub name: String,
    pub self_cycles: u64,
    pub self_instructions: u64,
    /// Cycles in the function and everything it called (recursion counted once).
    pub total_cycles: u64,
}

/// Folded stacks ("a;b;c cycles" lines, flamegraph.pl / inferno format)
/// and per-function costs, with names from `name`.
pub fn summarize(paths: &[(Vec<u64>, u64, u64)], name: impl Fn(u64) -> String) -> (String, Vec<FunctionCost>) {
    let mut folded: FxHashMap<String, u64> = FxHashMap::default();
    let mut funcs: FxHashMap<String, FunctionCost> = FxHashMap::default();
    for (path, cycles, instr) in paths {
        let names: Vec<String> = path.iter().map(|&a| name(a)).collect();
        *folded.entry(names.join(";")).or_default() += cycles;
        let leaf = names.last().cloned().unwrap_or_default();
        let f = funcs.entry(leaf.clone()).or_insert_with(|| FunctionCost { name: leaf, ..Default::default() });
        f.self_cycles += cycles;
        f.self_instructions += instr;
        let mut seen: Vec<&String> = Vec::new();
        for n in &names {
            if seen.contains(&n) {
                continue;
            }
            seen.push(n);
            funcs.entry(n.clone()).or_insert_with(|| FunctionCost { name: n.clone(), ..Default::default() }).total_cycles += cycles;
        }
    }
    let mut lines: Vec<(String, u64)> = folded.into_iter().collect();
    lines.sort();
    let text = lines.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    let mut v: Vec<FunctionCost> = funcs.into_values().collect();
    v.sort_by(|a, b| b.self_cycles.cmp(&a.self_cycles).then(a.name.cmp(&b.name)));
    (text, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::decode;
    use crate::isa::asm;

    #[test]
    fn calls_and_returns_build_the_tree() {
        let mut p = Profile::default();
        let call = decode(asm::j(1, 0x100)); // jal ra
        let ret = decode(asm::jalr(0, 1, 0)); // ret
        let add = decode(asm::addi(10, 10, 1));
        p.step(&add, 0x1000, 0x1004, 1);
        p.step(&call, 0x1004, 0x1104, 2); // to 0x1104
        p.step(&add, 0x1104, 0x1108, 5);
        p.step(&ret, 0x1108, 0x1008, 3);
        p.step(&add, 0x1008, 0x100c, 1);
        let paths = p.paths();
        assert_eq!(paths.len(), 2);
        let (folded, funcs) = summarize(&paths, |a| format!("f{a:x}"));
        assert!(folded.contains("f1000 4\n"), "{folded}");
        assert!(folded.contains("f1000;f1104 8\n"), "{folded}");
        let callee = funcs.iter().find(|f| f.name == "f1104").unwrap();
        assert_eq!((callee.self_cycles, callee.self_instructions, callee.total_cycles), (8, 2, 8));
        let root = funcs.iter().find(|f| f.name == "f1000").unwrap();
        assert_eq!((root.self_cycles, root.total_cycles), (4, 12));
    }
}
