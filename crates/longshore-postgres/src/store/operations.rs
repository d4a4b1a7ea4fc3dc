//! Bulk operations that a server node runs in the background.

pub(crate) mod sql;

use longshore_core::{BulkAction, NewOperation, Operation, OperationState, OperationStore};

use super::*;

#[async_trait]
impl OperationStore for PgStore {
    async fn create_operation(&self, operation: &NewOperation) -> Result<(), StoreError> {
        sqlx::query(sql::CREATE)
            .bind(operation.id)
            .bind(operation.action.as_str())
            .bind(&operation.target)
            .bind(operation.matched)
            .bind(&operation.started_by)
            .bind(&operation.node)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn operation(&self, id: Uuid) -> Result<Option<Operation>, StoreError> {
        sqlx::query(sql::ONE)
            .bind(id)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(operation)
            .transpose()
    }

    async fn operations(&self, limit: i64) -> Result<Vec<Operation>, StoreError> {
        sqlx::query(sql::NEWEST)
            .bind(limit.max(0))
            .fetch_all(self.db())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(operation)
            .collect()
    }

    async fn operation_progress(&self, id: Uuid, seen: i64, done: i64) -> Result<bool, StoreError> {
        let cancel: Option<bool> = sqlx::query_scalar(sql::PROGRESS)
            .bind(id)
            .bind(seen)
            .bind(done)
            .fetch_optional(self.db())
            .await
            .map_err(from_sqlx)?;
        // Gone (purged, or the table emptied by hand): nothing to go on for.
        Ok(cancel.unwrap_or(true))
    }

    async fn finish_operation(
        &self,
        id: Uuid,
        state: OperationState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::FINISH)
            .bind(id)
            .bind(state.as_str())
            .bind(error)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn cancel_operation(&self, id: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query(sql::CANCEL)
            .bind(id)
            .execute(self.db())
            .await
            .map_err(from_sqlx)?
            .rows_affected()
            > 0)
    }

    async fn purge_operations(&self, older_than: Duration) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::PURGE)
            .bind(millis(older_than))
            .execute(self.db())
            .await
            .map_err(from_sqlx)?
            .rows_affected())
    }
}

/// An operation's row.
fn operation(row: &sqlx::postgres::PgRow) -> Result<Operation, StoreError> {
    let action: String = row.try_get("action").map_err(from_sqlx)?;
    let state: String = row.try_get("state").map_err(from_sqlx)?;
    Ok(Operation {
        new: NewOperation {
            id: row.try_get("id").map_err(from_sqlx)?,
            action: BulkAction::parse(&action).ok_or_else(|| unknown("bulk action", &action))?,
            target: row.try_get("target").map_err(from_sqlx)?,
            matched: row.try_get("matched").map_err(from_sqlx)?,
            started_by: row.try_get("started_by").map_err(from_sqlx)?,
            node: row.try_get("node").map_err(from_sqlx)?,
        },
        state: OperationState::parse(&state).ok_or_else(|| unknown("operation state", &state))?,
        seen: row.try_get("seen").map_err(from_sqlx)?,
        done: row.try_get("done").map_err(from_sqlx)?,
        cancel_requested: row.try_get("cancel_requested").map_err(from_sqlx)?,
        error: row.try_get("error").map_err(from_sqlx)?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        modified_at: row.try_get("modified_at").map_err(from_sqlx)?,
        finished_at: row.try_get("finished_at").map_err(from_sqlx)?,
    })
}

/// A stored name this build does not know.
fn unknown(what: &str, name: &str) -> StoreError {
    StoreError::Database(format!("unknown {what} `{name}` stored").into())
}
