//! Progress of long request loops: a bar (done/total, rate, ETA, pacing wait) on a terminal, the
//! plain lines of old elsewhere.
//!
//! The jobs (floor 6) and the surface history (query) report through this module; the command
//! line (floor 8) chooses the style once, with [`set_style`], before a run: [`Style::Bars`] when
//! standard error is a terminal, [`Style::Lines`] otherwise (CI, cron, pipes — the lines keep their
//! format, so scripts and tests reading them keep working). A process-wide setting, not a field of
//! each ingester: the style is a property of the process's terminal, not of a run.
//! Bars are drawn by `indicatif` (well kept, handles terminal width and redraw rate).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line to standard error per step (the default: what a library caller or a pipe gets).
    Lines,
    /// Redrawn bars on standard error, with rate and ETA.
    Bars,
}

static STYLE: AtomicU8 = AtomicU8::new(0);

/// Sets how progress is shown for the rest of the process.
pub fn set_style(style: Style) {
    STYLE.store(if style == Style::Bars { 1 } else { 0 }, Ordering::Relaxed);
}

/// How progress is shown now.
pub fn style() -> Style {
    if STYLE.load(Ordering::Relaxed) == 1 {
        Style::Bars
    } else {
        Style::Lines
    }
}

/// Bars when `stderr_is_terminal`, lines otherwise.
pub fn style_for(stderr_is_terminal: bool) -> Style {
    if stderr_is_terminal {
        Style::Bars
    } else {
        Style::Lines
    }
}

fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// Prints a progress line to standard error; above the bars when bars are drawn.
pub fn line(text: &str) {
    if style() == Style::Bars && multi().println(text).is_ok() {
        return;
    }
    eprintln!("{text}");
}

/// One loop's bar; `None` inside when progress goes as lines (the caller then prints its lines).
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar of `total` steps labelled `label`, when bars are drawn.
    pub fn start(label: &str, total: u64) -> Bar {
        if style() != Style::Bars {
            return Bar(None);
        }
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let pb = multi().add(ProgressBar::new(total));
        pb.set_style(style);
        pb.set_prefix(label.to_string());
        pb.enable_steady_tick(Duration::from_millis(250));
        Bar(Some(pb))
    }

    /// A bar never drawn (progress is off).
    pub fn start_hidden() -> Bar {
        Bar(None)
    }

    /// Whether this bar is drawn (when not, the caller prints its plain line).
    pub fn drawn(&self) -> bool {
        self.0.is_some()
    }

    /// Moves the bar to `done` steps, with a short note (rows, pacing wait).
    pub fn set(&self, done: u64, note: String) {
        if let Some(pb) = &self.0 {
            pb.set_position(done);
            pb.set_message(note);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
            multi().remove(&pb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_draw_no_bar_and_terminals_get_bars() {
        assert_eq!(style_for(false), Style::Lines);
        assert_eq!(style_for(true), Style::Bars);
        // The default style is lines: a bar started then is not drawn; with bars it is (one test
        // only sets the process-wide style, so no other test sees it change).
        assert_eq!(style(), Style::Lines);
        assert!(!Bar::start("x", 10).drawn());
        set_style(Style::Bars);
        let drawn = Bar::start("x", 10).drawn();
        let hidden = Bar::start_hidden().drawn();
        set_style(Style::Lines);
        assert!(drawn && !hidden);
    }
}
