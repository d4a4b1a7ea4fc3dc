//! Claims and completions on a connection the caller holds: the claim
//! statement for a worker's queues (cached by shape), the running-task caps
//! that bound it, and the completion that may precede it in one
//! transaction.

use super::*;

/// The most queues one claim may read: SQLite allows 500 parts in one
/// compound SELECT, and the claim has two per queue.
pub(crate) const MAX_CLAIM_QUEUES: usize = 200;

/// The most a claim may take in all and from each of its capped queues,
/// under the running-task caps: the room each cap leaves.
pub(crate) struct ClaimLimits {
    /// In all (the claim's own limit when the cluster has no cap).
    total: i64,
    /// From each queue of the claim that has a cap (the others: `total`).
    per_queue: HashMap<String, i64>,
}

/// A claim's own limit, as SQLite takes it.
pub(crate) fn claim_limit(claim: &Claim) -> i64 {
    i64::try_from(claim.limit).unwrap_or(i64::MAX)
}

/// The room the running-task caps leave `claim`, read on `conn` inside the
/// claim's write transaction; `None` when no cap applies to it (the claim
/// then needs no counts). `queues` is the claim's queues as JSON.
///
/// `finishing` is the owner and the completions (as `completions_json`) of
/// a completion applied in the same transaction as the claim: the tasks it
/// finishes no longer run once it commits, so their places are free.
pub(crate) async fn claim_limits(
    conn: &mut sqlx::SqliteConnection,
    claim: &Claim,
    queues: &str,
    finishing: Option<(&str, &str)>,
) -> Result<Option<ClaimLimits>, StoreError> {
    let caps = sqlx::query(sql::CLAIM_CAPS)
        .bind(queues)
        .bind(claim.pool.as_ref().map(|p| p.name.as_str()))
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    if caps.is_empty() {
        return Ok(None);
    }
    let mut finished: HashMap<String, i64> = HashMap::new();
    if let Some((owner, completions)) = finishing {
        for row in sqlx::query(sql::FINISHING)
            .bind(owner)
            .bind(completions)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?
        {
            finished.insert(
                row.try_get("queue").map_err(from_sqlx)?,
                row.try_get("finishing").map_err(from_sqlx)?,
            );
        }
    }
    let mut limits = ClaimLimits {
        total: claim_limit(claim),
        per_queue: HashMap::new(),
    };
    for row in &caps {
        let queue: Option<String> = row.try_get("queue").map_err(from_sqlx)?;
        let cap: i64 = row.try_get("max_running").map_err(from_sqlx)?;
        let running: i64 = row.try_get("running").map_err(from_sqlx)?;
        let freed = match &queue {
            Some(queue) => finished.get(queue).copied().unwrap_or(0),
            None => finished.values().sum(),
        };
        let room = cap.saturating_sub(running.saturating_sub(freed)).max(0);
        match queue {
            Some(queue) => {
                limits.per_queue.insert(queue, room);
            }
            None => limits.total = limits.total.min(room),
        }
    }
    Ok(Some(limits))
}

pub(crate) fn check_queue_count(claim: &Claim) -> Result<(), StoreError> {
    if claim.queues.len() > MAX_CLAIM_QUEUES {
        return Err(StoreError::InvalidInput(format!(
            "a worker on SQLite serves at most {MAX_CLAIM_QUEUES} queues, got {}",
            claim.queues.len()
        )));
    }
    Ok(())
}

/// The hot path's statements, on a connection the caller holds.
impl SqliteStore {
    /// The claim statement for `queues` queues, capped or not.
    pub(crate) fn claim_sql(&self, queues: usize, capped: bool) -> Arc<str> {
        let mut cache = self
            .file
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry((queues, capped))
            .or_insert_with(|| {
                Arc::from(if capped {
                    sql::claim_capped(queues)
                } else {
                    sql::claim(queues)
                })
            })
            .clone()
    }

    /// Claims on `conn` (inside the caller's transaction or alone), within
    /// `limits` when caps apply (read in the same write transaction).
    pub(crate) async fn claim_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        claim: &Claim,
        now: i64,
        limits: Option<&ClaimLimits>,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let limit = claim_limit(claim);
        let labels = claim
            .pool
            .as_ref()
            .map(|p| to_json(&p.labels))
            .transpose()?;
        let statement = self.claim_sql(claim.queues.len(), limits.is_some());
        let mut query = sqlx::query(&statement);
        match limits {
            None => {
                query = query
                    .bind(now)
                    .bind(limit)
                    .bind(&claim.owner)
                    .bind(now.saturating_add(micros(claim.lease)))
                    .bind(claim.pool.as_ref().map(|p| p.name.as_str()))
                    .bind(labels.as_deref());
                for queue in &claim.queues {
                    query = query.bind(queue);
                }
            }
            Some(limits) => {
                let total = limits.total.min(limit);
                let per_queue = |queue: &str| {
                    limits
                        .per_queue
                        .get(queue)
                        .map_or(total, |room| (*room).min(total))
                };
                if total == 0 || claim.queues.iter().all(|q| per_queue(q) == 0) {
                    return Ok(Vec::new());
                }
                query = query
                    .bind(now)
                    .bind(total)
                    .bind(&claim.owner)
                    .bind(now.saturating_add(micros(claim.lease)))
                    .bind(claim.pool.as_ref().map(|p| p.name.as_str()))
                    .bind(labels.as_deref());
                for queue in &claim.queues {
                    query = query.bind(queue).bind(per_queue(queue));
                }
            }
        }
        let rows = query.fetch_all(&mut *conn).await.map_err(from_sqlx)?;
        // A row that cannot be decoded (its stored arguments, say) is
        // failed on the spot, alone, with the decoder's words in its log:
        // it must never fail the claim of the others.
        let mut claimed = Vec::with_capacity(rows.len());
        let mut undecodable = Vec::new();
        for row in &rows {
            match row::task(row) {
                Ok(task) => claimed.push(task),
                Err(e) => match row::fence(row) {
                    Ok((id, queue, execution)) => {
                        tracing::error!(task = %id, error = %e, "a claimed task cannot be decoded; failing it");
                        undecodable.push(Completion::undecodable(
                            id,
                            queue,
                            execution,
                            &e.to_string(),
                        ));
                    }
                    Err(fence_error) => tracing::error!(
                        error = %e,
                        %fence_error,
                        "a claimed task cannot be decoded, nor its id: it returns when its lease expires"
                    ),
                },
            }
        }
        if !undecodable.is_empty() {
            Self::complete_on(conn, &claim.owner, &undecodable, now).await?;
        }
        // RETURNING comes in the order rows were updated, not picked: hand
        // the batch out most urgent first, as the PostgreSQL engine does.
        claimed.sort_by_key(TaskRow::urgency);
        Ok(claimed)
    }

    /// Applies completions on `conn`; returns the ids whose fence held and
    /// the queues that got a task back at once.
    pub(crate) async fn complete_on(
        conn: &mut sqlx::SqliteConnection,
        owner: &str,
        completions: &[Completion],
        now: i64,
    ) -> Result<(HashSet<Uuid>, Vec<String>), StoreError> {
        let rows = sqlx::query(sql::COMPLETE)
            .bind(now)
            .bind(owner)
            .bind(completions_json(completions)?)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        let (applied, requeued) = ids_and_due_queues(&rows)?;
        insert_logs(conn, completions.iter().flat_map(|c| &c.logs)).await?;
        Ok((applied, requeued))
    }
}
