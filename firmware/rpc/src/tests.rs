//! Host tests: framing, the validator on nasty input, request checks,
//! response encoding, parameters.

extern crate std;
use super::*;
use crate::json::{validate, JsonError};
use std::string::{String, ToString};
use std::vec::Vec;

fn frame_all(stream: &[u8]) -> (Vec<&[u8]>, Scan) {
    let mut out = Vec::new();
    let mut f = Framer::new();
    let mut base = 0;
    loop {
        match f.scan(&stream[base..]) {
            Scan::Complete { start, end } => {
                out.push(&stream[base + start..base + end]);
                base += end;
                f.reset();
            }
            other => return (out, other),
        }
    }
}

#[test]
fn framing_splits_back_to_back_requests_and_skips_newlines() {
    let s = br#"{"a":"}{"}{"b":[1,{"c":"\"}"}]}
  {"d":1}"#;
    let (reqs, rest) = frame_all(s);
    assert_eq!(reqs, [&br#"{"a":"}{"}"#[..], br#"{"b":[1,{"c":"\"}"}]}"#, br#"{"d":1}"#]);
    assert_eq!(rest, Scan::Incomplete);
}

#[test]
fn framing_resumes_across_partial_reads() {
    let full = br#"{"method":"x\\","p":{"q":"]"}}"#;
    for cut in 0..full.len() {
        let mut f = Framer::new();
        assert_eq!(f.scan(&full[..cut]), Scan::Incomplete, "cut at {cut}");
        assert_eq!(f.scan(full), Scan::Complete { start: 0, end: full.len() }, "cut at {cut}");
    }
}

#[test]
fn framing_repeats_a_found_value_until_reset() {
    // Found by fuzzing: scanning on after a complete value (without
    // `reset`) must not count brackets past it.
    let s = b"{}}}]";
    let mut f = Framer::new();
    assert_eq!(f.scan(&s[..2]), Scan::Complete { start: 0, end: 2 });
    assert_eq!(f.scan(s), Scan::Complete { start: 0, end: 2 });
    f.reset();
    assert_eq!(f.scan(&s[2..]), Scan::NotJson { at: 0 });
}

#[test]
fn framing_rejects_what_cannot_start_a_request() {
    assert_eq!(Framer::new().scan(b"  \n x{}"), Scan::NotJson { at: 4 });
    assert_eq!(Framer::new().scan(b"}"), Scan::NotJson { at: 0 });
    assert_eq!(Framer::new().scan(b"\"str\""), Scan::NotJson { at: 0 });
    let (reqs, rest) = frame_all(b"{}}");
    assert_eq!(reqs.len(), 1);
    assert_eq!(rest, Scan::NotJson { at: 0 });
    // Only whitespace: nothing started.
    let mut f = Framer::new();
    assert_eq!(f.scan(b" \r\n\t"), Scan::Incomplete);
    assert!(!f.in_request());
}

#[test]
fn validator_accepts_rfc8259_values() {
    for ok in [
        &br#"{}"#[..],
        br#"[]"#,
        br#" {"a" : [1, -0, 0.5, 1e10, -2.5E-3, true, false, null, "\u00e9\ud83d\ude00\n"] } "#,
        br#""plain""#,
        b"123",
        "{\"\u{e9}\":\"\u{1f600}\"}".as_bytes(),
    ] {
        assert!(validate(ok).is_ok(), "{}", String::from_utf8_lossy(ok));
    }
}

#[test]
fn validator_rejects_malformed_text_without_panicking() {
    let cases: &[(&[u8], JsonError)] = &[
        (b"", JsonError::Eof),
        (b"{", JsonError::Eof),
        (b"{\"a\"", JsonError::Eof),
        (b"{\"a\":}", JsonError::Unexpected { at: 5 }),
        (b"{\"a\":1,}", JsonError::Unexpected { at: 7 }),
        (b"[1,]", JsonError::Unexpected { at: 3 }),
        (b"{]", JsonError::Unexpected { at: 1 }),
        (b"[1}", JsonError::Unexpected { at: 2 }),
        (b"{a:1}", JsonError::Unexpected { at: 1 }),
        (b"01", JsonError::Trailing { at: 1 }),
        (b"1.", JsonError::Eof),
        (b"1.x", JsonError::BadNumber { at: 2 }),
        (b"-", JsonError::Eof),
        (b"1e+", JsonError::Eof),
        (b"+1", JsonError::Unexpected { at: 0 }),
        (b"tru", JsonError::Eof),
        (b"nul1", JsonError::Unexpected { at: 3 }),
        (b"\"a\tb\"", JsonError::BadString { at: 2 }),
        (b"\"\\x\"", JsonError::BadString { at: 2 }),
        (b"\"\\u12g4\"", JsonError::BadString { at: 5 }),
        (b"{} {}", JsonError::Trailing { at: 3 }),
        (b"\"\xff\"", JsonError::NotUtf8 { at: 1 }),
    ];
    for (text, want) in cases {
        assert_eq!(validate(text).err(), Some(*want), "{}", String::from_utf8_lossy(text));
    }
}

#[test]
fn every_truncation_of_a_request_is_an_error() {
    let full = br#"{"jsonrpc":"2.0","id":"a\"b","method":"bdev_get_bdevs","params":{"name":"fn1n1","x":[1.5e3,{"y":null}]}}"#;
    assert!(validate(full).is_ok());
    for cut in 0..full.len() {
        assert!(validate(&full[..cut]).is_err(), "cut at {cut}");
        let r = parse_request(&full[..cut]);
        assert!(matches!(r, Err(Rejected { fatal: true, .. })), "cut at {cut}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| {
        let mut s = Vec::new();
        s.extend(std::iter::repeat_n(b'[', n));
        s.extend(std::iter::repeat_n(b']', n));
        s
    };
    assert!(validate(&deep(MAX_DEPTH)).is_ok());
    assert_eq!(validate(&deep(MAX_DEPTH + 1)).err(), Some(JsonError::TooDeep { at: MAX_DEPTH }));
    // 100,000 levels: an error, not a stack overflow.
    assert!(matches!(validate(&deep(100_000)), Err(JsonError::TooDeep { .. })));
    let mut obj = Vec::new();
    for _ in 0..1000 {
        obj.extend_from_slice(br#"{"a":"#);
    }
    assert!(matches!(validate(&obj), Err(JsonError::TooDeep { .. })));
}

#[test]
fn numbers_convert_only_when_exact() {
    fn n(t: &str) -> Value<'_> {
        validate(t.as_bytes()).unwrap()
    }
    assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(n("18446744073709551616").as_u64(), None);
    assert_eq!(n("99999999999999999999999999999999").as_u64(), None);
    assert_eq!(n("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(n("-9223372036854775809").as_i64(), None);
    assert_eq!(n("1.0").as_u64(), None);
    assert_eq!(n("1e3").as_u64(), None);
    assert_eq!(n("-1").as_u64(), None);
    assert_eq!(n("\"5\"").as_u64(), None);
}

#[test]
fn strings_unescape_including_surrogate_pairs() {
    let mut b = [0u8; 32];
    let v = validate(br#""a\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00""#).unwrap();
    assert_eq!(v.unescape(&mut b), Some("a\"\\/\u{8}\u{c}\n\r\tA\u{e9}\u{1f600}"));
    // A lone or reversed surrogate is not a character.
    for bad in [&br#""\ud83d""#[..], br#""\ude00\ud83d""#, br#""\ud83dx""#] {
        assert_eq!(validate(bad).unwrap().unescape(&mut b), None);
    }
    // Too long for the buffer.
    let mut small = [0u8; 3];
    assert_eq!(validate(br#""abcd""#).unwrap().unescape(&mut small), None);
    assert!(validate(br#""m\u0065thod""#).unwrap().str_eq("method"));
}

#[test]
fn members_and_elements_iterate_in_order() {
    let v = validate(br#"{ "a" : 1 , "b":{"c":[2, 3]}, "d" : "x" }"#).unwrap();
    let keys: Vec<String> = v
        .members()
        .map(|(k, _)| {
            let mut b = [0u8; 8];
            String::from(k.unescape(&mut b).unwrap())
        })
        .collect();
    assert_eq!(keys, ["a", "b", "d"]);
    let c = v.get("b").unwrap().get("c").unwrap();
    assert_eq!(c.elements().map(|e| e.as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(validate(b"[]").unwrap().elements().count(), 0);
    assert_eq!(validate(b"{}").unwrap().members().count(), 0);
    assert!(v.get("zz").is_none());
}

fn reject(text: &str) -> (i32, String, bool, Option<String>) {
    match parse_request(text.as_bytes()) {
        Ok(_) => panic!("accepted: {text}"),
        Err(r) => (r.error.code, r.error.message().into(), r.fatal, r.id.map(|i| String::from_utf8_lossy(i.raw()).into_owned())),
    }
}

#[test]
fn requests_follow_jsonrpc_2_0() {
    let r = parse_request(br#"{"jsonrpc":"2.0","method":"bdev_get_bdevs","params":{"name":"x"},"id":7,"token":"t"}"#).unwrap();
    let mut b = [0u8; 64];
    assert_eq!(r.method(&mut b), Some("bdev_get_bdevs"));
    assert_eq!(r.id.unwrap().raw(), b"7");
    assert!(r.token.unwrap().str_eq("t"));
    // A notification has no id.
    assert!(parse_request(br#"{"jsonrpc":"2.0","method":"m"}"#).unwrap().id.is_none());
    let (c, m, fatal, id) = reject(r#"{"jsonrpc":"2.0","method":"m","id":1"#);
    assert_eq!((c, fatal, id), (code::PARSE_ERROR, true, None), "{m}");
    let (c, m, fatal, id) = reject(r#"{"jsonrpc":"1.0","method":"m","id":"q"}"#);
    assert_eq!((c, fatal, id.as_deref()), (code::INVALID_REQUEST, false, Some("\"q\"")));
    assert!(m.contains("jsonrpc"), "{m}");
    assert!(reject(r#"{"jsonrpc":"2.0","method":5,"id":1}"#).1.contains("`method` must be a string"));
    assert!(reject(r#"{"jsonrpc":"2.0","id":1}"#).1.contains("`method`"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","params":3,"id":1}"#).1.contains("`params` must be an object or an array, got a number"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","param":{},"id":1}"#).1.contains("unknown member `param`"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","method":"n","id":1}"#).1.contains("`method` given twice"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","id":1,"id":2}"#).1.contains("`id` given twice"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","id":{}}"#).1.contains("id must be"));
    assert!(reject(r#"{"jsonrpc":"2.0","method":"m","id":1,"token":1}"#).1.contains("`token` must be a string"));
    assert!(reject(r#"[{"jsonrpc":"2.0","method":"m","id":1}]"#).1.contains("batch"));
    assert!(reject(r#""just a string""#).1.contains("expected an object, got a string"));
    let long_id = std::format!(r#"{{"jsonrpc":"2.0","method":"m","id":"{}"}}"#, "x".repeat(100));
    assert!(reject(&long_id).1.contains("id longer"));
}

#[test]
fn responses_encode_results_and_errors() {
    let mut out = [0u8; 512];
    let req = parse_request(br#"{"jsonrpc":"2.0","method":"m","id":"a\"b"}"#).unwrap();
    let n = response::result(&mut out, req.id, |w| {
        w.begin_object();
        w.field_str("name", "quote\" back\\slash \u{1} tab\t");
        w.field_u64("n", 42);
        w.key("z");
        w.i64(i64::MIN);
        w.key("u");
        w.u64(u64::MAX);
        w.key("zero");
        w.u64(0);
        w.key("list");
        w.begin_array();
        w.u64(1);
        w.string_fmt(format_args!("{}.{}", 10, 0));
        w.begin_object();
        w.end_object();
        w.end_array();
        w.end_object();
        Ok(())
    });
    let text = core::str::from_utf8(&out[..n]).unwrap();
    assert_eq!(text, "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"result\":{\"name\":\"quote\\\" back\\\\slash \\u0001 tab\\t\",\"n\":42,\"z\":-9223372036854775808,\"u\":18446744073709551615,\"zero\":0,\"list\":[1,\"10.0\",{}]}}\n");
    assert!(validate(text.trim_end().as_bytes()).is_ok());

    let e = RpcError::new(code::METHOD_NOT_FOUND, "method not found: `x`");
    let n = response::error(&mut out, None, &e);
    assert_eq!(&out[..n], b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32601,\"message\":\"method not found: `x`\"}}\n");
}

#[test]
fn a_result_too_large_for_the_buffer_becomes_an_internal_error() {
    let mut out = [0u8; response::MIN_BUFFER];
    let n = response::result(&mut out, None, |w| {
        w.begin_array();
        for i in 0..1000 {
            w.u64(i);
        }
        w.end_array();
        Ok(())
    });
    let text = core::str::from_utf8(&out[..n]).unwrap();
    assert!(text.contains("-32603") && text.contains("does not fit"), "{text}");
    // A method's own error replaces whatever it wrote.
    let n = response::result(&mut out, None, |w| {
        w.string("partial");
        Err(RpcError::new(code::INVALID_PARAMS, "bad"))
    });
    assert!(core::str::from_utf8(&out[..n]).unwrap().contains("\"code\":-32602"));
}

#[test]
fn error_messages_are_cut_at_a_character_boundary() {
    let long = "é".repeat(200);
    let e = RpcError::fmt(code::INVALID_PARAMS, format_args!("{long}"));
    assert!(e.message().len() <= error::MAX_MESSAGE && e.message().len() >= error::MAX_MESSAGE - 1);
    assert!(e.message().chars().all(|c| c == 'é'));
}

#[test]
fn params_are_typed_and_named_in_errors() {
    let v = validate(br#"{"name":"fn1n1","count":3,"big":1e3,"flag":true}"#).unwrap();
    let p = Params::new(Some(v)).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(p.str("name", &mut b).unwrap(), Some("fn1n1"));
    assert_eq!(p.u64("count").unwrap(), Some(3));
    assert_eq!(p.bool("flag").unwrap(), Some(true));
    assert_eq!(p.u64("absent").unwrap(), None);
    let e = p.u64("name").unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message().contains("`name` must be a non-negative integer, got a string"), "{}", e.message());
    assert!(p.u64("big").unwrap_err().message().contains("below 2^64"));
    assert!(p.str("count", &mut b).unwrap_err().message().contains("`count` must be a string, got a number"));
    assert!(p.only(&["name", "count", "big"]).unwrap_err().message().contains("unknown parameter `flag`"));
    assert!(p.only(&["name", "count", "big", "flag"]).is_ok());
    assert_eq!(p.u64_in("count", 1..=3).unwrap(), Some(3));
    let e = p.u64_in("count", 4..=8).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message().contains("`count` must be in 4..=8, got 3"), "{}", e.message());
    assert_eq!(p.u64_in("absent", 1..=2).unwrap(), None);
    assert!(Params::required("num_blocks", None::<u64>).unwrap_err().message().contains("`num_blocks` is required"));
    assert_eq!(Params::required("count", Some(3)).unwrap(), 3);
    let arr = validate(b"[1]").unwrap();
    assert!(Params::new(Some(arr)).unwrap_err().message().contains("named parameters"));
    assert!(Params::new(None).unwrap().only(&[]).is_ok());
}

#[test]
fn string_arrays_name_the_bad_element() {
    let v = validate(br#"{"base_bdevs":["A0n1","B\u0030n1"],"mixed":["x",7],"long":["abcdefghijklmnopq"],"scalar":"x","empty":[]}"#).unwrap();
    let p = Params::new(Some(v)).unwrap();
    let mut b = [0u8; 16];
    let mut got: Vec<String> = Vec::new();
    assert_eq!(p.str_array("base_bdevs", &mut b, |i, s| {
        assert_eq!(i, got.len());
        got.push(s.to_string());
        Ok(())
    }).unwrap(), Some(2));
    assert_eq!(got, ["A0n1", "B0n1"], "unescaped, in order");
    assert_eq!(p.str_array("absent", &mut b, |_, _| Ok(())).unwrap(), None);
    assert_eq!(p.str_array("empty", &mut b, |_, _| Ok(())).unwrap(), Some(0));
    assert!(p.str_array("mixed", &mut b, |_, _| Ok(())).unwrap_err().message().contains("`mixed[1]` must be a string, got a number"));
    assert!(p.str_array("long", &mut b, |_, _| Ok(())).unwrap_err().message().contains("`long[0]` is longer than 16 bytes"));
    assert!(p.str_array("scalar", &mut b, |_, _| Ok(())).unwrap_err().message().contains("`scalar` must be an array of strings, got a string"));
    // The callback's own error ends the walk.
    let e = p.str_array("base_bdevs", &mut b, |i, _| if i == 1 { Err(RpcError::new(code::NO_SUCH_DEVICE, "nope")) } else { Ok(()) }).unwrap_err();
    assert_eq!(e.code, code::NO_SUCH_DEVICE);
}

/// SPDK's nested parameters (`listen_address`, `namespace`): members
/// checked and named like top-level ones.
#[test]
fn object_params_name_their_members() {
    let v = validate(br#"{"nqn":"nqn.x","listen_address":{"trtype":"TCP","traddr":"10.0.0.1","trsvcid":"4420"},"n":5}"#).unwrap();
    let p = Params::new(Some(v)).unwrap();
    let a = p.object("listen_address").unwrap().unwrap();
    let mut b = [0u8; 16];
    assert_eq!(a.str("traddr", &mut b).unwrap(), Some("10.0.0.1"));
    assert!(a.only(&["trtype", "traddr"]).unwrap_err().message().contains("unknown parameter `trsvcid`"));
    assert!(a.u64("traddr").unwrap_err().message().contains("`traddr` must be a non-negative integer"));
    assert_eq!(p.object("absent").unwrap().map(|_| ()), None);
    let e = p.object("n").unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message().contains("`n` must be an object, got a number"), "{}", e.message());
}

/// Every prefix and every single-byte corruption of a few requests:
/// never a panic, and every outcome is an answer or a clean rejection.
#[test]
fn corrupted_requests_never_panic() {
    let seeds: [&[u8]; 3] = [
        br#"{"jsonrpc":"2.0","method":"bdev_get_bdevs","params":{"name":"fn1n1"},"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"m\u00e9","params":[{"a":[[[]]]},-1.5e-7,"\ud83d\ude00"],"id":"x"}"#,
        br#"[{"jsonrpc":"2.0"}, 1, "two", null]"#,
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut out = [0u8; 1024];
    for s in seeds {
        for cut in 0..=s.len() {
            let _ = parse_request(&s[..cut]);
        }
        for _ in 0..3000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut m = s.to_vec();
            let at = (rng % m.len() as u64) as usize;
            m[at] = (rng >> 32) as u8;
            let mut f = Framer::new();
            let _ = f.scan(&m);
            match parse_request(&m) {
                Ok(r) => {
                    let _ = Params::new(r.params).and_then(|p| p.only(&["name"]));
                    let mut b = [0u8; 64];
                    let _ = r.method(&mut b);
                    assert!(response::result(&mut out, r.id, |w| {
                        w.null();
                        Ok(())
                    }) > 0);
                }
                Err(rej) => assert!(response::error(&mut out, rej.id, &rej.error) > 0),
            }
        }
    }
}

/// `bdev_nvme_attach_controller`'s parameters: SPDK's names and shapes
/// are taken; each bad one is -32602 naming it.
#[test]
fn attach_controller_params_are_checked_and_named() {
    use crate::nvme_attach::{parse_ipv4, AttachController, Buffers};
    let parse = |text: &str| -> Result<(String, [u8; 4], u16, String, String, Option<bool>, Option<bool>), (i32, String)> {
        let v = validate(text.as_bytes()).unwrap();
        let p = Params::new(Some(v)).unwrap();
        let mut b = Buffers::new();
        AttachController::parse(&p, &mut b)
            .map(|a| (a.name.to_string(), a.traddr, a.trsvcid, a.subnqn.to_string(), a.hostnqn.to_string(), a.hdgst, a.ddgst))
            .map_err(|e| (e.code, e.message().to_string()))
    };
    let ok = r#"{"name":"Nvme0","trtype":"TCP","adrfam":"IPv4","traddr":"10.0.0.10","trsvcid":"4421","subnqn":"nqn.2026-12.io.x:r","hostnqn":"nqn.h","hdgst":true}"#;
    assert_eq!(parse(ok).unwrap(), ("Nvme0".into(), [10, 0, 0, 10], 4421, "nqn.2026-12.io.x:r".into(), "nqn.h".into(), Some(true), None));
    // Defaults: trsvcid 4420, the card's host NQN and digests.
    let min = r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x"}"#;
    assert_eq!(parse(min).unwrap(), ("a".into(), [10, 0, 0, 10], 4420, "nqn.x".into(), String::new(), None, None));
    for (text, field) in [
        (r#"{"trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`name` is required"),
        (r#"{"name":"a b","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`name`"),
        (r#"{"name":"a234567890123456789012345","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`name`"),
        (r#"{"name":"a","trtype":"rdma","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`trtype`"),
        (r#"{"name":"a","trtype":6,"traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`trtype`"),
        (r#"{"name":"a","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`trtype` is required"),
        (r#"{"name":"a","trtype":"tcp","adrfam":"ipv6","traddr":"10.0.0.10","subnqn":"nqn.x"}"#, "`adrfam`"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.256","subnqn":"nqn.x"}"#, "`traddr`"),
        (r#"{"name":"a","trtype":"tcp","traddr":167772170,"subnqn":"nqn.x"}"#, "`traddr` must be a string"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","trsvcid":"0","subnqn":"nqn.x"}"#, "`trsvcid`"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","trsvcid":4420,"subnqn":"nqn.x"}"#, "`trsvcid` must be a string"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","trsvcid":"70000","subnqn":"nqn.x"}"#, "`trsvcid`"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10"}"#, "`subnqn` is required"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","subnqn":"iqn.x"}"#, "`subnqn`"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x","hostnqn":"h"}"#, "`hostnqn`"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x","ddgst":"yes"}"#, "`ddgst` must be a boolean"),
        (r#"{"name":"a","trtype":"tcp","traddr":"10.0.0.10","subnqn":"nqn.x","multipath":"failover"}"#, "unknown parameter `multipath`"),
    ] {
        let (c, m) = parse(text).unwrap_err();
        assert_eq!(c, code::INVALID_PARAMS, "{text}");
        assert!(m.contains(field), "{text}: {m}");
    }
    assert_eq!(parse_ipv4("192.168.0.1"), Some([192, 168, 0, 1]));
    for bad in ["", "1.2.3", "1.2.3.4.5", "1.2.3.-4", "1..3.4", "01234.1.1.1", " 1.2.3.4", "a.b.c.d"] {
        assert_eq!(parse_ipv4(bad), None, "{bad}");
    }
}

/// `accel_crypto_key_create` and `bdev_crypto_create`: SPDK's names and
/// shapes; each bad one is -32602 naming it, and no error quotes a key.
#[test]
fn crypto_params_are_checked_and_named() {
    use crate::crypto::{Buffers, CryptoCreate, KeyBuffers, KeyCreate};
    let k1 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let k2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let key = |text: &str| -> Result<(String, Vec<u8>), (i32, String)> {
        let v = validate(text.as_bytes()).unwrap();
        let p = Params::new(Some(v)).unwrap();
        let mut b = KeyBuffers::new();
        let r = KeyCreate::parse(&p, &mut b).map(|k| k.name.to_string());
        let bytes = b.key.to_vec();
        b.wipe();
        assert_eq!(b.key, [0; 64], "wiped");
        r.map(|n| (n, bytes)).map_err(|e| {
            assert!(!e.message().contains("00112233") && !e.message().contains("ffeeddcc"), "{}", e.message());
            (e.code, e.message().to_string())
        })
    };
    let ok = std::format!(r#"{{"cipher":"AES_XTS","name":"k0","key":"{k1}","key2":"{k2}","tweak_mode":"SIMPLE_LBA"}}"#);
    let (name, bytes) = key(&ok).unwrap();
    assert_eq!(name, "k0");
    assert_eq!(&bytes[..4], &[0x00, 0x11, 0x22, 0x33]);
    assert_eq!(&bytes[28..36], &[0xcc, 0xdd, 0xee, 0xff, 0xff, 0xee, 0xdd, 0xcc]);
    assert_eq!(bytes[63], 0x00);
    let short = &k1[..62];
    let bad_hex = k1.replace('0', "g");
    for (text, field) in [
        (std::format!(r#"{{"cipher":"AES_CBC","name":"k","key":"{k1}","key2":"{k2}"}}"#), "`cipher`"),
        (std::format!(r#"{{"cipher":5,"name":"k","key":"{k1}","key2":"{k2}"}}"#), "`cipher`"),
        (std::format!(r#"{{"name":"k","key":"{k1}","key2":"{k2}"}}"#), "`cipher` is required"),
        (std::format!(r#"{{"cipher":"AES_XTS","key":"{k1}","key2":"{k2}"}}"#), "`name` is required"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"a b","key":"{k1}","key2":"{k2}"}}"#), "`name`"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key2":"{k2}"}}"#), "`key` is required"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{short}","key2":"{k2}"}}"#), "`key` must be"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{bad_hex}","key2":"{k2}"}}"#), "`key` must be"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{k1}","key2":"{k1}00"}}"#), "`key2` must be"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{k1}","key2":7}}"#), "`key2` must be"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{k1}","key2":"{}"}}"#, k1.to_lowercase()), "`key2` must differ"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{k1}","key2":"{k2}","tweak_mode":"INCR_512_FULL_LBA"}}"#), "`tweak_mode`"),
        (std::format!(r#"{{"cipher":"AES_XTS","name":"k","key":"{k1}","key2":"{k2}","key3":"x"}}"#), "unknown parameter `key3`"),
    ] {
        let (code, msg) = key(&text).unwrap_err();
        assert_eq!(code, code::INVALID_PARAMS, "{text}");
        assert!(msg.contains(field), "{text}: {msg}");
    }
    let bdev = |text: &str| -> Result<(String, String, String), (i32, String)> {
        let v = validate(text.as_bytes()).unwrap();
        let p = Params::new(Some(v)).unwrap();
        let mut b = Buffers::new();
        CryptoCreate::parse(&p, &mut b).map(|c| (c.base_bdev_name.to_string(), c.name.to_string(), c.key_name.to_string())).map_err(|e| (e.code, e.message().to_string()))
    };
    assert_eq!(bdev(r#"{"base_bdev_name":"Nvme0n1","name":"crypt0","key_name":"k0"}"#).unwrap(), ("Nvme0n1".into(), "crypt0".into(), "k0".into()));
    for (text, field) in [
        (r#"{"name":"c","key_name":"k"}"#, "`base_bdev_name` is required"),
        (r#"{"base_bdev_name":"b","key_name":"k"}"#, "`name` is required"),
        (r#"{"base_bdev_name":"b","name":"c"}"#, "`key_name` is required"),
        (r#"{"base_bdev_name":"b","name":"c d","key_name":"k"}"#, "`name`"),
        (r#"{"base_bdev_name":1,"name":"c","key_name":"k"}"#, "`base_bdev_name` must be a string"),
        (r#"{"base_bdev_name":"b","name":"c","key_name":"k","crypto_pmd":"crypto_aesni_mb"}"#, "unknown parameter `crypto_pmd`"),
    ] {
        let (code, msg) = bdev(text).unwrap_err();
        assert_eq!(code, code::INVALID_PARAMS, "{text}");
        assert!(msg.contains(field), "{text}: {msg}");
    }
}

fn ec_create(json: &str) -> Result<crate::ec_create::EcCreate, RpcError> {
    let v = validate(json.as_bytes()).unwrap();
    let lim = crate::ec_create::Limits { max_k: 32, max_m: 4, max_members: 32 };
    crate::ec_create::EcCreate::parse(&Params::new(Some(v)).unwrap(), lim)
}

#[test]
fn ec_create_takes_members_then_spares() {
    let c = ec_create(r#"{"name":"ec0","k":2,"m":1,"base_bdevs":["A0n1","B0n1","C0n1","D0n1"],"spares":1,"scrub_every_ms":500}"#).unwrap();
    assert_eq!((c.name(), c.k, c.m, c.spares, c.scrub_every_ms, c.width()), ("ec0", 2, 1, 1, 500, 3));
    assert_eq!(c.bases().collect::<Vec<_>>(), ["A0n1", "B0n1", "C0n1", "D0n1"]);
    let c = ec_create(r#"{"name":"ec1","k":1,"m":1,"base_bdevs":["A0n1","B0n1"]}"#).unwrap();
    assert_eq!((c.spares, c.scrub_every_ms, c.count), (0, 0, 2), "defaults");
    let same = crate::ec_create::EcCreate::from_parts("ec1", 1, 1, 0, 0, ["A0n1", "B0n1"].into_iter()).unwrap();
    assert_eq!(same, c, "from the flash configuration, as from the request");
    assert!(crate::ec_create::EcCreate::from_parts("e c", 1, 1, 0, 0, [].into_iter()).is_none());
}

#[test]
fn ec_create_names_the_bad_field() {
    let bad = |json: &str, want: &str| {
        let e = ec_create(json).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS, "{json}");
        assert!(e.message().contains(want), "{json}: {}", e.message());
    };
    bad(r#"{"k":2,"m":1,"base_bdevs":["a","b","c"]}"#, "`name` is required");
    bad(r#"{"name":"e c","k":2,"m":1,"base_bdevs":["a","b","c"]}"#, "`name` must be");
    bad(r#"{"name":"ec","k":0,"m":1,"base_bdevs":["a"]}"#, "`k` must be in 1..=32, got 0");
    bad(r#"{"name":"ec","k":33,"m":1,"base_bdevs":["a"]}"#, "`k` must be in 1..=32");
    bad(r#"{"name":"ec","k":2,"m":0,"base_bdevs":["a","b"]}"#, "`m` must be in 1..=4, got 0");
    bad(r#"{"name":"ec","k":2,"m":5,"base_bdevs":["a"]}"#, "`m` must be in 1..=4, got 5");
    bad(r#"{"name":"ec","k":2,"base_bdevs":["a","b"]}"#, "`m` is required");
    bad(r#"{"name":"ec","k":2,"m":1}"#, "`base_bdevs` is required");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":["a","b"]}"#, "`base_bdevs` must name k + m + spares = 3 block devices, got 2");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":["a","b","c"],"spares":1}"#, "= 4 block devices, got 3");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":["a","b","a"]}"#, "`base_bdevs[2]` `a` is named twice");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":["a","b",3]}"#, "`base_bdevs[2]` must be a string");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":"a,b,c"}"#, "`base_bdevs` must be an array");
    bad(r#"{"name":"ec","k":2,"m":1,"base_bdevs":["a","b","c"],"level":5}"#, "unknown parameter `level`");
    bad(r#"{"name":"ec","k":12,"m":4,"base_bdevs":[],"spares":1}"#, "k + m + `spares` = 17 members, at most 16");
}

#[test]
fn ec_stripes_leave_room_for_the_superblock() {
    use crate::ec_create::stripes;
    assert_eq!(stripes(1 << 20, 4096), 255);
    assert_eq!(stripes(4096 * 3 + 100, 4096), 2);
    assert_eq!(stripes(4096, 4096), 0, "a member of one chunk holds only a superblock");
    assert_eq!(stripes(100, 4096), 0);
}

/// `Params::array` (`dpu_mgmt_set`'s `allow`): the elements in order,
/// absent as `None`, another type -32602 naming the parameter.
#[test]
fn array_parameters_give_their_elements_or_name_the_parameter() {
    let v = validate(br#"{"allow":["10.0.0.0/8","192.168.1.7/32"],"token":"t","none":[]}"#).unwrap();
    let p = Params::new(Some(v)).unwrap();
    let got: Vec<String> = p.array("allow").unwrap().unwrap().map(|e| e.unescape(&mut [0u8; 32]).unwrap().to_string()).collect();
    assert_eq!(got, ["10.0.0.0/8", "192.168.1.7/32"]);
    assert_eq!(p.array("none").unwrap().unwrap().count(), 0);
    assert!(p.array("missing").unwrap().is_none());
    let e = p.array("token").err().unwrap();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message().contains("`token` must be an array"), "{}", e.message());
}
