//! A JSON-RPC 2.0 client for the card's management server (SPDK `rpc.py`
//! style: one request object per call on a TCP connection, the answer is
//! the first complete JSON value that comes back).
//!
//! Written from the JSON-RPC 2.0 specification with `serde_json`; it
//! shares no code with the firmware's server (`dpu-rpc`).
//!
//! ```no_run
//! let c = dpuctl::Client::new("127.0.0.1:5260".parse().unwrap());
//! let bdevs = c.call("bdev_get_bdevs", None).unwrap();
//! ```

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What went wrong, worded for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {addr}: {source} (is dpusim running with --hostfwd tcp:{addr}, or is the card's management address right?)")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("{addr}: {source}")]
    Io { addr: SocketAddr, source: std::io::Error },
    #[error("{addr}: no answer within {secs} s (the simulation may be slow or stopped)")]
    Timeout { addr: SocketAddr, secs: u64 },
    #[error("{addr}: the connection closed without an answer (a client not on the card's allow-list is refused this way)")]
    Closed { addr: SocketAddr },
    #[error("{addr}: not a JSON-RPC 2.0 response: {text}")]
    BadResponse { addr: SocketAddr, text: String },
    /// The server answered with an error object.
    #[error("{}", rpc_message(*code, message))]
    Rpc { code: i64, message: String },
}

fn rpc_message(code: i64, message: &str) -> String {
    let hint = match code {
        -32700 => " (the request was not valid JSON)",
        -32600 => " (the request is not a valid JSON-RPC 2.0 request)",
        -32601 => " (unknown method; `dpuctl methods` lists them)",
        -32602 => " (bad parameter)",
        -32001 => " (pass the card's access token with --token)",
        -19 => " (no such device; `dpuctl bdev list` lists them)",
        // The VF count's refusal says what to do itself.
        -16 if message.contains("sriov_numvfs") => "",
        -16 => " (in use; `dpuctl bdev list` shows what maps it)",
        -17 => " (the name or namespace ID is taken)",
        -12 => " (out of memory or slots on the card)",
        _ => "",
    };
    format!("error {code}: {message}{hint}")
}

pub struct Client {
    pub addr: SocketAddr,
    /// Sent as the request's top-level `token` member when set.
    pub token: Option<String>,
    pub timeout: Duration,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, token: None, timeout: Duration::from_secs(30) }
    }

    /// The request object for `method` (id 1).
    pub fn request(&self, method: &str, params: Option<Value>) -> Value {
        let mut r = json!({"jsonrpc": "2.0", "id": 1, "method": method});
        if let Some(p) = params {
            r["params"] = p;
        }
        if let Some(t) = &self.token {
            r["token"] = Value::from(t.as_str());
        }
        r
    }

    /// Calls `method`; its `result`, or the error the server sent.
    pub fn call(&self, method: &str, params: Option<Value>) -> Result<Value, Error> {
        let addr = self.addr;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|source| Error::Connect { addr, source })?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(self.timeout)).map_err(|source| Error::Io { addr, source })?;
        let req = serde_json::to_vec(&self.request(method, params)).map_err(|e| Error::BadResponse { addr, text: e.to_string() })?;
        s.write_all(&req).map_err(|source| Error::Io { addr, source })?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let answer = loop {
            if let Some(Ok(v)) = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>().next() {
                break v;
            }
            match s.read(&mut chunk) {
                Ok(0) if buf.is_empty() => return Err(Error::Closed { addr }),
                Ok(0) => return Err(Error::BadResponse { addr, text: String::from_utf8_lossy(&buf).into_owned() }),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(Error::Timeout { addr, secs: self.timeout.as_secs() })
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && buf.is_empty() => return Err(Error::Closed { addr }),
                Err(source) => return Err(Error::Io { addr, source }),
            }
        };
        let _ = s.shutdown(std::net::Shutdown::Both);
        parse_response(addr, answer)
    }
}

/// Largest firmware piece per `dpu_fw_download` call (the card's bound).
pub const FW_PIECE: usize = 2048;

/// How a firmware update through the management API ended.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Call(#[from] Error),
    /// The card's update service refused the image or failed to write it
    /// (`state` as `dpu_fw_get_status` reports it: "invalid image",
    /// "slot in use", "flash error").
    #[error("the card did not take the image: {state} (see the card's log; `dpuctl fw status`)")]
    Refused { state: String },
    #[error("the commit did not end within {secs} s")]
    Timeout { secs: u64 },
}

