//! Benchmarks (placeholder module filled below).
pub fn run(_name: Option<&str>) -> Result<(), String> {
    Err("no benchmarks yet".into())
}
