//! The in-process bus: each session's events, numbered, held in a bounded ring for
//! replay and broadcast to every subscriber. Publishing never waits for a subscriber: a
//! subscriber that falls more than the channel's capacity behind catches up from the
//! ring, or is told to resync when even that has moved past it.
//!
//! Numbers are reserved from the store in blocks, so they keep rising across restarts;
//! a client resuming from a number this bus no longer holds (from before a restart, or
//! older than the ring) gets a `resync` event and then the live events.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use mosaic_api::SessionEvent;
use mosaic_llm::BoxFuture;
use mosaic_store::{Principal, Store};
use tokio::sync::{broadcast, Mutex};

use super::{BusError, EventBus, Events, Numbered, Received, Subscribed};

/// Sizes of the bus.
#[derive(Debug, Clone, Copy)]
pub struct BusLimits {
    /// Events each session keeps for replay.
    pub ring: usize,
    /// Events a subscriber may fall behind before it must resync.
    pub channel: usize,
    /// Numbers reserved from the store at a time.
    pub block: u64,
    /// Bytes of event data all sessions' rings may hold together; past it, the rings
    /// of the sessions nobody follows are forgotten, longest idle first.
    pub retained_bytes: usize,
}

impl Default for BusLimits {
    fn default() -> Self {
        BusLimits {
            ring: 4096,
            channel: 1024,
            block: 4096,
            retained_bytes: 32 * 1024 * 1024,
        }
    }
}

struct State {
    next: u64,
    /// One past the last reserved number.
    reserved_end: u64,
    /// The first number this bus handed out (or will).
    first: u64,
    ring: VecDeque<Arc<Numbered>>,
}

/// The bytes a ring's event holds, roughly: the event, its JSON, and its parsed
/// form's text (about as long as the JSON).
fn weight(e: &Numbered) -> usize {
    std::mem::size_of::<Numbered>() + 2 * e.data.len() + 64
}

/// One session's events.
pub struct SessionBus {
    session_id: String,
    owner: Principal,
    store: Store,
    limits: BusLimits,
    state: Mutex<State>,
    /// The next block of numbers, reserved while half of the current one is left, so
    /// that publishing never waits on the database in the common case.
    spare: Arc<StdMutex<Option<u64>>>,
    reserving: Arc<std::sync::atomic::AtomicBool>,
    /// Bytes the ring holds (see [`weight`]).
    held: std::sync::atomic::AtomicUsize,
    /// Woken when a reservation ahead comes back (with a block or not).
    reserved: Arc<tokio::sync::Notify>,
    tx: broadcast::Sender<Arc<Numbered>>,
    last_used: StdMutex<Instant>,
}

/// What a subscriber gets: missed events to replay first, whether it must resync, and
/// the live channel from there on.
pub struct Subscription {
    /// The latest number when subscribed: live events come after it.
    pub latest: u64,
    pub replay: Vec<Arc<Numbered>>,
    pub resync: Option<String>,
    pub live: broadcast::Receiver<Arc<Numbered>>,
}

impl Subscription {
    /// As a stream: the replay (or a resync), then the live events in order. A
    /// subscriber that falls behind the live channel catches up from the ring, or is
    /// told to resync when even that has moved past it.
    pub fn into_events(self, bus: Arc<SessionBus>) -> Events {
        let mut first: VecDeque<Received> = VecDeque::new();
        if let Some(reason) = self.resync {
            first.push_back(Received::Resync {
                reason,
                latest: self.latest,
            });
        }
        first.extend(self.replay.into_iter().map(Received::Event));
        let state = Follower {
            pending: first,
            last: self.latest,
            live: self.live,
            bus,
        };
        Box::pin(futures_util::stream::unfold(state, |mut f| async move {
            let next = f.next().await?;
            Some((next, f))
        }))
    }
}

/// One subscriber's place in a session's events.
struct Follower {
    pending: VecDeque<Received>,
    /// The number of the last event delivered (or skipped past by a resync).
    last: u64,
    live: broadcast::Receiver<Arc<Numbered>>,
    bus: Arc<SessionBus>,
}

