//! Load generation shared by the `keyhaven bench` flows: per-step latency recording, the
//! virtual-user driver, the result report, and the embedded message receiver that stands in for
//! an SMS/email provider.

pub mod authenticator;
mod client;
pub mod import;
pub mod passage;
pub mod passkey;
mod receiver;
pub mod reference;
pub mod rsa;
pub mod tyntec;

pub use client::{http_client, post_json};
pub use receiver::{start_receiver, ReceivedMessage, Receiver};

use std::{collections::BTreeMap, fmt, future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinHandle;

/// Error kind recorded for an HTTP 429 answer; counted separately so the report can tell the
/// operator that the server's rate limit, not its speed, bounded the run.
pub const RATE_LIMITED: &str = "http 429";

/// The step every flow records for a whole pass.
pub const ROUND_TRIP: &str = "round_trip";

/// Highest latency the histograms track exactly; slower samples are clamped to it.
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

/// Latency samples and failures of one step of a flow.
#[derive(Debug, Clone)]
pub struct StepRecorder {
    histogram: Histogram<u64>,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
}

impl StepRecorder {
    pub fn new() -> anyhow::Result<Self> {
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
            .context("creating latency histogram")?;
        Ok(Self {
            histogram,
            errors: 0,
            error_kinds: BTreeMap::new(),
        })
    }

    /// Records one successful sample, with microsecond precision.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros);
    }

    /// Records one failure; `kind` is a short, low-cardinality label such as `http 500` or
    /// `timeout`.
    pub fn error(&mut self, kind: &str) {
        self.errors += 1;
        *self.error_kinds.entry(kind.to_owned()).or_insert(0) += 1;
    }

    /// Successful samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn errors_of_kind(&self, kind: &str) -> u64 {
        self.error_kinds.get(kind).copied().unwrap_or(0)
    }

    /// Latency at `quantile` (0.0..=1.0) of the successful samples, `None` without samples.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        (self.count() > 0)
            .then(|| Duration::from_micros(self.histogram.value_at_quantile(quantile)))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.count() > 0).then(|| Duration::from_micros(self.histogram.max()))
    }

    pub fn mean(&self) -> Option<Duration> {
        (self.count() > 0).then(|| Duration::from_secs_f64(self.histogram.mean() / 1e6))
    }

    pub fn merge(&mut self, other: &StepRecorder) -> anyhow::Result<()> {
        self.histogram
            .add(&other.histogram)
            .context("merging latency histograms")?;
        self.errors += other.errors;
        for (kind, n) in &other.error_kinds {
            *self.error_kinds.entry(kind.clone()).or_insert(0) += n;
        }
        Ok(())
    }
}

/// Per-step recorders of a flow, kept in the order the steps were first named.
#[derive(Debug, Clone)]
pub struct Recorder {
    steps: Vec<(String, StepRecorder)>,
}

impl Recorder {
    /// A recorder that already lists `steps`, so steps without samples still show in a report.
    pub fn new(steps: &[&str]) -> anyhow::Result<Self> {
        let mut recorder = Self { steps: Vec::new() };
        for step in steps {
            recorder.step_mut(step)?;
        }
        Ok(recorder)
    }

    pub fn step(&self, name: &str) -> Option<&StepRecorder> {
        self.steps.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    pub fn step_mut(&mut self, name: &str) -> anyhow::Result<&mut StepRecorder> {
        let index = match self.steps.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                self.steps.push((name.to_owned(), StepRecorder::new()?));
                self.steps.len() - 1
            }
        };
        Ok(&mut self.steps[index].1)
    }

    pub fn steps(&self) -> impl Iterator<Item = (&str, &StepRecorder)> {
        self.steps.iter().map(|(n, s)| (n.as_str(), s))
    }

    pub fn record(&mut self, step: &str, latency: Duration) -> anyhow::Result<()> {
        self.step_mut(step)?.record(latency);
        Ok(())
    }

    pub fn error(&mut self, step: &str, kind: &str) -> anyhow::Result<()> {
        self.step_mut(step)?.error(kind);
        Ok(())
    }

    /// Failures of `kind` summed over all steps.
    pub fn errors_of_kind(&self, kind: &str) -> u64 {
        self.steps.iter().map(|(_, s)| s.errors_of_kind(kind)).sum()
    }

    pub fn merge(&mut self, other: &Recorder) -> anyhow::Result<()> {
        for (name, step) in &other.steps {
            self.step_mut(name)?.merge(step)?;
        }
        Ok(())
    }

    fn apply(&mut self, iteration: &Iteration) -> anyhow::Result<()> {
        for (step, outcome) in &iteration.samples {
            match outcome {
                Ok(latency) => self.record(step, *latency)?,
                Err(kind) => self.error(step, kind)?,
            }
        }
        Ok(())
    }
}

