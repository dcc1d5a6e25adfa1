//! Progress reporting for long loads: a redrawn bar on a terminal, plain lines otherwise (logs,
//! CI, pipes), at most a few times a second so reporting never costs throughput.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Instant,
    terminal: bool,
    every: Duration,
}

impl Progress {
    /// Reports on standard error; `total` may be an estimate (0 when unknown).
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done: 0,
            started: now,
            last_draw: now,
            terminal,
            every: if terminal {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(5)
            },
        }
    }

    /// Silent progress (tests, `--quiet`).
    pub fn hidden() -> Progress {
        let mut p = Progress::new("", 0);
        p.every = Duration::MAX;
        p.terminal = false;
        p
    }

    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last_draw.elapsed() >= self.every {
            self.last_draw = Instant::now();
            self.draw(false);
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self) {
        if self.every != Duration::MAX {
            self.draw(true);
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn draw(&self, last: bool) {
        let mut err = std::io::stderr().lock();
        let total = self.total.max(self.done);
        if self.terminal {
            let width = 30usize;
            let filled = if total == 0 {
                0
            } else {
                (self.done as f64 / total as f64 * width as f64) as usize
            };
            let _ = write!(
                err,
                "\r{} [{}{}] {}/{} ({:.0}/s){}",
                self.label,
                "#".repeat(filled.min(width)),
                "-".repeat(width - filled.min(width)),
                self.done,
                total,
                self.rate(),
                if last { "\n" } else { "" }
            );
        } else {
            let _ = writeln!(
                err,
                "{}: {}/{} ({:.0}/s){}",
                self.label,
                self.done,
                total,
                self.rate(),
                if last { ", done" } else { "" }
            );
        }
        let _ = err.flush();
    }
}
