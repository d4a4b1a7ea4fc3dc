//! Bulk operations that a server node runs in the background.

pub(crate) mod sql;

use longshore_core::{BulkAction, NewOperation, Operation, OperationState, OperationStore};
use sqlx::sqlite::SqliteRow;

use super::*;

#[async_trait]
impl OperationStore for SqliteStore {
    async fn create_operation(&self, operation: &NewOperation) -> Result<(), StoreError> {
        sqlx::query(sql::CREATE)
            .bind(operation.id.to_string())
            .bind(operation.action.as_str())
            .bind(&operation.target)
            .bind(operation.matched)
            .bind(&operation.started_by)
            .bind(&operation.node)
            .bind(now_us())
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn operation(&self, id: Uuid) -> Result<Option<Operation>, StoreError> {
        sqlx::query(sql::ONE)
            .bind(id.to_string())
            .fetch_optional(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(operation)
            .transpose()
    }

    async fn operations(&self, limit: i64) -> Result<Vec<Operation>, StoreError> {
        sqlx::query(sql::NEWEST)
            .bind(limit.max(0))
            .fetch_all(&self.file.reader)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(operation)
            .collect()
    }

    async fn operation_progress(&self, id: Uuid, seen: i64, done: i64) -> Result<bool, StoreError> {
        let cancel: Option<bool> = sqlx::query_scalar(sql::PROGRESS)
            .bind(id.to_string())
            .bind(seen)
            .bind(done)
            .bind(now_us())
            .fetch_optional(&self.file.writer)
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
            .bind(id.to_string())
            .bind(state.as_str())
            .bind(error)
            .bind(now_us())
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn cancel_operation(&self, id: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query(sql::CANCEL)
            .bind(id.to_string())
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?
            .rows_affected()
            > 0)
    }

    async fn purge_operations(&self, older_than: Duration) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::PURGE)
            .bind(now_us().saturating_sub(micros(older_than)))
            .execute(&self.file.writer)
            .await
            .map_err(from_sqlx)?
            .rows_affected())
    }
}

/// An operation's row.
fn operation(r: &SqliteRow) -> Result<Operation, StoreError> {
    let get_text =
        |name: &str| -> Result<String, StoreError> { r.try_get(name).map_err(from_sqlx) };
    let action = get_text("action")?;
    let state = get_text("state")?;
    let unknown = |what: &str, name: &str| {
        StoreError::Database(format!("unknown {what} `{name}` stored").into())
    };
    Ok(Operation {
        new: NewOperation {
            id: row::uuid(&get_text("id")?)?,
            action: BulkAction::parse(&action).ok_or_else(|| unknown("bulk action", &action))?,
            target: get_text("target")?,
            matched: r.try_get("matched").map_err(from_sqlx)?,
            started_by: get_text("started_by")?,
            node: get_text("node")?,
        },
        state: OperationState::parse(&state).ok_or_else(|| unknown("operation state", &state))?,
        seen: r.try_get("seen").map_err(from_sqlx)?,
        done: r.try_get("done").map_err(from_sqlx)?,
        cancel_requested: r.try_get("cancel_requested").map_err(from_sqlx)?,
        error: r.try_get("error").map_err(from_sqlx)?,
        created_at: row::time(r.try_get("created_at").map_err(from_sqlx)?)?,
        modified_at: row::time(r.try_get("modified_at").map_err(from_sqlx)?)?,
        finished_at: row::opt_time(r.try_get("finished_at").map_err(from_sqlx)?)?,
    })
}
