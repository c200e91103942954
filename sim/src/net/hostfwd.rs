//! `dpusim --hostfwd tcp:127.0.0.1:PORT` (QEMU user-mode networking's
//! `hostfwd` in spirit): a TCP listener on the host whose connections the
//! operator node (`super::operator`) relays, byte for byte, over its own
//! TCP connection on the simulated switch to the card's management
//! address. `dpuctl` (or SPDK's `rpc.py -s 127.0.0.1 -p PORT`) then
//! reaches a running simulation.
//!
//! The host side runs on wall-clock time, so a run with `--hostfwd` paces
//! simulated time to the wall clock (as the UDP bridge does) and is not
//! deterministic: what the card sees depends on when the client talks.

use super::operator::Operator;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// `tcp:ADDR:PORT`.
pub fn parse_spec(s: &str) -> Result<SocketAddr, String> {
    let rest = s.strip_prefix("tcp:").ok_or_else(|| format!("--hostfwd `{s}`: expected tcp:ADDR:PORT, e.g. tcp:127.0.0.1:5260"))?;
    rest.parse::<SocketAddr>().map_err(|_| format!("--hostfwd `{s}`: `{rest}` is not ADDR:PORT (e.g. 127.0.0.1:5260)"))
}

/// Binds the host listener (non-blocking).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    let l = TcpListener::bind(addr).map_err(|e| format!("--hostfwd: cannot listen on {addr}: {e}"))?;
    l.set_nonblocking(true).map_err(|e| format!("--hostfwd: {e}"))?;
    Ok(l)
}

/// One host connection and its simulated twin.
pub struct Relay {
    host: TcpStream,
    pub(crate) handle: SocketHandle,
    /// Bytes from the host not yet taken by the simulated socket.
    to_sim: Vec<u8>,
    /// Bytes from the card not yet written to the host.
    to_host: Vec<u8>,
    host_eof: bool,
    peer: SocketAddr,
}

impl Operator {
    /// Accepts host connections and moves bytes both ways; whether
    /// anything moved.
    pub(crate) fn step_relays(&mut self, now: u64) -> bool {
        let mut progress = false;
        while let Some(l) = &self.listener {
            match l.accept() {
                Ok((host, peer)) => {
                    let _ = host.set_nonblocking(true);
                    let _ = host.set_nodelay(true);
                    match self.open(None) {
                        Some(handle) => {
                            self.log.push((now, format!("hostfwd: {peer} connected; relaying to the management server")));
                            self.relays.push(Relay { host, handle, to_sim: Vec::new(), to_host: Vec::new(), host_eof: false, peer });
                        }
                        None => self.log.push((now, format!("hostfwd: {peer}: no socket for the relay; dropped"))),
                    }
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.log.push((now, format!("hostfwd: accept failed: {e}")));
                    break;
                }
            }
        }
        let mut k = 0;
        while k < self.relays.len() {
            let r = &mut self.relays[k];
            let s = self.sockets.get_mut::<tcp::Socket>(r.handle);
            // Host -> card.
            if !r.host_eof && r.to_sim.len() < 64 * 1024 {
                let mut b = [0u8; 16 * 1024];
                match r.host.read(&mut b) {
                    Ok(0) => r.host_eof = true,
                    Ok(n) => {
                        r.to_sim.extend_from_slice(&b[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => r.host_eof = true,
                }
            }
            if !r.to_sim.is_empty() && s.may_send() {
                if let Ok(n) = s.send_slice(&r.to_sim) {
                    r.to_sim.drain(..n);
                    progress |= n > 0;
                }
            }
            if r.host_eof && r.to_sim.is_empty() && s.may_send() {
                s.close();
            }
            // Card -> host.
            while s.can_recv() {
                match s.recv(|b| (b.len(), b.to_vec())) {
                    Ok(b) if !b.is_empty() => r.to_host.extend_from_slice(&b),
                    _ => break,
                }
            }
            if !r.to_host.is_empty() {
                match r.host.write(&r.to_host) {
                    Ok(n) => {
                        r.to_host.drain(..n);
                        progress |= n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => r.to_host.clear(),
                }
            }
            let card_done = !s.may_recv() && !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived);
            if card_done && r.to_host.is_empty() {
                let _ = r.host.shutdown(std::net::Shutdown::Both);
                if s.state() != tcp::State::Closed {
                    s.abort();
                }
                let peer = r.peer;
                self.relays.swap_remove(k);
                self.log.push((now, format!("hostfwd: {peer}: connection ended")));
                progress = true;
                continue;
            }
            k += 1;
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_what_is_wrong() {
        assert_eq!(parse_spec("tcp:127.0.0.1:5260").unwrap(), "127.0.0.1:5260".parse().unwrap());
        assert!(parse_spec("udp:127.0.0.1:5260").unwrap_err().contains("expected tcp:ADDR:PORT"));
        assert!(parse_spec("tcp:localhost").unwrap_err().contains("not ADDR:PORT"));
    }
}
