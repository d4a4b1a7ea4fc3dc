//! One module per page.

pub(crate) mod bulk;
pub(crate) mod overview;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod settings;
pub(crate) mod tasks;
pub(crate) mod workers;

use serde::Deserialize;

/// `?done=CODE`: the notice a change's redirect asks for.
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    pub(crate) done: Option<String>,
}
