//! Every seed in `corpus/` and every input that ever crashed a target
//! (`crashes/`) runs through its target: a fixed bug stays fixed, and the
//! seeds stay valid inputs.

use dpu_fuzz::{engine, TARGETS};
use std::time::Duration;

#[test]
fn corpus_and_crash_regressions_pass() {
    let mut failures = Vec::new();
    let mut total = 0;
    for t in TARGETS {
        let inputs = engine::inputs_of(t);
        assert!(!inputs.is_empty(), "{}: no corpus in {}", t.name, dpu_fuzz::corpus_dir(t.name).display());
        total += inputs.len();
        if let Err(f) = engine::replay(t, &inputs, Duration::from_secs(30)) {
            failures.push(format!("{}: {f}", t.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= TARGETS.len());
}

#[test]
fn crash_directories_name_real_targets() {
    for (p, _) in dpu_fuzz::read_dir_files(&dpu_fuzz::fuzz_dir().join("crashes")) {
        panic!("{}: crash inputs go in crashes/<target>/", p.display());
    }
    if let Ok(rd) = std::fs::read_dir(dpu_fuzz::fuzz_dir().join("crashes")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            assert!(dpu_fuzz::target(&name).is_some(), "crashes/{name}: no such target");
        }
    }
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let dir = dpu_fuzz::fuzz_dir().join("libfuzzer");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for t in TARGETS {
        let src = std::fs::read_to_string(dir.join(format!("fuzz_targets/{}.rs", t.name)))
            .unwrap_or_else(|e| panic!("libfuzzer/fuzz_targets/{}.rs: {e}", t.name));
        assert!(src.contains(&format!("target(\"{}\")", t.name)), "{}: runs another target", t.name);
        assert!(manifest.contains(&format!("name = \"{}\"", t.name)), "libfuzzer/Cargo.toml has no [[bin]] {}", t.name);
    }
}
