//! One agent's session: `Hello` checked, then claims sized to the slots
//! the agent says are free, leases renewed while it speaks, results
//! recorded fenced on (task, execution, owner), and, when the stream
//! closes or goes silent, every task it held handed back at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::FutureExt;
use longshore::core::Outcome;
use longshore::core::{
    AgentPresence, AgentTokenInfo, Claim, Completion, Pool, PoolClaim, StoreError, StoreEvent,
    WorkerPresence,
};
use longshore::remote::Pace;
use longshore::{LogEntry, LogLevel, Prefetch, TaskRow};
use longshore_proto::v1::{
    AgentMessage, Assign, Cancel, PROTOCOL_VERSION, Recorded, ServerMessage, Welcome,
    agent_message, cancel, result, server_message,
};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tonic::{Status, Streaming};
use uuid::Uuid;

use super::dispatch::Signal;
use super::held::{Held, MAX_BUFFERED_LINES, completion, storable};
use super::hello::check_hello;
use super::{ServerStream, Shared};

/// At most this many messages that already arrived are handled together:
/// their results written in one statement, their freed slots claimed for
/// in one.
const MAX_BATCH: usize = 256;

/// At most this many yields to let more messages arrive before a batch is
/// written (as the worker's completer does).
const GATHER_ROUNDS: usize = 4;

/// Checks `Hello` and starts the session; returns what the server sends.
pub(super) async fn open(
    shared: Arc<Shared>,
    token: AgentTokenInfo,
    mut inbound: Streaming<AgentMessage>,
) -> Result<ServerStream, Status> {
    let first = tokio::time::timeout(shared.config.session_timeout, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no Hello within the session timeout"))??;
    let Some(AgentMessage {
        message: Some(agent_message::Message::Hello(hello)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first message of a session must be Hello",
        ));
    };
    let pool = check_hello(&shared, &token, &hello).await?;
    let presence = WorkerPresence {
        id: hello.agent_id.clone(),
        host: longshore::core::pool::agent_host(&hello.language),
        version: hello.version.clone(),
        queues: pool.queues.clone(),
        concurrency: i32::try_from(hello.slots).unwrap_or(i32::MAX),
        running: 0,
        agent: Some(AgentPresence {
            pool: pool.name.clone(),
            labels: hello.labels.clone(),
        }),
    };
    let Some(signal) = shared.board.sit(presence.clone()) else {
        return Err(Status::already_exists(format!(
            "an agent with id `{}` is connected already; give each agent its own --id",
            hello.agent_id
        )));
    };
    // A queue beyond the slots, as the agent offers it; with `auto`, the
    // part of it in use is chosen from what the session measures.
    let prefetch = (hello.prefetch as usize).min(Prefetch::MOST);
    let pace =
        (prefetch > 0 && hello.prefetch_auto).then(|| Pace::new(hello.slots as usize, prefetch));
    tracing::info!(agent = %hello.agent_id, pool = %pool.name, slots = hello.slots, prefetch = %if pace.is_some() { format!("auto (at most {prefetch})") } else { prefetch.to_string() }, version = %hello.version, language = %hello.language, "agent connected");
    let (tx, rx) = mpsc::channel(256);
    let welcome = ServerMessage {
        message: Some(server_message::Message::Welcome(Welcome {
            protocol_version: PROTOCOL_VERSION,
            ping_interval_ms: u64::try_from((shared.config.session_timeout / 3).as_millis())
                .unwrap_or(u64::MAX),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        })),
    };
    // The channel is new and empty: this cannot fail.
    let _ = tx.try_send(Ok(welcome));
    let session = Session {
        presence,
        signal,
        events: shared.events.subscribe(),
        shared,
        agent: hello.agent_id,
        slots: hello.slots as usize,
        prefetch,
        pace,
        labels: hello.labels,
        pool,
        free: 0,
        held: HashMap::new(),
        draining: false,
        wanted: false,
        finished: Vec::new(),
        writing: None,
        last_heard: Instant::now(),
        tx,
    };
    let sessions = session.shared.sessions.clone();
    sessions.spawn(session.run(inbound));
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|message| (message, rx))
    })))
}

