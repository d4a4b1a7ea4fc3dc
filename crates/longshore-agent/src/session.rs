//! One session with a gateway: `Hello`, then slots offered as they free
//! up, assignments run through the [`Runner`] (or queued for a slot when
//! claimed ahead), their log lines and results sent back, pings while the
//! stream is open.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use longshore::core::Outcome;
use longshore::remote::{Assignment, Runner, Running};
use longshore::{CancelReason, LogEntry, LogLevel, Prefetch};
use longshore_proto::v1::agent_gateway_client::AgentGatewayClient;
use longshore_proto::v1::{
    AgentMessage, Hello, Level, Log, PROTOCOL_VERSION, Ping, Ready, Result as TaskResult,
    ServerMessage, Started, Stopping, agent_message, cancel, result, server_message,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::AgentConfig;

/// How a session that was open ended.
pub(crate) enum Ended {
    /// Asked to stop (or drained by an operator), and drained.
    Stopped,
    /// The stream broke or closed: connect again.
    Lost(String),
}

/// Why a session could not open.
pub(crate) enum Failure {
    /// For good: the same request will be refused again.
    Refused(String),
    /// For now: try again after a pause.
    Retry(String),
}

fn classify(status: &Status) -> Failure {
    match status.code() {
        Code::Unauthenticated
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::NotFound
        | Code::InvalidArgument => Failure::Refused(status.message().to_owned()),
        // A transport failure's message is its source's text: show the
        // source and its causes instead, they say what went wrong.
        _ => Failure::Retry(match std::error::Error::source(status) {
            Some(cause) => format!("{}: {}", status.code(), longshore::with_causes(cause)),
            None => format!("{}: {}", status.code(), status.message()),
        }),
    }
}

type Key = (Uuid, i32);

/// What one session hands to the next: results sent and not yet answered
/// (`Recorded`), by execution, and whether an operator drained the agent
/// (a drained agent takes nothing more until it is restarted, whatever
/// happens to its connection).
#[derive(Default)]
pub(crate) struct Unanswered {
    results: HashMap<Key, agent_message::Message>,
    drained: bool,
}

/// How long opening a connection and a session may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// At a stop, how long past the drain the gateway has to acknowledge the
/// last results.
const RESULTS_GRACE: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    config: &AgentConfig,
    runner: &Runner,
    stop: &CancellationToken,
    unanswered: &mut Unanswered,
) -> Result<Ended, Failure> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(config.gateway.clone())
        .map_err(|e| Failure::Refused(format!("`{}` is not a gateway URL: {e}", config.gateway)))?
        .connect_timeout(OPEN_TIMEOUT);
    let https = config.gateway.starts_with("https://");
    if config.ca_certificate.is_some() && !https {
        return Err(Failure::Refused(format!(
            "a CA certificate is for an https:// gateway, not `{}`",
            config.gateway
        )));
    }
    if https {
        // The system's roots are trusted unless a CA is given: then only it.
        let tls = tonic::transport::ClientTlsConfig::new().timeout(OPEN_TIMEOUT);
        let tls = match &config.ca_certificate {
            Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            None => tls.with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|e| {
            Failure::Refused(format!(
                "cannot set up TLS for {}: {}",
                config.gateway,
                longshore::with_causes(&e)
            ))
        })?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        Failure::Retry(format!(
            "cannot reach {}: {}",
            config.gateway,
            longshore::with_causes(&e)
        ))
    })?;
    let mut client = AgentGatewayClient::new(channel);
    let (tx, rx) = mpsc::channel::<AgentMessage>(1024);
    let slots = u32::try_from(config.concurrency).unwrap_or(u32::MAX);
    // The queue beyond the slots: with `auto`, the gateway uses as much
    // of it as the measured times call for.
    let (prefetch, prefetch_auto) = match config.prefetch {
        Prefetch::Auto => (
            config.concurrency.saturating_mul(Prefetch::AUTO_PER_SLOT),
            true,
        ),
        Prefetch::Tasks(n) => (n, false),
    };
    let prefetch = prefetch.min(Prefetch::MOST);
    let room = u32::try_from(config.concurrency.saturating_add(prefetch)).unwrap_or(u32::MAX);
    send(
        &tx,
        agent_message::Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: config.id.clone(),
            pool: config.pool.clone(),
            labels: config.labels.clone(),
            actors: runner.actors(),
            slots,
            version: format!("longshore-agent {}", env!("CARGO_PKG_VERSION")),
            language: "rust".to_owned(),
            prefetch: u32::try_from(prefetch).unwrap_or(u32::MAX),
            prefetch_auto,
        }),
    )
    .await;
    let outbound = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|message| (message, rx))
    });
    let mut request = Request::new(outbound);
    let bearer = format!("Bearer {}", config.token)
        .parse()
        .map_err(|_| Failure::Refused("the agent token holds characters a header cannot".into()))?;
    request.metadata_mut().insert("authorization", bearer);
    let opened = tokio::time::timeout(OPEN_TIMEOUT, async {
        let mut inbound = client
            .session(request)
            .await
            .map_err(|status| classify(&status))?
            .into_inner();
        match inbound.message().await {
            Ok(Some(ServerMessage {
                message: Some(server_message::Message::Welcome(welcome)),
            })) => Ok((
                inbound,
                Duration::from_millis(welcome.ping_interval_ms.max(100)),
            )),
            Ok(_) => Err(Failure::Retry("the gateway did not say Welcome".into())),
            Err(status) => Err(classify(&status)),
        }
    })
    .await
    .map_err(|_| Failure::Retry("the gateway did not answer Hello in time".into()))?;
    let (mut inbound, ping_every) = opened?;
    tracing::info!(gateway = %config.gateway, pool = %config.pool, id = %config.id, "connected to the gateway");
    for result in unanswered.results.values() {
        send(&tx, result.clone()).await;
    }
    if !unanswered.drained {
        send(&tx, agent_message::Message::Ready(Ready { free: room })).await;
    }
    // The gateway answers every ping: this long without a word from it and
    // the stream is taken for dead (a partition leaves it open but silent).
    // Twice the gateway's own session timeout, so that the gateway has
    // handed back what this agent held before the agent gives up.
    let silence_limit = ping_every * 6;
    let mut last_heard = Instant::now();

    let (done_tx, mut done_rx) = mpsc::channel::<(Key, Option<Outcome>)>(1024);
    let mut running: HashMap<Key, Running> = HashMap::new();
    // Assigned ahead, waiting for a slot, in the order they came.
    let mut queued: VecDeque<Assignment> = VecDeque::new();
    let slots = config.concurrency;
    let mut ping = tokio::time::interval(ping_every);
    let mut draining = unanswered.drained;
    let mut stop_by: Option<Instant> = None;
    // Set once what still ran at the end of the drain was handed back.
    let mut handed_back = false;
    let ended = loop {
        // Stopped once nothing runs and every result is acknowledged: an
        // agent that exited with results still queued would lose them, and
        // the gateway would count a handed-back execution as an attempt.
        if stop_by.is_some() && running.is_empty() && unanswered.results.is_empty() {
            break Ended::Stopped;
        }
        let deadline = stop_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(ServerMessage { message: Some(message) })) => { last_heard = Instant::now(); match message {
                    server_message::Message::Assign(assign) => {
                        let Ok(task_id) = assign.task_id.parse::<Uuid>() else {
                            tracing::warn!(task = %assign.task_id, "the gateway sent a task id that is not a UUID; ignored");
                            continue;
                        };
                        let key = (task_id, assign.execution);
                        if stop_by.is_some() || draining {
                            // On its way before the gateway knew: back unrun.
                            let result = result_message(key, &Outcome::Released);
                            unanswered.results.insert(key, result.clone());
                            send(&tx, result).await;
                            continue;
                        }
                        let args = match serde_json::from_str(&assign.args_json) {
                            Ok(args) => args,
                            Err(e) => {
                                let outcome = Outcome::Failed { error: format!("arguments are not JSON: {e}"), fatal: true };
                                let result = result_message(key, &outcome);
                                unanswered.results.insert(key, result.clone());
                                send(&tx, result).await;
                                send(&tx, agent_message::Message::Ready(Ready { free: 1 })).await;
                                continue;
                            }
                        };
                        let assignment = Assignment {
                            task_id,
                            execution: assign.execution,
                            actor: assign.actor,
                            queue: assign.queue,
                            args,
                            attempt: assign.attempt,
                            max_attempts: assign.max_attempts,
                            time_limit: (assign.time_limit_ms > 0).then(|| Duration::from_millis(assign.time_limit_ms)),
                        };
                        if running.len() < slots {
                            start(runner, &tx, &done_tx, &mut running, assignment).await;
                        } else if queued.len() < prefetch {
                            tracing::debug!(task = %task_id, execution = key.1, "queued an assigned task");
                            queued.push_back(assignment);
                        } else {
                            // More than it offered room for: back unrun.
                            tracing::warn!(task = %task_id, "the gateway sent more tasks than this agent has room for; handing one back");
                            let result = result_message(key, &Outcome::Released);
                            unanswered.results.insert(key, result.clone());
                            send(&tx, result).await;
                        }
                    }
                    server_message::Message::Cancel(order) => {
                        let Ok(task_id) = order.task_id.parse::<Uuid>() else { continue };
                        let key = (task_id, order.execution);
                        if let Some(handle) = running.get(&key) {
                            handle.cancel(match order.reason() {
                                cancel::Reason::LeaseLost => CancelReason::LeaseLost,
                                cancel::Reason::TimeLimit => CancelReason::TimeLimit,
                                _ => CancelReason::Operator,
                            });
                        } else if let Some(at) = queued.iter().position(|a| (a.task_id, a.execution) == key) {
                            // Never started: cancelled without running; a
                            // lost lease is the gateway's to hand back.
                            queued.remove(at);
                            let outcome = match order.reason() {
                                cancel::Reason::LeaseLost => None,
                                cancel::Reason::TimeLimit => Some(Outcome::Released),
                                _ => Some(Outcome::Cancelled),
                            };
                            if let Some(outcome) = outcome {
                                let note = match outcome {
                                    Outcome::Cancelled => "cancelled by an operator before it started",
                                    _ => "its time limit passed before it started; it was handed back",
                                };
                                let at_unix_ms = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                                send(&tx, agent_message::Message::Log(Log {
                                    task_id: order.task_id.clone(),
                                    execution: key.1,
                                    level: Level::Info as i32,
                                    message: note.to_owned(),
                                    at_unix_ms,
                                })).await;
                                let result = result_message(key, &outcome);
                                unanswered.results.insert(key, result.clone());
                                send(&tx, result).await;
                            }
                            if !draining {
                                send(&tx, agent_message::Message::Ready(Ready { free: 1 })).await;
                            }
                        }
                    }
                    server_message::Message::Drain(_) => {
                        tracing::warn!(running = running.len(), "drained by an operator: finishing what runs, taking nothing more (stop or restart the agent to end it)");
                        draining = true;
                        unanswered.drained = true;
                        hand_back_queued(&tx, &mut queued, unanswered).await;
                    }
                    server_message::Message::Recorded(recorded) => {
                        if let Ok(task_id) = recorded.task_id.parse::<Uuid>() {
                            unanswered.results.remove(&(task_id, recorded.execution));
                        }
                        if !recorded.accepted {
                            tracing::warn!(task = %recorded.task_id, execution = recorded.execution, reason = %recorded.reason, "the gateway refused a result");
                        }
                    }
                    server_message::Message::Welcome(_) | server_message::Message::Pong(_) => {}
                }},
                Ok(Some(ServerMessage { message: None })) => {}
                Ok(None) => break Ended::Lost("the gateway closed the stream".into()),
                Err(status) => break Ended::Lost(format!("{}: {}", status.code(), status.message())),
            },
            Some((key, outcome)) = done_rx.recv() => {
                if let Some(handle) = running.remove(&key) {
                    send_logs(&tx, handle.take_logs()).await;
                }
                if let Some(outcome) = outcome {
                    let result = result_message(key, &outcome);
                    unanswered.results.insert(key, result.clone());
                    send(&tx, result).await;
                }
                if !draining {
                    if let Some(next) = queued.pop_front() {
                        start(runner, &tx, &done_tx, &mut running, next).await;
                    }
                    send(&tx, agent_message::Message::Ready(Ready { free: 1 })).await;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > silence_limit {
                    break Ended::Lost(format!(
                        "the gateway sent nothing for {} ms",
                        last_heard.elapsed().as_millis()
                    ));
                }
                for handle in running.values() {
                    send_logs(&tx, handle.take_logs()).await;
                }
                send(&tx, agent_message::Message::Ping(Ping {})).await;
            }
            () = stop.cancelled(), if stop_by.is_none() => {
                tracing::info!(running = running.len(), "stopping: finishing what runs, taking nothing more");
                draining = true;
                send(&tx, agent_message::Message::Stopping(Stopping {})).await;
                hand_back_queued(&tx, &mut queued, unanswered).await;
                stop_by = Some(Instant::now() + config.drain_timeout);
            }
            () = tokio::time::sleep_until(deadline), if stop_by.is_some() => {
                if handed_back {
                    tracing::warn!(
                        unanswered = unanswered.results.len(),
                        "the gateway did not acknowledge every result in time; stopping anyway"
                    );
                    break Ended::Stopped;
                }
                if !running.is_empty() {
                    tracing::warn!(running = running.len(), "drain time is over: handing back what still runs");
                }
                for handle in running.values() {
                    handle.cancel(CancelReason::Shutdown);
                }
                // Their results (handed back) come through `done_rx`; a
                // little longer for the gateway to acknowledge them.
                handed_back = true;
                stop_by = Some(Instant::now() + RESULTS_GRACE);
            }
        }
    };
    if let Ended::Lost(_) = ended {
        // The gateway hands these back itself; their results could not be
        // recorded anyway.
        for handle in running.values() {
            handle.cancel(CancelReason::LeaseLost);
        }
    }
    Ok(ended)
}

