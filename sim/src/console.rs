//! Log output of the simulated chip: UART lines and decoded defmt frames,
//! each stamped with simulated time and the hart that produced it.

use std::collections::VecDeque;
use std::io::Write;

/// Where a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Uart,
    Defmt,
}

/// One line of firmware output.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub cycle: u64,
    pub hart: u32,
    pub source: Source,
    pub level: Option<String>,
    pub text: String,
}

/// Collects, prints and remembers log lines.
pub struct Console {
    clock_hz: u64,
    /// Do not print lines as they arrive.
    pub quiet: bool,
    /// Print lines on stderr instead of stdout (`dpusim --json` keeps
    /// stdout for the JSON document).
    pub to_stderr: bool,
    /// Printing failed (e.g. a closed pipe: `dpusim | head`); the run goes
    /// on without printing more lines.
    pub output_closed: bool,
    recent: VecDeque<LogLine>,
    /// Every line (kept when `capture_all` is set; tests and reports use it).
    pub all: Vec<LogLine>,
    pub capture_all: bool,
    /// Lines per level (ERROR/WARN/...), for the summary.
    pub errors: u64,
    pub warnings: u64,
}

const RECENT: usize = 32;

impl Console {
    pub fn new(clock_hz: u64) -> Console {
        Console {
            clock_hz,
            quiet: false,
            to_stderr: false,
            output_closed: false,
            recent: VecDeque::with_capacity(RECENT),
            all: Vec::new(),
            capture_all: false,
            errors: 0,
            warnings: 0,
        }
    }

    /// Formats a line the way the simulator prints it.
    pub fn format(&self, l: &LogLine) -> String {
        let ms = l.cycle as f64 * 1000.0 / self.clock_hz as f64;
        let level = match (&l.level, l.source) {
            (Some(lv), _) => format!("{lv:<5}"),
            (None, Source::Uart) => "UART ".to_string(),
            (None, Source::Defmt) => "     ".to_string(),
        };
        format!("[{ms:>11.6} ms] h{:02} {level} {}", l.hart, l.text)
    }

    pub fn emit(&mut self, cycle: u64, hart: u32, source: Source, level: Option<String>, text: String) {
        let line = LogLine { cycle, hart, source, level, text };
        match line.level.as_deref() {
            Some("ERROR") => self.errors += 1,
            Some("WARN") => self.warnings += 1,
            _ => {}
        }
        if !self.quiet && !self.output_closed {
            let s = self.format(&line);
            let r = if self.to_stderr { writeln!(std::io::stderr().lock(), "{s}") } else { writeln!(std::io::stdout().lock(), "{s}") };
            self.output_closed = r.is_err();
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        if self.capture_all {
            self.all.push(line.clone());
        }
        self.recent.push_back(line);
    }

    /// The most recent lines (oldest first).
    pub fn recent(&self) -> impl Iterator<Item = &LogLine> {
        self.recent.iter()
    }
}