struct Session {
    shared: Arc<Shared>,
    /// How `longshore workers list` and the dashboard show the agent
    /// (written at the start; the dispatcher records it afterwards).
    presence: WorkerPresence,
    /// Wakes the session when due tasks may be there for it, or when an
    /// operator drains its agent.
    signal: Arc<Signal>,
    agent: String,
    slots: usize,
    /// The most tasks the agent queues beyond its slots (0: none).
    prefetch: usize,
    /// With a prefetch chosen by measurement: the handler and round-trip
    /// times it is chosen from.
    pace: Option<Pace>,
    /// The labels the agent offers: a task requiring others is not claimed
    /// for it.
    labels: Vec<String>,
    pool: Pool,
    /// Slots (and, with a prefetch, room in its queue) the agent said are
    /// free and no task has been sent to.
    free: usize,
    held: HashMap<Uuid, Held>,
    draining: bool,
    /// Tasks may be due: claim when slots are free. When a claim finds
    /// fewer than it asked for, the session waits for the dispatcher.
    wanted: bool,
    /// Results received and not yet written, with their executions.
    finished: Vec<(Completion, i32)>,
    /// The write of earlier results under way, if any: results that
    /// arrive meanwhile wait for the next one, so that the busier the
    /// agent, the more each write carries.
    writing: Option<Write>,
    last_heard: Instant,
    events: broadcast::Receiver<StoreEvent>,
    tx: mpsc::Sender<Result<ServerMessage, Status>>,
}

/// A write of results (and maybe a claim) under way, in a task of its
/// own.
type Write = tokio::task::JoinHandle<Written>;

/// What a write did.
struct Written {
    completions: Vec<Completion>,
    executions: Vec<i32>,
    /// The claim it made for the agent's free slots, if any.
    refill: Option<Claim>,
    outcome: Result<(Vec<Uuid>, Vec<TaskRow>), StoreError>,
    /// How long the statement took.
    took: Duration,
}