/// Runs `assignment` in a slot: its outcome comes back through `done`.
async fn start(
    runner: &Runner,
    tx: &mpsc::Sender<AgentMessage>,
    done: &mpsc::Sender<(Key, Option<Outcome>)>,
    running: &mut HashMap<Key, Running>,
    assignment: Assignment,
) {
    let key = (assignment.task_id, assignment.execution);
    let (handle, run) = runner.start(assignment);
    tracing::debug!(task = %key.0, execution = key.1, "running an assigned task");
    running.insert(key, handle);
    send(
        tx,
        agent_message::Message::Started(Started {
            task_id: key.0.to_string(),
            execution: key.1,
        }),
    )
    .await;
    let done = done.clone();
    tokio::spawn(async move {
        let outcome = run.await;
        let _ = done.send((key, outcome)).await;
    });
}

/// A stop or a drain: what waits in the queue goes back unrun, at once,
/// for other agents to take.
async fn hand_back_queued(
    tx: &mpsc::Sender<AgentMessage>,
    queued: &mut VecDeque<Assignment>,
    unanswered: &mut Unanswered,
) {
    if !queued.is_empty() {
        tracing::info!(queued = queued.len(), "handing back the tasks queued ahead");
    }
    for assignment in queued.drain(..) {
        let key = (assignment.task_id, assignment.execution);
        let result = result_message(key, &Outcome::Released);
        unanswered.results.insert(key, result.clone());
        send(tx, result).await;
    }
}