impl Client {
    /// Pushes a signed firmware image (`dpu_fw_download`, pieces of
    /// [`FW_PIECE`] bytes in order), commits it (`dpu_fw_commit`: `slot`
    /// 1 or 2, `action` as NVMe Firmware Commit's 0-2) and waits until the
    /// card's update service has written it. `progress(sent, total)` is
    /// called after each piece. Returns the final `update` status.
    pub fn fw_update(&self, image: &[u8], slot: u8, action: u8, mut progress: impl FnMut(usize, usize)) -> Result<Value, UpdateError> {
        use base64ct::{Base64, Encoding};
        let mut off = 0;
        while off < image.len() {
            let piece = &image[off..(off + FW_PIECE).min(image.len())];
            self.call("dpu_fw_download", Some(json!({ "offset": off, "data": Base64::encode_string(piece) })))?;
            off += piece.len();
            progress(off, image.len());
        }
        self.call("dpu_fw_commit", Some(json!({ "slot": slot, "action": action })))?;
        let start = std::time::Instant::now();
        loop {
            let st = self.call("dpu_fw_get_status", None)?;
            let u = &st["update"];
            match u["state"].as_str() {
                Some("committing") => {}
                Some("done") => return Ok(u.clone()),
                other => return Err(UpdateError::Refused { state: other.unwrap_or("unknown").to_string() }),
            }
            if start.elapsed() > self.timeout {
                return Err(UpdateError::Timeout { secs: self.timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A response object's result or error (JSON-RPC 2.0 §5).
fn parse_response(addr: SocketAddr, v: Value) -> Result<Value, Error> {
    if v.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err(Error::BadResponse { addr, text: v.to_string() });
    }
    if let Some(e) = v.get("error") {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = e.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Err(Error::Rpc { code, message });
    }
    v.get("result").cloned().ok_or_else(|| Error::BadResponse { addr, text: v.to_string() })
}

/// Renders rows as a left-aligned text table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering `answer` to whatever comes.
    fn serve(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).unwrap();
            // Split the answer to exercise reassembly.
            let (a, z) = answer.split_at(answer.len() / 2);
            s.write_all(a).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(z).unwrap();
            b[..n].to_vec()
        });
        (addr, h)
    }

    #[test]
    fn a_call_sends_a_request_and_returns_the_result() {
        let (addr, h) = serve(br#"{"jsonrpc":"2.0","id":1,"result":[{"name":"fn1n1"}]}"#);
        let mut c = Client::new(addr);
        c.token = Some("t0k".into());
        let r = c.call("bdev_get_bdevs", Some(json!({"name": "fn1n1"}))).unwrap();
        assert_eq!(r, json!([{"name": "fn1n1"}]));
        let sent: Value = serde_json::from_slice(&h.join().unwrap()).unwrap();
        assert_eq!(sent, json!({"jsonrpc": "2.0", "id": 1, "method": "bdev_get_bdevs", "params": {"name": "fn1n1"}, "token": "t0k"}));
    }

    #[test]
    fn errors_name_the_likely_cause() {
        let (addr, _h) = serve(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found: `x`"}}"#);
        let e = Client::new(addr).call("x", None).unwrap_err();
        assert!(matches!(e, Error::Rpc { code: -32601, .. }));
        assert!(e.to_string().contains("dpuctl methods"), "{e}");
        assert!(rpc_message(-16, "busy: `Malloc0` is ready as namespace 1 of function 1; detach it first").contains("`dpuctl bdev list` shows what maps it"));
        assert!(!rpc_message(-16, "busy: SR-IOV is enabled (2 VFs); first on the host: echo 0 > /sys/bus/pci/devices/<PF>/sriov_numvfs").contains("bdev list"));
        // Nobody listening.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = Client::new(addr).call("x", None).unwrap_err();
        assert!(e.to_string().contains("is dpusim running with --hostfwd"), "{e}");
        let (addr, _h) = serve(br#"{"result":1}"#);
        assert!(matches!(Client::new(addr).call("x", None).unwrap_err(), Error::BadResponse { .. }));
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&["NAME", "SIZE"], &[vec!["fn1n1".into(), "8 MiB".into()], vec!["fn10n2".into(), "1 GiB".into()]]);
        assert_eq!(t, "NAME    SIZE\nfn1n1   8 MiB\nfn10n2  1 GiB\n");
    }
}
