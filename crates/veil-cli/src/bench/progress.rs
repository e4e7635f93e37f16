//! Progress of a phase on standard error: a bar on a terminal, a plain line every few
//! seconds otherwise. The load itself only bumps a counter.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running display of one phase.
pub struct Progress {
    counter: Arc<AtomicU64>,
    ticker: JoinHandle<()>,
    bar: Option<ProgressBar>,
    phase: &'static str,
    started: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Starts showing `phase` of `total` items (0: unknown).
    pub fn start(phase: &'static str, total: u64) -> Self {
        let counter = Arc::new(AtomicU64::new(0));
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            let template = format!(
                "{phase:>10} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {{per_sec}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        if bar.is_none() {
            eprintln!("{phase}: started");
        }
        let ticker = {
            let counter = counter.clone();
            let bar = bar.clone();
            tokio::spawn(async move {
                let mut last_line = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let done = counter.load(Ordering::Relaxed);
                    match &bar {
                        Some(bar) => bar.set_position(done),
                        None if last_line.elapsed() >= LINE_EVERY => {
                            eprintln!("{phase}: {done} of {total}");
                            last_line = Instant::now();
                        }
                        None => {}
                    }
                }
            })
        };
        Self {
            counter,
            ticker,
            bar,
            phase,
            started: Instant::now(),
        }
    }

    /// The counter the load bumps.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    /// Ends the display.
    pub fn finish(self) {
        self.ticker.abort();
        let done = self.counter.load(Ordering::Relaxed);
        match self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.finish();
            }
            None => eprintln!(
                "{}: {done} done in {:.1} s",
                self.phase,
                self.started.elapsed().as_secs_f64()
            ),
        }
    }
}
