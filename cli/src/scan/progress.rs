//! What a scan tells the person watching it: a progress bar on a terminal
//! (files done out of found so far, matches, rate, time left) and a summary
//! at the end. Both go to standard error, so the JSON lines on standard
//! output stay clean; the bar is drawn only when standard error is a
//! terminal, never into a log file.

use std::fmt;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Files by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Images hashed and looked up.
    pub images: u64,
    /// Images with at least one match.
    pub matched: u64,
    /// Files that are not images.
    pub not_images: u64,
    /// Files that could not be read, hashed or looked up.
    pub errors: u64,
    /// Files finished by an earlier run (`--resume`).
    pub resumed: u64,
}

impl Counts {
    /// Files finished in this run.
    pub fn done(&self) -> u64 {
        self.images + self.not_images + self.errors
    }
}

/// The final summary line.
pub struct Summary {
    pub counts: Counts,
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            c.images as f64 / seconds
        } else {
            0.0
        };
        write!(
            f,
            "scanned {} files in {seconds:.1}s: {} images ({rate:.1}/s), {} matched, \
             {} not images, {} errors",
            c.done(),
            c.images,
            c.matched,
            c.not_images,
            c.errors
        )?;
        if c.resumed > 0 {
            write!(f, "; {} already done by an earlier run", c.resumed)?;
        }
        Ok(())
    }
}

/// The bar, or nothing when it should not be drawn.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A bar on standard error if `show` (the caller checks for a terminal).
    pub fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} files, {msg}, {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    /// Shows the state; cheap enough to call per file.
    pub fn update(&mut self, counts: &Counts, found: u64, walking: bool) {
        let Some(bar) = &self.bar else { return };
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        bar.set_length(found);
        bar.set_position(counts.done());
        let rate = counts.done() as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let walking = if walking { ", still walking" } else { "" };
        bar.set_message(format!(
            "{} matched, {rate:.0} files/s{walking}",
            counts.matched
        ));
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
