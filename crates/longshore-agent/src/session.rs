//! One session with a gateway: `Hello`, then slots offered as they free
//! up, assignments run through the [`Runner`], their log lines and
//! results sent back, pings while the stream is open.

use std::collections::HashMap;
use std::time::Duration;

use longshore::core::Outcome;
use longshore::remote::{Assignment, Runner, Running};
use longshore::{CancelReason, LogEntry, LogLevel};
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
        send(&tx, agent_message::Message::Ready(Ready { free: slots })).await;
    }
    // The gateway answers every ping: this long without a word from it and
    // the stream is taken for dead (a partition leaves it open but silent).
    // Twice the gateway's own session timeout, so that the gateway has
    // handed back what this agent held before the agent gives up.
    let silence_limit = ping_every * 6;
    let mut last_heard = Instant::now();

    let (done_tx, mut done_rx) = mpsc::channel::<(Key, Option<Outcome>)>(1024);
    let mut running: HashMap<Key, Running> = HashMap::new();
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
                                send(&tx, result_message(key, &outcome)).await;
                                continue;
                            }
                        };
                        let (handle, run) = runner.start(Assignment {
                            task_id,
                            execution: assign.execution,
                            actor: assign.actor,
                            queue: assign.queue,
                            args,
                            attempt: assign.attempt,
                            max_attempts: assign.max_attempts,
                            time_limit: (assign.time_limit_ms > 0).then(|| Duration::from_millis(assign.time_limit_ms)),
                        });
                        tracing::debug!(task = %task_id, execution = key.1, "running an assigned task");
                        running.insert(key, handle);
                        send(&tx, agent_message::Message::Started(Started { task_id: assign.task_id, execution: assign.execution })).await;
                        let done = done_tx.clone();
                        tokio::spawn(async move {
                            let outcome = run.await;
                            let _ = done.send((key, outcome)).await;
                        });
                    }
                    server_message::Message::Cancel(order) => {
                        let Ok(task_id) = order.task_id.parse::<Uuid>() else { continue };
                        if let Some(handle) = running.get(&(task_id, order.execution)) {
                            handle.cancel(match order.reason() {
                                cancel::Reason::LeaseLost => CancelReason::LeaseLost,
                                cancel::Reason::TimeLimit => CancelReason::TimeLimit,
                                _ => CancelReason::Operator,
                            });
                        }
                    }
                    server_message::Message::Drain(_) => {
                        tracing::warn!(running = running.len(), "drained by an operator: finishing what runs, taking nothing more (stop or restart the agent to end it)");
                        draining = true;
                        unanswered.drained = true;
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
