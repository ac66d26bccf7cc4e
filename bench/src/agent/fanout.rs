//! The fan-out phase: many subscribers follow one session while runs stream long
//! answers; each checks that it got every numbered event, in order, and no `resync`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mosaic_api::PostMessageResponse;
use tokio::sync::{mpsc, watch};

use super::api::{read_events, Api, Event};
use super::upstream::Upstream;
use super::{Args, RUN_TIMEOUT, STRAGGLER_GRACE};
use crate::llm::proc::own_cpu;

/// What one subscriber saw over the whole phase.
#[derive(Default)]
pub struct Seen {
    /// Numbered events, in all.
    pub events: u64,
    /// Numbered events per run (the run a `run_finished` ends counts it).
    pub per_run: Vec<u64>,
    pub text_deltas: u64,
    pub first_id: Option<u64>,
    pub last_id: Option<u64>,
    /// Numbers skipped between two consecutive events.
    pub gaps: u64,
    /// Events whose number was not above the previous one.
    pub disorder: u64,
    pub resyncs: u64,
    pub finishes: usize,
    pub error: Option<String>,
}

impl Seen {
    /// Take in one event; true when it ended a run.
    fn take(&mut self, event: &Event) -> bool {
        if let Some(id) = event.id {
            match self.last_id {
                Some(last) if id > last + 1 => self.gaps += id - last - 1,
                Some(last) if id <= last => self.disorder += 1,
                Some(_) => {}
                None => self.first_id = Some(id),
            }
            self.last_id = Some(id);
            self.events += 1;
            if self.per_run.len() <= self.finishes {
                self.per_run.resize(self.finishes + 1, 0);
            }
            self.per_run[self.finishes] += 1;
        }
        match event.kind.as_str() {
            "text_delta" => self.text_deltas += 1,
            "resync" => self.resyncs += 1,
            "run_finished" => {
                self.finishes += 1;
                return true;
            }
            _ => {}
        }
        false
    }
}

pub enum Signal {
    Ready,
    Finished(Instant),
}

/// One run of the phase.
pub struct FanRun {
    /// POST to the first subscriber's `run_finished`: the run itself.
    pub run: Duration,
    /// POST to the last subscriber's `run_finished` (None: some never saw it).
    pub delivered: Option<Duration>,
    /// POST to each subscriber's `run_finished`.
    pub each: Vec<Duration>,
    pub gateway_cpu: Duration,
    pub bench_cpu: Duration,
}

pub struct Fanout {
    /// Run 0 is the warm-up.
    pub runs: Vec<FanRun>,
    pub seen: Vec<Seen>,
    pub rss_kib: u64,
}

pub async fn run(
    api: &Api,
    upstream: &Upstream,
    server: &crate::server::Server,
    args: &Args,
) -> Result<Fanout> {
    upstream.set_chunks(args.chunks);
    let session = api.new_session().await?;
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let mut readers = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        let response = api.events(&session).await?;
        let (signal_tx, stop) = (signal_tx.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let read = read_events(response, stop, |event| {
                let signal = if event.kind == "subscribed" {
                    Some(Signal::Ready)
                } else if seen.take(&event) {
                    Some(Signal::Finished(event.at))
                } else {
                    None
                };
                signal.is_none_or(|s| signal_tx.send(s).is_ok())
            })
            .await;
            if let Err(e) = read {
                seen.error = Some(format!("{e:#}"));
            }
            seen
        }));
    }
    drop(signal_tx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for _ in 0..args.subscribers {
        match tokio::time::timeout_at(deadline, signals.recv()).await {
            Ok(Some(Signal::Ready)) => {}
            _ => bail!("not every subscriber got subscribed within 30 s"),
        }
    }
    let mut runs = Vec::new();
    for n in 0..=args.fanout_runs {
        let (gateway_before, bench_before) = (server.cpu_time()?, own_cpu());
        let posted = Instant::now();
        match api.post_message(&session, &format!("message {n}")).await? {
            PostMessageResponse::Started { .. } => {}
            PostMessageResponse::Queued { .. } => bail!("run {n} was queued behind another"),
            PostMessageResponse::Unknown => bail!("run {n}: an answer this bench does not know"),
        }
        let mut each = Vec::with_capacity(args.subscribers);
        let mut deadline = tokio::time::Instant::from_std(posted + RUN_TIMEOUT);
        while each.len() < args.subscribers {
            match tokio::time::timeout_at(deadline, signals.recv()).await {
                Ok(Some(Signal::Finished(at))) => {
                    if each.is_empty() {
                        deadline = deadline.min(tokio::time::Instant::now() + STRAGGLER_GRACE);
                    }
                    each.push(at.saturating_duration_since(posted));
                }
                Ok(Some(Signal::Ready)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        ensure!(!each.is_empty(), "run {n}: no subscriber saw it end");
        each.sort_unstable();
        runs.push(FanRun {
            run: each[0],
            delivered: (each.len() == args.subscribers).then(|| each[each.len() - 1]),
            each,
            gateway_cpu: server.cpu_time()?.saturating_sub(gateway_before),
            bench_cpu: own_cpu().saturating_sub(bench_before),
        });
    }
    let rss_kib = server.memory_kib()?.rss_kib;
    let _ = stop_tx.send(true);
    let mut seen = Vec::with_capacity(readers.len());
    for reader in readers {
        seen.push(reader.await.context("a subscriber panicked")?);
    }
    Ok(Fanout {
        runs,
        seen,
        rss_kib,
    })
}

/// The loss verdict of the fan-out phase.
pub struct Loss {
    /// Events numbered during the phase (the widest range any subscriber saw).
    pub published: u64,
    /// Events some subscriber missed, summed over subscribers.
    pub missing: u64,
    pub resyncs: u64,
    pub disorder: u64,
    /// Subscribers that missed anything, saw a run end fewer times than runs were
    /// made, or failed.
    pub short: usize,
    pub first_error: Option<String>,
}

pub fn loss(f: &Fanout) -> Loss {
    let first = f.seen.iter().filter_map(|s| s.first_id).min();
    let last = f.seen.iter().filter_map(|s| s.last_id).max();
    let published = match (first, last) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    let incomplete = |s: &Seen| {
        s.events < published || s.resyncs > 0 || s.disorder > 0 || s.finishes < f.runs.len()
    };
    Loss {
        published,
        missing: f
            .seen
            .iter()
            .map(|s| published.saturating_sub(s.events))
            .sum(),
        resyncs: f.seen.iter().map(|s| s.resyncs).sum(),
        disorder: f.seen.iter().map(|s| s.disorder).sum(),
        short: f
            .seen
            .iter()
            .filter(|s| incomplete(s) || s.error.is_some())
            .count(),
        first_error: f.seen.iter().find_map(|s| s.error.clone()),
    }
}
