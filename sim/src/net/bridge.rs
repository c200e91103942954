//! Ethernet-in-UDP bridge to a real peer, in the format of QEMU's
//! `-netdev dgram` (QEMU 7.2+): one UDP datagram carries one Ethernet frame
//! without FCS, length prefix or virtio-net header. Attached to the switch
//! like any endpoint, so a QEMU guest shares the simulated L2 segment.

use std::net::{SocketAddr, UdpSocket};

/// `udp:LOCAL_ADDR:LOCAL_PORT:REMOTE_ADDR:REMOTE_PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSpec {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl std::str::FromStr for BridgeSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<BridgeSpec, String> {
        let usage = || format!("`{s}`: expected udp:LOCAL_ADDR:LOCAL_PORT:REMOTE_ADDR:REMOTE_PORT (e.g. udp:127.0.0.1:10001:127.0.0.1:10002)");
        let rest = s.strip_prefix("udp:").ok_or_else(usage)?;
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 4 {
            return Err(usage());
        }
        let local = format!("{}:{}", parts[0], parts[1]).parse().map_err(|_| usage())?;
        let remote = format!("{}:{}", parts[2], parts[3]).parse().map_err(|_| usage())?;
        Ok(BridgeSpec { local, remote })
    }
}

pub struct Bridge {
    socket: UdpSocket,
    pub spec: BridgeSpec,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Send failures (peer not up yet) and runt datagrams.
    pub errors: u64,
}

impl Bridge {
    pub fn open(spec: BridgeSpec) -> std::io::Result<Bridge> {
        let socket = UdpSocket::bind(spec.local)?;
        socket.set_nonblocking(true)?;
        Ok(Bridge { socket, spec, frames_in: 0, frames_out: 0, errors: 0 })
    }

    /// Sends one frame to the peer (lost if the peer is not listening,
    /// like a frame on a cable with nobody at the other end).
    pub fn send(&mut self, frame: &[u8]) {
        match self.socket.send_to(frame, self.spec.remote) {
            Ok(_) => self.frames_out += 1,
            Err(_) => self.errors += 1,
        }
    }

    /// Frames that arrived since the last call (never blocks).
    pub fn receive(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if from != self.spec.remote || n < 14 {
                        self.errors += 1;
                        continue;
                    }
                    self.frames_in += 1;
                    out.push(buf[..n].to_vec());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // ICMP port unreachable from an earlier send, etc.
                    self.errors += 1;
                    break;
                }
            }
        }
        out
    }

    /// Waits up to `timeout` for a datagram (used when the simulation is
    /// ahead of wall-clock time and has nothing else to do).
    pub fn wait(&self, timeout: std::time::Duration) {
        let _ = self.socket.set_nonblocking(false);
        let _ = self.socket.set_read_timeout(Some(timeout.max(std::time::Duration::from_micros(1))));
        let mut b = [0u8; 1];
        let _ = self.socket.peek_from(&mut b);
        let _ = self.socket.set_nonblocking(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_qemu_style() {
        let s: BridgeSpec = "udp:127.0.0.1:10001:127.0.0.1:10002".parse().unwrap();
        assert_eq!(s.local, "127.0.0.1:10001".parse().unwrap());
        assert_eq!(s.remote, "127.0.0.1:10002".parse().unwrap());
        for bad in ["tcp:1:2:3:4", "udp:127.0.0.1:10001", "udp:x:1:127.0.0.1:2", "udp:127.0.0.1:99999:127.0.0.1:1"] {
            assert!(bad.parse::<BridgeSpec>().unwrap_err().contains("expected udp:"), "{bad}");
        }
    }

    #[test]
    fn frames_cross_as_datagrams() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = probe.local_addr().unwrap();
        drop(probe);
        let mut b = Bridge::open(BridgeSpec { local, remote: peer.local_addr().unwrap() }).unwrap();
        let frame: Vec<u8> = (0..60).collect();
        b.send(&frame);
        let mut buf = [0u8; 128];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&frame[..], local));
        peer.send_to(&frame[..20], local).unwrap();
        peer.send_to(&frame[..5], local).unwrap();
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(b.receive());
            if !got.is_empty() && b.errors > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(got, vec![frame[..20].to_vec()]);
        assert_eq!(b.errors, 1, "the 5-byte runt");
    }
}