/// What one pass of a virtual user through its flow produced.
#[derive(Debug, Clone, Default)]
pub struct Iteration {
    samples: Vec<(&'static str, Result<Duration, String>)>,
    completed: bool,
}

impl Iteration {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ok(&mut self, step: &'static str, latency: Duration) {
        self.samples.push((step, Ok(latency)));
    }

    pub fn fail(&mut self, step: &'static str, kind: impl Into<String>) {
        self.samples.push((step, Err(kind.into())));
    }

    /// Ends the pass at `step`, which failed with `kind`: the round trip fails with it.
    pub fn abandon(mut self, step: &'static str, kind: String) -> Self {
        self.fail(step, kind);
        self.fail(ROUND_TRIP, format!("failed at {step}"));
        self
    }

    /// Marks the pass as a completed round trip (it counts towards throughput).
    pub fn complete(&mut self) {
        self.completed = true;
    }

    pub fn is_completed(&self) -> bool {
        self.completed
    }
}

/// How many virtual users run for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Time an iteration still in flight at the end of `duration` may take to finish before it
    /// is dropped unrecorded; keeps the run bounded whatever the server does.
    pub grace: Duration,
}

impl LoadPlan {
    pub fn new(concurrency: usize, warmup: Duration, duration: Duration) -> Self {
        Self {
            concurrency,
            warmup,
            duration,
            grace: Duration::from_secs(30),
        }
    }
}

/// Samples and counts of one driven run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Samples of iterations started after the warm-up.
    pub measured: Recorder,
    /// Samples of warm-up iterations: not reported, but their 429s still tell about limits.
    pub warmup: Recorder,
    /// Completed round trips started after the warm-up.
    pub completed: u64,
    /// From the end of the warm-up to the end of the last measured iteration (at least the
    /// planned duration).
    pub elapsed: Duration,
}

impl RunOutcome {
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }
}

/// Runs `plan.concurrency` virtual users, each calling `user(index)` in a loop until the warm-up
/// and the measured duration have passed. Iterations that start during the warm-up are recorded
/// apart; no iteration starts after the deadline, and one still running `plan.grace` after it is
/// dropped, so the run always ends.
pub async fn drive<F, Fut>(plan: &LoadPlan, steps: &[&str], user: F) -> anyhow::Result<RunOutcome>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Iteration> + Send + 'static,
{
    anyhow::ensure!(plan.concurrency > 0, "concurrency must be at least 1");
    let user = Arc::new(user);
    let start = tokio::time::Instant::now();
    let measure_start = start + plan.warmup;
    let deadline = measure_start + plan.duration;
    let hard_stop = deadline + plan.grace;

    let mut tasks = AbortOnDrop(Vec::with_capacity(plan.concurrency));
    for index in 0..plan.concurrency {
        let user = Arc::clone(&user);
        let mut measured = Recorder::new(steps)?;
        let mut warmup = Recorder::new(steps)?;
        tasks.0.push(tokio::spawn(async move {
            let mut completed = 0u64;
            let mut last_end = None;
            loop {
                let started = tokio::time::Instant::now();
                if started >= deadline {
                    break;
                }
                let Ok(iteration) = tokio::time::timeout_at(hard_stop, user(index)).await else {
                    break;
                };
                if started >= measure_start {
                    measured.apply(&iteration)?;
                    completed += u64::from(iteration.completed);
                    last_end = Some(tokio::time::Instant::now());
                } else {
                    warmup.apply(&iteration)?;
                }
            }
            anyhow::Ok((measured, warmup, completed, last_end))
        }));
    }

    let mut outcome = RunOutcome {
        measured: Recorder::new(steps)?,
        warmup: Recorder::new(steps)?,
        completed: 0,
        elapsed: plan.duration,
    };
    let mut last_end = deadline;
    for joined in futures::future::join_all(tasks.0.iter_mut()).await {
        let (measured, warmup, completed, end) = joined.context("virtual user task failed")??;
        outcome.measured.merge(&measured)?;
        outcome.warmup.merge(&warmup)?;
        outcome.completed += completed;
        if let Some(end) = end {
            last_end = last_end.max(end);
        }
    }
    outcome.elapsed = last_end.saturating_duration_since(measure_start);
    Ok(outcome)
}

