//! The GDB stub, driven by a minimal remote-protocol client over TCP:
//! threads, registers, memory, a software breakpoint, continue, single step.

mod common;
use common::fw::firmware;
use dpu_sim::elf::Image;
use dpu_sim::{Machine, SimConfig};
use dpu_targets::{Board, Chip};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A tiny GDB remote-protocol client.
struct Rsp(TcpStream);

impl Rsp {
    fn send(&mut self, body: &str) -> String {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        write!(self.0, "${body}#{sum:02x}").unwrap();
        self.recv()
    }

    /// Reads one packet (skipping acks), checks its checksum, acks it.
    fn recv(&mut self) -> String {
        let mut b = [0u8; 1];
        loop {
            self.0.read_exact(&mut b).unwrap();
            if b[0] == b'$' {
                break;
            }
        }
        let mut body = Vec::new();
        loop {
            self.0.read_exact(&mut b).unwrap();
            if b[0] == b'#' {
                break;
            }
            body.push(b[0]);
        }
        let mut cs = [0u8; 2];
        self.0.read_exact(&mut cs).unwrap();
        let sum = body.iter().fold(0u8, |a, &x| a.wrapping_add(x));
        assert_eq!(format!("{sum:02x}"), String::from_utf8_lossy(&cs), "checksum");
        self.0.write_all(b"+").unwrap();
        // Run-length encoding: "X*N" repeats X (N - 29) more times.
        let mut out = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'*' && i + 1 < body.len() {
                let last = *out.last().unwrap();
                out.extend(std::iter::repeat_n(last, usize::from(body[i + 1] - 29)));
                i += 2;
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}

fn reg(g: &str, i: usize) -> u64 {
    let hex = &g[16 * i..16 * i + 16];
    let bytes: Vec<u8> = (0..8).map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap()).collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn gdb_breakpoint_step_registers_memory() {
    let image = Image::load(firmware()).unwrap();
    let bp = image
        .symbols
        .iter()
        .find(|s| dpu_sim::report::short_name(&s.name) == "dpu_fw::control::main")
        .map(|s| s.addr)
        .expect("dpu_fw::control::main in the image");
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let board = Board::load(dpu_targets::default_board_path()).unwrap();
    let cfg = SimConfig { quiet: true, max_cycles: Some(50_000_000), ..SimConfig::default() };
    let mut m = Machine::new(chip, board, image, cfg).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    let client = std::thread::spawn(move || {
        let mut c = Rsp(TcpStream::connect(addr).unwrap());
        assert!(c.send("qSupported:swbreak+;vContSupported+").contains("PacketSize"));
        assert!(c.send("?").starts_with('T'), "initial stop reply");
        let threads = c.send("qfThreadInfo");
        assert!(threads.starts_with('m') && threads.contains(",50"), "80 harts as threads: {threads}");
        assert_eq!(c.send("Hg1"), "OK");
        let g = c.send("g");
        assert_eq!(g.len(), 33 * 16, "x0..x31 + pc");
        assert_eq!(reg(&g, 32), 0x1000, "hart 0 starts in the boot ROM");
        assert_eq!(c.send(&format!("Z0,{bp:x},2")), "OK");
        let stop = c.send("vCont;c");
        assert!(stop.starts_with("T05") && stop.contains("thread:01") && stop.contains("swbreak"), "stop: {stop}");
        assert_eq!(c.send("Hg1"), "OK");
        let g = c.send("g");
        assert_eq!(reg(&g, 32), bp, "hart 0 stopped at the breakpoint");
        // The instruction bytes at the breakpoint.
        let mem = c.send(&format!("m{bp:x},4"));
        assert_eq!(mem.len(), 8, "{mem}");
        // Single-step hart 0: the pc moves on.
        let stop = c.send("vCont;s:1");
        assert!(stop.starts_with('T') && stop.contains("thread:01"), "step: {stop}");
        let g = c.send("g");
        assert!(reg(&g, 32) != bp, "pc moved after a step");
        assert_eq!(c.send(&format!("z0,{bp:x},2")), "OK");
        // Detach: the simulation runs on.
        c.send("D")
    });
    let (stream, _) = listener.accept().unwrap();
    let how = dpu_sim::gdb::serve(&mut m, stream);
    assert_eq!(client.join().unwrap(), "OK");
    assert_eq!(how, "GDB detached");
    // The firmware keeps running normally afterwards.
    m.run();
    assert!(m.harts[0].instret > 10_000);
}

/// A bad packet gets an error reply and the session goes on; a connection
/// dropped without a detach ends the session, not the simulation.
#[test]
fn gdb_survives_bad_packets_and_a_dropped_connection() {
    let image = Image::load(firmware()).unwrap();
    let chip = Chip::load(dpu_targets::default_chip_path()).unwrap();
    let board = Board::load(dpu_targets::default_board_path()).unwrap();
    let cfg = SimConfig { quiet: true, max_cycles: Some(5_000_000), ..SimConfig::default() };
    let mut m = Machine::new(chip, board, image, cfg).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    let client = std::thread::spawn(move || {
        let mut c = Rsp(TcpStream::connect(addr).unwrap());
        assert!(c.send("?").starts_with('T'), "initial stop reply");
        // A corrupted packet (checksum mismatch): NAK, nothing else.
        c.0.write_all(b"$g#00").unwrap();
        let mut b = [0u8; 1];
        c.0.read_exact(&mut b).unwrap();
        assert_eq!(b[0], b'-', "a bad checksum is answered with a NAK");
        // A well-framed packet the stub cannot parse: an error reply.
        let reply = c.send("mzz,4");
        assert!(reply.starts_with('E'), "malformed command: {reply}");
        // The session goes on.
        assert_eq!(c.send("Hg1"), "OK");
        assert_eq!(c.send("g").len(), 33 * 16);
        // GDB goes away without a detach.
        drop(c);
    });
    let (stream, _) = listener.accept().unwrap();
    let how = dpu_sim::gdb::serve(&mut m, stream);
    client.join().unwrap();
    assert!(how.contains("connection lost"), "{how}");
    // The simulation runs on to its time limit.
    assert_eq!(m.run(), dpu_sim::Outcome::TimeLimit);
    assert!(m.harts[0].instret > 10_000);
}