async fn send(tx: &mpsc::Sender<AgentMessage>, message: agent_message::Message) {
    // A closed stream shows up on the inbound side.
    let _ = tx
        .send(AgentMessage {
            message: Some(message),
        })
        .await;
}

async fn send_logs(tx: &mpsc::Sender<AgentMessage>, lines: Vec<LogEntry>) {
    for line in lines {
        let level = match line.level {
            LogLevel::Warning => Level::Warning,
            LogLevel::Error => Level::Error,
            _ => Level::Info,
        };
        send(
            tx,
            agent_message::Message::Log(Log {
                task_id: line.task_id.to_string(),
                execution: line.execution,
                level: level as i32,
                message: line.message,
                at_unix_ms: line.at.timestamp_millis(),
            }),
        )
        .await;
    }
}

fn result_message((task_id, execution): Key, outcome: &Outcome) -> agent_message::Message {
    let outcome = match outcome {
        Outcome::Succeeded => result::Outcome::Succeeded(longshore_proto::v1::Succeeded {}),
        Outcome::Failed { error, fatal } => result::Outcome::Failed(longshore_proto::v1::Failed {
            error: error.clone(),
            fatal: *fatal,
        }),
        Outcome::Cancelled => result::Outcome::Cancelled(longshore_proto::v1::Cancelled {}),
        Outcome::Released => result::Outcome::HandedBack(longshore_proto::v1::HandedBack {}),
    };
    agent_message::Message::Result(TaskResult {
        task_id: task_id.to_string(),
        execution,
        outcome: Some(outcome),
    })
}