/// Why a session ended.
enum End {
    Closed,
    Silent,
    Broken(Status),
    Stopping,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<AgentMessage>) {
        let config = self.shared.config.clone();
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        let stop = self.shared.stop.clone();
        let signal = self.signal.clone();
        self.announce().await;
        let end = loop {
            // A write under way may be claiming for the free slots.
            let room = self.room();
            if self.wanted && room > 0 && !self.draining && self.writing.is_none() {
                // Waiting while it claims: a notification meanwhile still
                // wakes it (an extra claim costs little, a lost one a poll).
                self.shared
                    .board
                    .update(&self.agent, room, self.idle(), self.held.len());
                self.claim().await;
            }
            self.shared.board.update(
                &self.agent,
                if self.draining { 0 } else { self.room() },
                self.idle(),
                self.held.len(),
            );
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        self.last_heard = Instant::now();
                        self.handle(message).await;
                        // What else already arrived joins this batch:
                        // under load, results come faster than one write
                        // each would keep up with. When nothing is ready,
                        // yielding lets the connection's task decode what
                        // is already on the socket: a few rounds at most,
                        // and only while they bring more, so a lone result
                        // is not held back.
                        let mut ended = None;
                        let (mut taken, mut before, mut rounds) = (1, 0, 0);
                        while taken < MAX_BATCH {
                            match inbound.message().now_or_never() {
                                Some(Ok(Some(message))) => {
                                    self.handle(message).await;
                                    taken += 1;
                                }
                                Some(Ok(None)) => {
                                    ended = Some(End::Closed);
                                    break;
                                }
                                Some(Err(status)) => {
                                    ended = Some(End::Broken(status));
                                    break;
                                }
                                None if rounds == GATHER_ROUNDS || taken == before => break,
                                None => {
                                    (before, rounds) = (taken, rounds + 1);
                                    tokio::task::yield_now().await;
                                }
                            }
                        }
                        self.start_write();
                        if let Some(end) = ended {
                            break end;
                        }
                    }
                    Ok(None) => break End::Closed,
                    Err(status) => break End::Broken(status),
                },
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > config.session_timeout {
                        break End::Silent;
                    }
                    self.renew().await;
                    self.enforce_time_limits().await;
                }
                () = signal.wake.notified() => {
                    if signal.drain.load(std::sync::atomic::Ordering::SeqCst) {
                        self.drain().await;
                    }
                    self.wanted = true;
                }
                event = self.events.recv() => match event {
                    Ok(StoreEvent::CancelRequested { id }) => self.cancel(id, cancel::Reason::Operator).await,
                    // Due work reaches the session through the dispatcher.
                    Ok(StoreEvent::TaskAvailable { .. }) => {}
                    // A missed cancellation is found by the next renewal.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        // The gateway stops: `stop` ends the loop.
                        stop.cancelled().await;
                    }
                },
                written = async {
                    match self.writing.as_mut() {
                        Some(write) => write.await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.writing = None;
                    match written {
                        Ok(written) => self.written(written).await,
                        Err(e) => {
                            self.write_lost(&e).await;
                            self.start_write();
                        }
                    }
                }
                () = stop.cancelled() => break End::Stopping,
                () = self.tx.closed() => break End::Closed,
            }
        };
        self.settle_writes().await;
        let why = match &end {
            End::Closed => "its stream closed".to_owned(),
            End::Silent => format!(
                "it sent nothing for {}",
                humantime::format_duration(config.session_timeout)
            ),
            End::Broken(status) => format!("its stream broke ({})", status.message()),
            End::Stopping => "the gateway is stopping".to_owned(),
        };
        // A gateway that stops is not the agent's fault: nothing it ran
        // counts as an attempt then.
        self.hand_back(&why, matches!(end, End::Stopping)).await;
        // Off the board first: the dispatcher's next presence write must
        // not bring the row back.
        self.shared.board.leave(&self.agent);
        if let Err(e) = self.shared.store.worker_stopped(&self.agent).await {
            tracing::warn!(agent = %self.agent, error = %e, "cannot record an agent as gone; it drops off the list when unseen");
        }
        tracing::info!(agent = %self.agent, reason = %why, "agent disconnected");
    }

    /// Records the agent as alive as soon as it connects (the dispatcher
    /// records it with the others afterwards, one write per heartbeat).
    async fn announce(&mut self) {
        match self.shared.store.worker_seen(&self.presence).await {
            Ok(true) => self.drain().await,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "cannot record an agent as alive")
            }
        }
    }

    /// An operator asked this agent to drain: claim nothing more for it
    /// and tell it.
    async fn drain(&mut self) {
        if self.draining {
            return;
        }
        tracing::info!(agent = %self.agent, "an operator drains this agent");
        self.draining = true;
        self.send(server_message::Message::Drain(
            longshore_proto::v1::Drain {},
        ))
        .await;
    }

    async fn send(&self, message: server_message::Message) {
        // A closed stream ends the session through `tx.closed()`.
        let _ = self
            .tx
            .send(Ok(ServerMessage {
                message: Some(message),
            }))
            .await;
    }

    async fn handle(&mut self, message: AgentMessage) {
        match message.message {
            Some(agent_message::Message::Ready(ready)) => {
                self.free = (self.free + ready.free as usize).min(self.slots + self.prefetch);
                self.wanted = true;
            }
            Some(agent_message::Message::Started(started)) => {
                let queues = self.prefetch > 0;
                if let Some((_, held)) = self.held_entry(&started.task_id, started.execution) {
                    let now = Instant::now();
                    held.started_at = Some(now);
                    // A task assigned ahead may have waited in the agent's
                    // queue: its time runs from now.
                    if queues {
                        held.limit_at = now + held.limit;
                    }
                }
            }
            Some(agent_message::Message::Log(log)) => {
                let level = match log.level() {
                    longshore_proto::v1::Level::Warning => LogLevel::Warning,
                    longshore_proto::v1::Level::Error => LogLevel::Error,
                    _ => LogLevel::Info,
                };
                let at = Utc
                    .timestamp_millis_opt(log.at_unix_ms)
                    .single()
                    .unwrap_or_else(Utc::now);
                let Some((id, held)) = self.held_entry(&log.task_id, log.execution) else {
                    return;
                };
                held.worst = held.worst.max(Some(level));
                if held.logs.len() >= MAX_BUFFERED_LINES {
                    held.dropped_lines += 1;
                    return;
                }
                held.logs.push(LogEntry {
                    task_id: id,
                    execution: held.execution,
                    at,
                    level,
                    message: storable(log.message),
                });
            }
            Some(agent_message::Message::Result(result)) => self.record(result).await,
            // Its free slots are no longer free: nothing more is claimed.
            Some(agent_message::Message::Stopping(_)) => {
                tracing::info!(agent = %self.agent, "the agent is stopping; claiming nothing more for it");
                self.draining = true;
            }
            // The answer lets the agent notice a gateway that went silent.
            Some(agent_message::Message::Ping(_)) => {
                self.send(server_message::Message::Pong(longshore_proto::v1::Pong {}))
                    .await;
            }
            Some(agent_message::Message::Hello(_)) | None => {
                tracing::warn!(agent = %self.agent, "agent sent an unexpected message; ignored");
            }
        }
    }

    fn held_entry(&mut self, task_id: &str, execution: i32) -> Option<(Uuid, &mut Held)> {
        let id: Uuid = task_id.parse().ok()?;
        let held = self.held.get_mut(&id)?;
        (held.execution == execution).then_some((id, held))
    }

    /// How many tasks to claim for the agent now: what it said it has room
    /// for, and with a prefetch no more than its slots and the part of the
    /// prefetch in use beside what it holds.
    fn room(&self) -> usize {
        if self.prefetch == 0 {
            return self.free;
        }
        let ahead = self.pace.as_ref().map_or(self.prefetch, Pace::ahead);
        self.free
            .min((self.slots + ahead).saturating_sub(self.held.len()))
    }

    /// The agent's slots with nothing to run or queued to run.
    fn idle(&self) -> usize {
        self.slots.saturating_sub(self.held.len())
    }

    /// A claim of tasks for all the agent's free slots (and the room in
    /// its queue in use).
    fn claim_for_free_slots(&self) -> Claim {
        Claim {
            owner: self.agent.clone(),
            queues: self.pool.queues.clone(),
            limit: self.room(),
            lease: self.shared.config.lease,
            capped: self
                .shared
                .capped
                .load(std::sync::atomic::Ordering::Relaxed),
            pool: Some(PoolClaim {
                name: self.pool.name.clone(),
                labels: self.labels.clone(),
            }),
        }
    }

    async fn claim(&mut self) {
        let claim = self.claim_for_free_slots();
        let began = Instant::now();
        let outcome = self.shared.store.claim(&claim).await;
        if let Some(pace) = &self.pace {
            pace.round_trip_took(began.elapsed());
        }
        match outcome {
            Ok(tasks) => self.claimed(&claim, tasks).await,
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "claim for an agent failed");
                self.release_lost_claims().await;
            }
        }
    }

    /// Sends what `claim` claimed to the agent.
    async fn claimed(&mut self, claim: &Claim, tasks: Vec<TaskRow>) {
        if self.draining {
            // Claimed by a write that was under way when an operator
            // drained the agent: back to the queue, unrun.
            let retry = self.shared.config.retry;
            let releases: Vec<Completion> = tasks
                .into_iter()
                .filter_map(|task| {
                    let id = task.id;
                    self.hold(task);
                    let held = self.held.remove(&id)?;
                    Some(completion(id, held, Outcome::Released, &retry))
                })
                .collect();
            self.complete(&releases).await;
            return;
        }
        self.wanted = tasks.len() == claim.limit;
        for task in tasks {
            self.assign(task).await;
        }
    }

    /// After a claim failed: it may have committed before the error, so
    /// what this session owns but does not track goes back at once.
    async fn release_lost_claims(&self) {
        let tracked: Vec<Uuid> = self.held.keys().copied().collect();
        if let Err(e) = self
            .shared
            .store
            .release_untracked(&self.agent, &tracked)
            .await
        {
            tracing::warn!(agent = %self.agent, error = %e, "could not check for lost claims; they return when their leases expire");
        }
    }

    async fn assign(&mut self, task: TaskRow) {
        let assign = self.hold(task);
        self.send(server_message::Message::Assign(assign)).await;
    }

    /// Tracks a task claimed for the agent; returns what tells the agent.
    fn hold(&mut self, task: TaskRow) -> Assign {
        let limit = task
            .time_limit_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis)
            .unwrap_or(self.shared.config.default_time_limit);
        self.free = self.free.saturating_sub(1);
        let assign = Assign {
            task_id: task.id.to_string(),
            execution: task.execution,
            actor: task.actor.clone(),
            queue: task.queue.clone(),
            args_json: task.args.to_string(),
            attempt: task.attempt,
            max_attempts: task.max_attempts,
            time_limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        };
        self.held.insert(
            task.id,
            Held {
                queue: task.queue,
                execution: task.execution,
                attempt: task.attempt,
                max_attempts: task.max_attempts,
                started_at: None,
                limit_at: Instant::now() + limit,
                limit,
                cancel_sent: false,
                logs: Vec::new(),
                dropped_lines: 0,
                worst: None,
            },
        );
        assign
    }

    async fn cancel(&mut self, id: Uuid, reason: cancel::Reason) {
        let Some(held) = self.held.get_mut(&id) else {
            return;
        };
        if held.cancel_sent && reason != cancel::Reason::LeaseLost {
            return;
        }
        held.cancel_sent = true;
        let execution = held.execution;
        self.send(server_message::Message::Cancel(Cancel {
            task_id: id.to_string(),
            execution,
            reason: reason as i32,
        }))
        .await;
    }

    /// Renews the leases of what this session holds and writes the log
    /// lines gathered since the last renewal.
    async fn renew(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let executions: Vec<(Uuid, i32)> = self
            .held
            .iter()
            .map(|(id, held)| (*id, held.execution))
            .collect();
        let logs: Vec<LogEntry> = self
            .held
            .values_mut()
            .flat_map(|held| std::mem::take(&mut held.logs))
            .collect();
        match self
            .shared
            .store
            .heartbeat(&self.agent, &executions, self.shared.config.lease, &logs)
            .await
        {
            Ok(beat) => {
                for id in beat.lost {
                    self.cancel(id, cancel::Reason::LeaseLost).await;
                    self.held.remove(&id);
                }
                for id in beat.cancel_requested {
                    self.cancel(id, cancel::Reason::Operator).await;
                }
            }
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "renewing an agent's leases failed; trying again at the next beat");
                for line in logs {
                    if let Some(held) = self.held.get_mut(&line.task_id) {
                        held.logs.push(line);
                    }
                }
            }
        }
    }

    /// Tells the agent to stop what passed its time limit, and takes back
    /// what is still running a grace period later.
    async fn enforce_time_limits(&mut self) {
        let now = Instant::now();
        let grace = self.shared.config.cancel_grace;
        let due: Vec<Uuid> = self
            .held
            .iter()
            .filter(|(_, held)| held.limit_at <= now && !held.cancel_sent)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.cancel(id, cancel::Reason::TimeLimit).await;
        }
        let overdue: Vec<Uuid> = self
            .held
            .iter()
            .filter(|(_, held)| self.timed(held) && held.limit_at + grace <= now)
            .map(|(id, _)| *id)
            .collect();
        if overdue.is_empty() {
            return;
        }
        let mut completions = Vec::new();
        for id in overdue {
            if let Some(held) = self.held.remove(&id) {
                let error = format!(
                    "time limit of {} exceeded and agent {} did not stop within {}; the server took the task back",
                    humantime::format_duration(held.limit),
                    self.agent,
                    humantime::format_duration(grace)
                );
                completions.push(completion(
                    id,
                    held,
                    Outcome::Failed {
                        error,
                        fatal: false,
                    },
                    &self.shared.config.retry,
                ));
            }
        }
        self.complete(&completions).await;
    }

    /// Whether the gateway takes `held` back once its time limit and the
    /// grace have passed. An agent without a prefetch starts what it is
    /// given at once. One with a prefetch may have queued it behind its
    /// slots: its time runs again from `Started`, and until then a time
    /// limit only asks the agent to hand it back (so that tasks queued
    /// behind a wedged slot go elsewhere), unrun, which the agent answers
    /// with `HandedBack`.
    fn timed(&self, held: &Held) -> bool {
        self.prefetch == 0 || held.started_at.is_some()
    }

    async fn record(&mut self, result: longshore_proto::v1::Result) {
        let execution = result.execution;
        let key = self
            .held_entry(&result.task_id, execution)
            .map(|(id, _)| id);
        let Some(id) = key else {
            self.send(server_message::Message::Recorded(Recorded {
                task_id: result.task_id,
                execution,
                accepted: false,
                reason: "this session does not hold that execution: its lease was lost, \
                         it was handed back, or it ran past its time limit"
                    .to_owned(),
            }))
            .await;
            return;
        };
        let Some(held) = self.held.remove(&id) else {
            return;
        };
        if let (Some(pace), Some(started_at)) = (&self.pace, held.started_at) {
            pace.handler_took(started_at.elapsed());
        }
        let outcome = match result.outcome {
            Some(result::Outcome::Succeeded(_)) => Outcome::Succeeded,
            Some(result::Outcome::Failed(failed)) => Outcome::Failed {
                error: storable(failed.error),
                fatal: failed.fatal,
            },
            Some(result::Outcome::Cancelled(_)) => Outcome::Cancelled,
            Some(result::Outcome::HandedBack(_)) => Outcome::Released,
            None => Outcome::Failed {
                error: "the agent reported no outcome".to_owned(),
                fatal: false,
            },
        };
        let completion = completion(id, held, outcome, &self.shared.config.retry);
        self.finished.push((completion, execution));
    }

    /// Starts writing the results received so far in one statement, unless
    /// a write is under way (they go with the next). Without caps the same
    /// statement claims tasks for the agent's free slots (under a cap,
    /// claims take the claim lock, which a statement that also writes
    /// results would hold too long).
    fn start_write(&mut self) {
        if self.writing.is_some() || self.finished.is_empty() {
            return;
        }
        let (completions, executions): (Vec<Completion>, Vec<i32>) =
            std::mem::take(&mut self.finished).into_iter().unzip();
        let claim = self.claim_for_free_slots();
        let refill =
            (self.wanted && claim.limit > 0 && !self.draining && !claim.capped).then_some(claim);
        let store = self.shared.store.clone();
        let agent = self.agent.clone();
        self.writing = Some(tokio::spawn(async move {
            let began = Instant::now();
            let outcome = match &refill {
                Some(claim) => store.complete_and_claim(&agent, &completions, claim).await,
                None => store
                    .complete(&agent, &completions)
                    .await
                    .map(|rejected| (rejected, Vec::new())),
            };
            Written {
                completions,
                executions,
                refill,
                outcome,
                took: began.elapsed(),
            }
        }));
    }

    /// A write finished: answers each result, sends what it claimed, and
    /// starts the next write if results came meanwhile.
    async fn written(&mut self, written: Written) {
        if let Some(pace) = &self.pace {
            pace.round_trip_took(written.took);
        }
        let (accepted, claimed) = self
            .apply(
                written.outcome,
                &written.completions,
                written.refill.is_some(),
            )
            .await;
        for (completion, execution) in written.completions.iter().zip(written.executions) {
            let id = completion.id;
            self.send(server_message::Message::Recorded(Recorded {
                task_id: id.to_string(),
                execution,
                accepted: accepted.contains(&id),
                reason: if accepted.contains(&id) {
                    String::new()
                } else {
                    "the lease was no longer this agent's (expired, cancelled or taken over); \
                     the result was not recorded"
                        .to_owned()
                },
            }))
            .await;
        }
        if let Some(claim) = &written.refill {
            self.claimed(claim, claimed).await;
        }
        self.start_write();
    }

    /// What a write's outcome means: the ids recorded, and the tasks its
    /// claim took (after a failure: none, and any claim that may have
    /// committed is released).
    async fn apply(
        &mut self,
        outcome: Result<(Vec<Uuid>, Vec<TaskRow>), StoreError>,
        completions: &[Completion],
        claiming: bool,
    ) -> (Vec<Uuid>, Vec<TaskRow>) {
        match outcome {
            Ok((rejected, tasks)) => (accepted(completions, &rejected), tasks),
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "recording an agent's results failed; the tasks return when their leases expire");
                if claiming {
                    self.release_lost_claims().await;
                }
                (Vec::new(), Vec::new())
            }
        }
    }

    /// A write's task panicked: what it was writing returns when the
    /// leases expire; what it may have claimed goes back now.
    async fn write_lost(&mut self, e: &tokio::task::JoinError) {
        tracing::error!(agent = %self.agent, error = %e, "recording an agent's results failed; the tasks return when their leases expire");
        self.release_lost_claims().await;
    }

    /// The session ends: the write under way, and the results it left,
    /// are finished without telling the agent (it may not be reading);
    /// tasks a write claimed are held, so that the hand-back returns them.
    async fn settle_writes(&mut self) {
        if let Some(write) = self.writing.take() {
            match write.await {
                Ok(written) => {
                    let (_, claimed) = self
                        .apply(
                            written.outcome,
                            &written.completions,
                            written.refill.is_some(),
                        )
                        .await;
                    for task in claimed {
                        self.hold(task);
                    }
                }
                Err(e) => self.write_lost(&e).await,
            }
        }
        let completions: Vec<Completion> = std::mem::take(&mut self.finished)
            .into_iter()
            .map(|(completion, _)| completion)
            .collect();
        self.complete(&completions).await;
    }

    /// Applies `completions`; returns the ids whose fence held.
    async fn complete(&self, completions: &[Completion]) -> Vec<Uuid> {
        if completions.is_empty() {
            return Vec::new();
        }
        match self.shared.store.complete(&self.agent, completions).await {
            Ok(rejected) => accepted(completions, &rejected),
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "recording an agent's results failed; the tasks return when their leases expire");
                Vec::new()
            }
        }
    }

    /// Gives back every task the session holds: one the agent had started
    /// has used an attempt (a task that kills its agent must not go round
    /// the pool forever); one it had not is handed back free.
    async fn hand_back(&mut self, why: &str, free: bool) {
        let held: Vec<(Uuid, Held)> = self.held.drain().collect();
        let completions: Vec<Completion> = held
            .into_iter()
            .map(|(id, held)| {
                let outcome = if held.started_at.is_some() && !free {
                    Outcome::Failed {
                        error: format!("agent {} went away while running it: {why}", self.agent),
                        fatal: false,
                    }
                } else {
                    Outcome::Released
                };
                completion(id, held, outcome, &self.shared.config.retry)
            })
            .collect();
        self.complete(&completions).await;
    }
}

/// The ids of `completions` not among `rejected`.
fn accepted(completions: &[Completion], rejected: &[Uuid]) -> Vec<Uuid> {
    completions
        .iter()
        .map(|c| c.id)
        .filter(|id| !rejected.contains(id))
        .collect()
}
