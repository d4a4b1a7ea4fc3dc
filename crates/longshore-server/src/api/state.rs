//! What every handler shares.

use std::sync::Arc;

use longshore::metrics::Metrics;
use longshore::ops::ActorCatalog;
use longshore::{Client, Store};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    /// Writes single-task enqueues, gathered with concurrent requests'
    /// into shared inserts; counts them in `metrics`.
    pub(crate) client: Client,
    /// Attempts of an enqueued task that names none (`retry.max_attempts`).
    pub(crate) default_max_attempts: i32,
    /// Counts the tasks enqueued through the API.
    pub(crate) metrics: Metrics,
    /// The actors whose arguments are checked before a task is written.
    pub(crate) actors: Arc<dyn ActorCatalog>,
}
