//! The management server's JSON-RPC code (`dpu_rpc`) on bytes from a
//! client: the stream framer fed the input in pieces, each framed request
//! parsed, its params read, and an answer encoded. Whatever is accepted
//! must hold what the server relies on: a framed request lies within the
//! buffer; an accepted request's method is a string and its params an
//! object or array; every answer (result or error) is one valid JSON
//! document that fits the buffer.
//!
//! Input: the client's byte stream.

use dpu_rpc::{json, response, Framer, Kind, Params, Scan};

pub fn run(data: &[u8]) {
    let mut out = [0u8; 2048];
    let mut f = Framer::new();
    let mut base = 0;
    // Fed in two pieces (a resumed scan must find the same frames).
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let _ = f.scan(&data[..cut]);
    loop {
        match f.scan(&data[base..]) {
            Scan::Complete { start, end } => {
                assert!(start < end && base + end <= data.len());
                answer(&data[base + start..base + end], &mut out);
                base += end;
                f.reset();
            }
            Scan::NotJson { at } => {
                assert!(base + at < data.len());
                return;
            }
            Scan::Incomplete => return,
        }
    }
}

fn answer(text: &[u8], out: &mut [u8]) {
    let n = match dpu_rpc::parse_request(text) {
        Ok(r) => {
            assert_eq!(r.method.kind(), Kind::String);
            assert!(r.params.is_none_or(|p| matches!(p.kind(), Kind::Object | Kind::Array)));
            let mut m = [0u8; 64];
            let _ = r.method(&mut m);
            response::result(out, r.id, |w| {
                let p = Params::new(r.params)?;
                p.only(&["name", "count", "flag"])?;
                let mut b = [0u8; 32];
                let name = p.str("name", &mut b)?;
                w.begin_object();
                w.field_str("name", name.unwrap_or(""));
                w.field_u64("count", p.u64("count")?.unwrap_or(0));
                w.end_object();
                Ok(())
            })
        }
        Err(rej) => response::error(out, rej.id, &rej.error),
    };
    assert!(n > 0 && n <= out.len());
    // One valid JSON document and a newline.
    assert_eq!(out[n - 1], b'\n');
    assert!(json::validate(&out[..n - 1]).is_ok(), "{}", String::from_utf8_lossy(&out[..n]));
}