/// Three decimals: microseconds for milliseconds, and no float noise in the JSON report.
fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Stops the virtual users when the driver is dropped early (an interrupted run), so none keeps
/// sending on its own.
struct AbortOnDrop<T>(Vec<JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Latency summary of one step, in milliseconds; `None` (JSON `null`) without samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub name: String,
    /// Successful samples.
    pub count: u64,
    pub errors: u64,
    /// Failures by kind (`http 500`, `timeout`, ...).
    pub error_kinds: BTreeMap<String, u64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

impl StepReport {
    pub fn from_recorder(name: &str, step: &StepRecorder) -> Self {
        let ms = |d: Option<Duration>| d.map(|d| round3(d.as_secs_f64() * 1e3));
        Self {
            name: name.to_owned(),
            count: step.count(),
            errors: step.errors(),
            error_kinds: step.error_kinds.clone(),
            p50_ms: ms(step.quantile(0.50)),
            p90_ms: ms(step.quantile(0.90)),
            p99_ms: ms(step.quantile(0.99)),
            max_ms: ms(step.max()),
            mean_ms: ms(step.mean()),
        }
    }
}

/// Result of one benchmark run: `Display` prints a table for people, `Serialize` feeds `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which flow ran (`tyntec`).
    pub flow: String,
    /// Base URL of the server under test.
    pub target: String,
    pub concurrency: usize,
    pub warmup_secs: f64,
    /// Measured time: from the end of the warm-up to the end of the last measured iteration.
    pub duration_secs: f64,
    /// Completed round trips in the measured time.
    pub round_trips: u64,
    /// Completed round trips per second.
    pub throughput_per_sec: f64,
    /// HTTP 429 answers over the whole run, warm-up and setup included.
    pub rate_limited: u64,
    pub steps: Vec<StepReport>,
    /// Hints for the operator (rate limiting, missing messages, cleanup failures).
    pub notes: Vec<String>,
}

impl Report {
    /// A report of `outcome`; 429s counted outside the driver (setup, teardown) go in
    /// `extra_rate_limited`.
    pub fn from_outcome(
        flow: &str,
        target: &str,
        plan: &LoadPlan,
        outcome: &RunOutcome,
        extra_rate_limited: u64,
    ) -> Self {
        let rate_limited = outcome.measured.errors_of_kind(RATE_LIMITED)
            + outcome.warmup.errors_of_kind(RATE_LIMITED)
            + extra_rate_limited;
        let mut notes = Vec::new();
        if rate_limited > 0 {
            notes.push(format!(
                "{rate_limited} requests were answered 429 Too Many Requests: the server's rate \
                 limit bounded this run; raise KEYHAVEN_RATE_LIMIT_CALLS on the server under test"
            ));
        }
        Self {
            flow: flow.to_owned(),
            target: target.to_owned(),
            concurrency: plan.concurrency,
            warmup_secs: round3(plan.warmup.as_secs_f64()),
            duration_secs: round3(outcome.elapsed.as_secs_f64()),
            round_trips: outcome.completed,
            throughput_per_sec: round3(outcome.throughput()),
            rate_limited,
            steps: outcome
                .measured
                .steps()
                .map(|(name, step)| StepReport::from_recorder(name, step))
                .collect(),
            notes,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench {} against {}: {} users, {:.1} s measured after {:.1} s warm-up",
            self.flow, self.target, self.concurrency, self.duration_secs, self.warmup_secs
        )?;
        writeln!(
            f,
            "round trips: {} completed, {:.1}/s",
            self.round_trips, self.throughput_per_sec
        )?;
        writeln!(f)?;
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max("step".len());
        writeln!(
            f,
            "{:<width$} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "step", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"
        )?;
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        for s in &self.steps {
            writeln!(
                f,
                "{:<width$} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}",
                s.name,
                s.count,
                s.errors,
                ms(s.p50_ms),
                ms(s.p90_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            )?;
        }
        let failing: Vec<_> = self.steps.iter().filter(|s| s.errors > 0).collect();
        if !failing.is_empty() {
            writeln!(f)?;
            writeln!(f, "errors:")?;
            for s in failing {
                let kinds: Vec<String> = s
                    .error_kinds
                    .iter()
                    .map(|(kind, n)| format!("{kind} x{n}"))
                    .collect();
                writeln!(f, "  {:<width$} {}", s.name, kinds.join(", "))?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            for note in &self.notes {
                writeln!(f, "note: {note}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
