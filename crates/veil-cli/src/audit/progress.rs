//! Progress of long runs: a bar on a terminal, a line every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Shows how far a verification or export has got, on standard error.
pub struct Meter {
    bar: Option<ProgressBar>,
    phase: &'static str,
    last_line: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Meter {
    /// A bar when standard error is a terminal, periodic lines otherwise.
    pub fn new() -> Self {
        Self {
            bar: None,
            phase: "",
            last_line: Instant::now(),
        }
    }

    /// `done` of `total` (0: unknown) items of `phase`.
    pub fn update(&mut self, phase: &'static str, done: u64, total: u64) {
        if !std::io::stderr().is_terminal() {
            if self.last_line.elapsed() >= LINE_EVERY || (total > 0 && done == total) {
                if total > 0 {
                    eprintln!("{phase}: {done} of {total}");
                } else {
                    eprintln!("{phase}: {done}");
                }
                self.last_line = Instant::now();
            }
            return;
        }
        if self.phase != phase {
            if let Some(bar) = self.bar.take() {
                bar.finish();
            }
            let bar = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            let template =
                format!("{phase:>8} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} ({{eta}})");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
            self.phase = phase;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Ends the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
