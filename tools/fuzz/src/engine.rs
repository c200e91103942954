//! The stable fuzzing engine: replays a target's corpus and crash
//! regressions, then runs mutants of them (see [`crate::mutate`]) for a
//! time or iteration budget. Deterministic for a seed (the inputs tried
//! depend only on the seed, the corpus and the iteration count).
//!
//! Each input runs on a worker thread under a watchdog: a panic is a
//! crash, an input still running after `timeout` is a hang; both are
//! failures that carry the input, saved by the caller for the regression
//! directory.

use crate::mutate::{mutate, Rng};
use crate::Target;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How long and how hard to fuzz.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Stop after this long (mutation phase).
    pub time: Duration,
    /// Stop after this many mutants.
    pub iterations: u64,
    pub seed: u64,
    /// An input running longer than this is a hang.
    pub timeout: Duration,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Corpus and regression inputs replayed.
    pub replayed: usize,
    /// Mutants run.
    pub execs: u64,
    pub elapsed: Duration,
    /// Slowest input.
    pub slowest: Duration,
}

/// A failing input.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub input: Vec<u8>,
    /// Where it came from: a file name, or "mutant N of <file>".
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The target panicked (message with location).
    Panic(String),
    /// The input ran longer than the timeout.
    Hang(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            FailureKind::Panic(m) => write!(f, "panic on {} ({} bytes): {m}", self.origin, self.input.len()),
            FailureKind::Hang(t) => write!(f, "hang on {} ({} bytes): still running after {:.1} s", self.origin, self.input.len(), t.as_secs_f64()),
        }
    }
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Records panic messages (with their location) instead of printing them.
fn quiet_panics() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            if let Ok(mut p) = LAST_PANIC.lock() {
                *p = Some(info.to_string());
            }
        }));
    });
}

/// Runs inputs of one target on a worker thread with a watchdog.
pub struct Runner {
    target: &'static Target,
    timeout: Duration,
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<(Result<(), String>, Duration)>,
    /// Set once a hang left the worker stuck: nothing more can run.
    stuck: bool,
}

impl Runner {
    pub fn new(target: &'static Target, timeout: Duration) -> Runner {
        quiet_panics();
        let (tx, work) = mpsc::channel::<Vec<u8>>();
        let (done, rx) = mpsc::channel();
        let run = target.run;
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .stack_size(64 << 20)
            .spawn(move || {
                for input in work {
                    let t = Instant::now();
                    let r = catch_unwind(AssertUnwindSafe(|| run(&input))).map_err(|e| {
                        let recorded = LAST_PANIC.lock().ok().and_then(|mut p| p.take());
                        recorded.unwrap_or_else(|| {
                            e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
                        })
                    });
                    if done.send((r, t.elapsed())).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the fuzz worker");
        Runner { target, timeout, tx, rx, stuck: false }
    }

    /// Runs one input: its time, or why it failed.
    pub fn run(&mut self, input: &[u8]) -> Result<Duration, FailureKind> {
        assert!(!self.stuck, "the worker of {} is stuck in a hang", self.target.name);
        self.tx.send(input.to_vec()).expect("fuzz worker alive");
        match self.rx.recv_timeout(self.timeout) {
            Ok((Ok(()), t)) => Ok(t),
            Ok((Err(msg), _)) => Err(FailureKind::Panic(msg)),
            Err(_) => {
                self.stuck = true;
                Err(FailureKind::Hang(self.timeout))
            }
        }
    }
}

/// Runs every input once (corpus replay, regression tests).
pub fn replay(target: &'static Target, inputs: &[(String, Vec<u8>)], timeout: Duration) -> Result<Report, Failure> {
    let t0 = Instant::now();
    let mut r = Runner::new(target, timeout);
    let mut slowest = Duration::ZERO;
    for (origin, input) in inputs {
        match r.run(input) {
            Ok(t) => slowest = slowest.max(t),
            Err(kind) => return Err(Failure { kind, input: input.clone(), origin: origin.clone() }),
        }
    }
    Ok(Report { replayed: inputs.len(), execs: 0, elapsed: t0.elapsed(), slowest })
}

/// Replays `inputs`, then runs mutants of them within `budget`.
pub fn fuzz(target: &'static Target, inputs: &[(String, Vec<u8>)], budget: &Budget) -> Result<Report, Failure> {
    let t0 = Instant::now();
    let mut report = replay(target, inputs, budget.timeout)?;
    let mut r = Runner::new(target, budget.timeout);
    let mut rng = Rng::new(budget.seed ^ fnv(target.name.as_bytes()));
    let empty = (String::from("(empty input)"), Vec::new());
    let pool: Vec<&(String, Vec<u8>)> = if inputs.is_empty() { vec![&empty] } else { inputs.iter().collect() };
    let start = Instant::now();
    let mut execs = 0u64;
    while execs < budget.iterations && start.elapsed() < budget.time {
        let (origin, base) = pool[rng.below(pool.len())];
        let other = &pool[rng.below(pool.len())].1;
        let mut m = base.clone();
        mutate(&mut rng, &mut m, other);
        execs += 1;
        match r.run(&m) {
            Ok(t) => report.slowest = report.slowest.max(t),
            Err(kind) => return Err(Failure { kind, input: m, origin: format!("mutant {execs} of {origin}") }),
        }
    }
    report.execs = execs;
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// FNV-1a (file names of saved inputs, per-target seeds).
pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The seed corpus and crash regressions of a target, named by file.
pub fn inputs_of(target: &Target) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for dir in [crate::corpus_dir(target.name), crate::crashes_dir(target.name)] {
        for (p, b) in crate::read_dir_files(&dir) {
            let name = p.strip_prefix(crate::fuzz_dir()).unwrap_or(&p).display().to_string();
            v.push((name, b));
        }
    }
    v
}

/// Parses "90s", "5m", "500ms", "2h" or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 60s, 5m, 500ms)"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        u => return Err(format!("unknown time unit `{u}` in `{s}` (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics_on_x(d: &[u8]) {
        assert!(!d.contains(&b'x'), "found an x");
    }
    fn spins_on_h(d: &[u8]) {
        while d.first() == Some(&b'h') {
            std::hint::spin_loop();
        }
    }
    static PANICS: Target = Target { name: "test_panics", about: "", run: panics_on_x };
    static SPINS: Target = Target { name: "test_spins", about: "", run: spins_on_h };

    #[test]
    fn a_panic_is_a_failure_with_its_input_and_location() {
        let inputs = vec![("a".to_string(), b"abc".to_vec()), ("b".to_string(), b"xyz".to_vec())];
        let f = replay(&PANICS, &inputs, Duration::from_secs(5)).unwrap_err();
        assert_eq!((f.origin.as_str(), f.input.as_slice()), ("b", &b"xyz"[..]));
        assert!(matches!(&f.kind, FailureKind::Panic(m) if m.contains("found an x") && m.contains("engine.rs")), "{f}");
    }

    #[test]
    fn mutation_finds_a_byte_and_a_hang_is_reported() {
        let budget = Budget { time: Duration::from_secs(20), iterations: 1_000_000, seed: 3, timeout: Duration::from_secs(5) };
        let f = fuzz(&PANICS, &[("seed".into(), b"abcdefgh".to_vec())], &budget).unwrap_err();
        assert!(f.input.contains(&b'x') && f.origin.starts_with("mutant "), "{f}");
        let f = replay(&SPINS, &[("h".into(), b"h".to_vec())], Duration::from_millis(200)).unwrap_err();
        assert_eq!(f.kind, FailureKind::Hang(Duration::from_millis(200)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err() && parse_duration("3 weeks").is_err());
    }
}
