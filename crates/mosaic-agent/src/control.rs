//! Run control: reaching the run active in a session from wherever a request arrives.
//! An interrupt, the answer to an approval, the news that a steer waits in the queue:
//! each is a [`Signal`] sent to the session's active run, which receives the signals on
//! a stream from when it starts until it ends.
//!
//! The runtime uses run control only through [`RunControl`]. [`LocalControl`] is the
//! in-process implementation; one shared by several replicas (Valkey pub/sub with the
//! pending approvals in a hash, or the database with LISTEN/NOTIFY) implements the same
//! trait and passes the same suite ([`crate::conformance::run_control`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::Stream;
use mosaic_api::PendingApproval;
use mosaic_llm::BoxFuture;
use tokio::sync::mpsc;

/// Something a running run must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Stop, keeping what streamed.
    Interrupt,
    /// The user answered the approval of tool call `call_id`.
    Approval {
        call_id: String,
        approved: bool,
        note: Option<String>,
    },
    /// A message sent as a steer waits in the session's queue.
    Steer,
}

/// The signals of one run, until it ends.
pub type Signals = Pin<Box<dyn Stream<Item = Signal> + Send>>;

/// The run active in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRun {
    pub run_id: String,
    /// The user the run acts for.
    pub owner: String,
    /// The approvals it waits for, oldest first.
    pub approvals: Vec<PendingApproval>,
}

/// Why run control could not do something.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// No approval waits under that call id (none was asked, or it was answered).
    #[error("not found")]
    NotFound,
    /// Another run is active in the session.
    #[error("a run is already active in this session")]
    Busy,
    /// The backend (another process's) failed.
    #[error("run control is unavailable: {0}")]
    Unavailable(String),
}

/// Signals to runs, and what they wait for. Async, fallible and owned throughout, so an
/// implementation may keep it in another process.
pub trait RunControl: Send + Sync + 'static {
    /// A run became the session's active one; what is sent to it arrives on the stream.
    fn started<'a>(
        &'a self,
        session_id: &'a str,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Signals, ControlError>>;

    /// The run ended: nothing more reaches it, and its approvals stop waiting.
    fn ended<'a>(&'a self, session_id: &'a str, run_id: &'a str) -> BoxFuture<'a, ()>;

    /// The active run waits for the user to approve a tool call.
    fn ask<'a>(
        &'a self,
        session_id: &'a str,
        approval: PendingApproval,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// The approval no longer waits (the run stopped waiting for it).
    fn withdraw<'a>(&'a self, session_id: &'a str, call_id: &'a str) -> BoxFuture<'a, ()>;

    /// The session's active run, if any.
    fn active<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ActiveRun>, ControlError>>;

    /// Tell the session's active run to stop. Its id; `None` when no run is active.
    fn interrupt<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ControlError>>;

    /// Answer a waiting approval; it reaches the run once. `NotFound` when none waits
    /// under that call id.
    fn answer<'a>(
        &'a self,
        session_id: &'a str,
        call_id: &'a str,
        approved: bool,
        note: Option<String>,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Tell the session's active run that a steer waits. Whether a run was active.
    fn steer<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<bool, ControlError>>;

    /// Tell every run acting for `user_id` to stop. Their ids.
    fn interrupt_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ControlError>>;
}

struct Running {
    run_id: String,
    owner: String,
    approvals: Vec<PendingApproval>,
    tx: mpsc::UnboundedSender<Signal>,
}

/// Run control within one process: a channel to each active run.
#[derive(Default)]
pub struct LocalControl {
    runs: Mutex<HashMap<String, Running>>,
}

impl LocalControl {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Running>) -> T) -> T {
        let mut runs = match self.runs.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut runs)
    }

    /// Send to the session's run; its id, or `None` when none is active.
    fn send(&self, session_id: &str, signal: Signal) -> Option<String> {
        self.with(|runs| {
            let run = runs.get(session_id)?;
            // A run whose receiver is gone is ending: it needs telling no more.
            let _ = run.tx.send(signal);
            Some(run.run_id.clone())
        })
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl RunControl for LocalControl {
    fn started<'a>(
        &'a self,
        session_id: &'a str,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Signals, ControlError>> {
        let result = self.with(|runs| {
            if runs.contains_key(session_id) {
                return Err(ControlError::Busy);
            }
            let (tx, mut rx) = mpsc::unbounded_channel();
            runs.insert(
                session_id.to_string(),
                Running {
                    run_id: run_id.to_string(),
                    owner: owner.to_string(),
                    approvals: Vec::new(),
                    tx,
                },
            );
            let signals: Signals =
                Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Ok(signals)
        });
        ready(result)
    }

    fn ended<'a>(&'a self, session_id: &'a str, run_id: &'a str) -> BoxFuture<'a, ()> {
        self.with(|runs| {
            if runs.get(session_id).is_some_and(|r| r.run_id == run_id) {
                runs.remove(session_id);
            }
        });
        ready(())
    }

    fn ask<'a>(
        &'a self,
        session_id: &'a str,
        approval: PendingApproval,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        let result = self.with(|runs| match runs.get_mut(session_id) {
            Some(run) if run.run_id == approval.run_id => {
                run.approvals.push(approval);
                Ok(())
            }
            _ => Err(ControlError::NotFound),
        });
        ready(result)
    }

    fn withdraw<'a>(&'a self, session_id: &'a str, call_id: &'a str) -> BoxFuture<'a, ()> {
        self.with(|runs| {
            if let Some(run) = runs.get_mut(session_id) {
                run.approvals.retain(|a| a.call_id != call_id);
            }
        });
        ready(())
    }

    fn active<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ActiveRun>, ControlError>> {
        let active = self.with(|runs| {
            runs.get(session_id).map(|r| ActiveRun {
                run_id: r.run_id.clone(),
                owner: r.owner.clone(),
                approvals: r.approvals.clone(),
            })
        });
        ready(Ok(active))
    }

    fn interrupt<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ControlError>> {
        ready(Ok(self.send(session_id, Signal::Interrupt)))
    }

    fn answer<'a>(
        &'a self,
        session_id: &'a str,
        call_id: &'a str,
        approved: bool,
        note: Option<String>,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        let result = self.with(|runs| {
            let run = runs.get_mut(session_id).ok_or(ControlError::NotFound)?;
            let at = run
                .approvals
                .iter()
                .position(|a| a.call_id == call_id)
                .ok_or(ControlError::NotFound)?;
            run.approvals.remove(at);
            let _ = run.tx.send(Signal::Approval {
                call_id: call_id.to_string(),
                approved,
                note,
            });
            Ok(())
        });
        ready(result)
    }

    fn steer<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<bool, ControlError>> {
        ready(Ok(self.send(session_id, Signal::Steer).is_some()))
    }

    fn interrupt_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ControlError>> {
        let ids = self.with(|runs| {
            runs.values()
                .filter(|r| r.owner == user_id)
                .map(|r| {
                    let _ = r.tx.send(Signal::Interrupt);
                    r.run_id.clone()
                })
                .collect()
        });
        ready(Ok(ids))
    }
}

impl From<ControlError> for mosaic_store::StoreError {
    fn from(e: ControlError) -> mosaic_store::StoreError {
        use mosaic_store::StoreError;
        match e {
            ControlError::NotFound => StoreError::NotFound,
            ControlError::Busy => StoreError::Conflict(e.to_string()),
            // A backend of its own failing is, to callers, the storage failing.
            ControlError::Unavailable(_) => {
                StoreError::Db(sqlx::Error::Io(std::io::Error::other(e.to_string())))
            }
        }
    }
}