impl Follower {
    async fn next(&mut self) -> Option<Received> {
        loop {
            if let Some(next) = self.pending.pop_front() {
                match &next {
                    Received::Event(e) => self.last = e.id,
                    Received::Resync { latest, .. } => self.last = *latest,
                }
                return Some(next);
            }
            match self.live.recv().await {
                // Replayed already.
                Ok(e) if e.id <= self.last => continue,
                Ok(e) => {
                    self.last = e.id;
                    return Some(Received::Event(e));
                }
                // Behind by more than the channel holds: catch up from the ring, which
                // holds more; resync only if even that is past.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let sub = self.bus.subscribe(Some(self.last)).await;
                    self.live = sub.live;
                    if let Some(reason) = sub.resync {
                        self.pending.push_back(Received::Resync {
                            reason,
                            latest: sub.latest,
                        });
                    }
                    self.pending
                        .extend(sub.replay.into_iter().map(Received::Event));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// How long a publisher waits for a block of numbers it could not reserve ahead.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(5);

fn lock_spare(m: &StdMutex<Option<u64>>) -> std::sync::MutexGuard<'_, Option<u64>> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn touch(at: &StdMutex<Instant>) {
    if let Ok(mut t) = at.lock() {
        *t = Instant::now();
    }
}

impl SessionBus {
    async fn open(
        store: Store,
        owner: Principal,
        session_id: &str,
        limits: BusLimits,
    ) -> mosaic_store::Result<SessionBus> {
        let first = store
            .reserve_event_numbers(&owner, session_id, limits.block)
            .await?;
        let (tx, _) = broadcast::channel(limits.channel.max(1));
        Ok(SessionBus {
            session_id: session_id.to_string(),
            owner,
            store,
            limits,
            state: Mutex::new(State {
                next: first,
                reserved_end: first + limits.block,
                first,
                ring: VecDeque::new(),
            }),
            tx,
            spare: Arc::new(StdMutex::new(None)),
            reserving: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            reserved: Arc::new(tokio::sync::Notify::new()),
            held: std::sync::atomic::AtomicUsize::new(0),
            last_used: StdMutex::new(Instant::now()),
        })
    }

    async fn reserve(&self) -> mosaic_store::Result<u64> {
        self.store
            .reserve_event_numbers(&self.owner, &self.session_id, self.limits.block)
            .await
    }

    /// The block reserved ahead, waiting (bounded) for one on its way: reserving
    /// another beside it would hand out numbers out of order.
    async fn take_spare(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let arrived = self.reserved.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        if lock_spare(&self.spare).is_none() && self.reserving.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(RESERVE_TIMEOUT, arrived).await;
        }
        lock_spare(&self.spare).take()
    }

    /// Reserve the next block in the background, unless one is held or on its way.
    fn reserve_ahead(&self) {
        use std::sync::atomic::Ordering;
        if lock_spare(&self.spare).is_some() || self.reserving.swap(true, Ordering::SeqCst) {
            return;
        }
        let (store, owner, session_id, block) = (
            self.store.clone(),
            self.owner.clone(),
            self.session_id.clone(),
            self.limits.block,
        );
        let (spare, reserving) = (self.spare.clone(), self.reserving.clone());
        let reserved = self.reserved.clone();
        tokio::spawn(async move {
            match store
                .reserve_event_numbers(&owner, &session_id, block)
                .await
            {
                Ok(first) => *lock_spare(&spare) = Some(first),
                Err(e) => {
                    tracing::debug!(session = %session_id, "event numbers not reserved ahead: {e}")
                }
            }
            reserving.store(false, Ordering::SeqCst);
            reserved.notify_waiters();
        });
    }

    /// Number an event, keep it for replay and send it to every subscriber.
    pub async fn publish(&self, event: SessionEvent) -> Arc<Numbered> {
        let mut state = self.state.lock().await;
        if state.next >= state.reserved_end {
            // The block reserved ahead of time, or (when that has not come back yet)
            // one reserved now, bounded so that a stuck database cannot hold every
            // publisher and subscriber of the session behind this lock.
            let spare = self.take_spare().await;
            let reserved = match spare {
                // (One that came back after a reservation made without it is stale.)
                Some(first) if first >= state.reserved_end => Ok(first),
                _ => match tokio::time::timeout(RESERVE_TIMEOUT, self.reserve()).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {RESERVE_TIMEOUT:?}")),
                },
            };
            match reserved {
                Ok(first) => {
                    state.next = first;
                    state.reserved_end = first + self.limits.block;
                }
                // The store is unreachable: go on numbering in memory rather than lose
                // the event (a restart may reuse these numbers; resuming clients resync).
                Err(e) => {
                    tracing::warn!(session = %self.session_id, "could not reserve event numbers: {e}");
                    state.reserved_end = state.next + self.limits.block;
                }
            }
        }
        if state.reserved_end - state.next <= self.limits.block / 2 {
            self.reserve_ahead();
        }
        let numbered = Arc::new(Numbered::new(state.next, event));
        state.next += 1;
        if state.ring.len() >= self.limits.ring {
            if let Some(old) = state.ring.pop_front() {
                self.held
                    .fetch_sub(weight(&old), std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.held
            .fetch_add(weight(&numbered), std::sync::atomic::Ordering::Relaxed);
        state.ring.push_back(numbered.clone());
        // No subscribers is fine: the ring keeps it.
        let _ = self.tx.send(numbered.clone());
        drop(state);
        touch(&self.last_used);
        numbered
    }

    /// Follow the session, resuming after event `after` when given.
    pub async fn subscribe(&self, after: Option<u64>) -> Subscription {
        let state = self.state.lock().await;
        touch(&self.last_used);
        let live = self.tx.subscribe();
        let latest = state.next - 1;
        let Some(after) = after else {
            return Subscription {
                latest,
                replay: Vec::new(),
                resync: None,
                live,
            };
        };
        let oldest_held = state.ring.front().map(|e| e.id).unwrap_or(state.next);
        if after >= latest && after < state.next && after + 1 >= state.first {
            // Nothing missed.
            return Subscription {
                latest,
                replay: Vec::new(),
                resync: None,
                live,
            };
        }
        if after > latest {
            return Subscription {
                latest,
                replay: Vec::new(),
                resync: Some(format!(
                    "event {after} is not one of this session's (the latest is {latest})"
                )),
                live,
            };
        }
        if after + 1 < oldest_held || after + 1 < state.first {
            return Subscription {
                latest,
                replay: Vec::new(),
                resync: Some(format!(
                    "events after {after} are no longer held (the oldest held is {oldest_held})"
                )),
                live,
            };
        }
        let replay = state
            .ring
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        Subscription {
            latest,
            replay,
            resync: None,
            live,
        }
    }

    /// The number of the latest event (0 when none was ever sent).
    pub async fn last_event_id(&self) -> u64 {
        self.state.lock().await.next - 1
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

/// Every session's bus, made on first use.
pub struct Bus {
    store: Store,
    limits: BusLimits,
    sessions: StdMutex<HashMap<String, Arc<SessionBus>>>,
    opening: Mutex<()>,
}

impl Bus {
    pub fn new(store: Store, limits: BusLimits) -> Bus {
        Bus {
            store,
            limits,
            sessions: StdMutex::new(HashMap::new()),
            opening: Mutex::new(()),
        }
    }

    fn existing(&self, session_id: &str) -> Option<Arc<SessionBus>> {
        self.sessions
            .lock()
            .ok()
            .and_then(|m| m.get(session_id).cloned())
    }

    /// The bus of a session the caller has already checked `owner` may see.
    pub async fn session(
        &self,
        owner: &Principal,
        session_id: &str,
    ) -> mosaic_store::Result<Arc<SessionBus>> {
        if let Some(bus) = self.existing(session_id) {
            return Ok(bus);
        }
        let _one_at_a_time = self.opening.lock().await;
        if let Some(bus) = self.existing(session_id) {
            return Ok(bus);
        }
        let bus = Arc::new(
            SessionBus::open(self.store.clone(), owner.clone(), session_id, self.limits).await?,
        );
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(session_id.to_string(), bus.clone());
        }
        Ok(bus)
    }

    /// Forget buses nobody follows that have been quiet for `idle` (their numbers are
    /// not reused: the next bus reserves a new block).
    pub fn sweep(&self, idle: Duration, busy: impl Fn(&str) -> bool) {
        let Ok(mut m) = self.sessions.lock() else {
            return;
        };
        m.retain(|id, bus| bus.subscribers() > 0 || bus.idle_for() < idle || busy(id));
        // Then the budget: the quiet sessions nobody follows go first, longest idle
        // first, until what is left fits.
        let held = |b: &SessionBus| b.held.load(std::sync::atomic::Ordering::Relaxed);
        let mut total: usize = m.values().map(|b| held(b)).sum();
        if total <= self.limits.retained_bytes {
            return;
        }
        let mut quiet: Vec<(Duration, String, usize)> = m
            .iter()
            .filter(|(id, b)| b.subscribers() == 0 && !busy(id))
            .map(|(id, b)| (b.idle_for(), id.clone(), held(b)))
            .collect();
        quiet.sort_by_key(|q| std::cmp::Reverse(q.0));
        for (_, id, bytes) in quiet {
            if total <= self.limits.retained_bytes {
                break;
            }
            m.remove(&id);
            total -= bytes;
        }
    }

    /// Bytes all rings hold together.
    pub fn retained_bytes(&self) -> usize {
        self.sessions
            .lock()
            .map(|m| {
                m.values()
                    .map(|b| b.held.load(std::sync::atomic::Ordering::Relaxed))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Drop a deleted session's bus.
    pub fn forget(&self, session_id: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(session_id);
        }
    }

    /// Subscribers over all sessions.
    pub fn subscriber_count(&self) -> usize {
        self.sessions
            .lock()
            .map(|m| m.values().map(|b| b.subscribers()).sum())
            .unwrap_or(0)
    }
}

impl EventBus for Bus {
    fn publish<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
        event: SessionEvent,
    ) -> BoxFuture<'a, Result<Arc<Numbered>, BusError>> {
        Box::pin(async move { Ok(self.session(owner, session_id).await?.publish(event).await) })
    }

    fn subscribe<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
        after: Option<u64>,
    ) -> BoxFuture<'a, Result<Subscribed, BusError>> {
        Box::pin(async move {
            let bus = self.session(owner, session_id).await?;
            let sub = bus.subscribe(after).await;
            Ok(Subscribed {
                latest: sub.latest,
                events: sub.into_events(bus),
            })
        })
    }

    fn last_event_id<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move { Ok(self.session(owner, session_id).await?.last_event_id().await) })
    }

    fn forget<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, ()> {
        Bus::forget(self, session_id);
        Box::pin(async {})
    }

    fn subscriber_count(&self) -> usize {
        Bus::subscriber_count(self)
    }

    fn sweep(&self, idle: Duration, busy: &(dyn Fn(&str) -> bool + Sync)) {
        Bus::sweep(self, idle, busy)
    }
}
