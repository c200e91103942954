#![no_main]
// Generated from dpu_fuzz::TARGETS: one libFuzzer binary per target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| (dpu_fuzz::target("rpc").expect("target").run)(data));
