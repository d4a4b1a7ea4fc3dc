//! Errors of handlers and of the library.

use std::fmt;

use longshore_core::StoreError;

/// What a handler returns when an execution did not succeed.
///
/// Any `std::error::Error` converts into a retryable `TaskError` with `?`;
/// [`TaskError::fatal`] fails the task at once, whatever attempts remain.
///
/// ```
/// use longshore::TaskError;
/// fn parse(input: &str) -> Result<u32, TaskError> {
///     let n: u32 = input.parse()?; // retryable
///     if n == 0 {
///         return Err(TaskError::fatal("zero can never work"));
///     }
///     Ok(n)
/// }
/// assert!(parse("x").unwrap_err().is_retryable());
/// assert!(!parse("0").unwrap_err().is_retryable());
/// ```
pub struct TaskError {
    message: String,
    fatal: bool,
}

impl TaskError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            fatal: false,
        }
    }

    /// A failure no retry can fix: the task fails now.
    pub fn fatal(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            fatal: true,
        }
    }

    /// False for a fatal error.
    pub fn is_retryable(&self) -> bool {
        !self.fatal
    }

    /// The message recorded on the task.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E> From<E> for TaskError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        // Keep the chain of causes: it is what an operator needs to read.
        TaskError::retry(with_causes(&error))
    }
}

/// An error and each of its causes, `outer: inner: innermost`.
///
/// Many errors (a transport's, a pool's) say little in their own
/// `Display` and keep the useful part in their sources.
///
/// ```
/// let io = std::io::Error::other("disk on fire");
/// assert_eq!(longshore::with_causes(&io), "disk on fire");
/// ```
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some wrappers repeat their source's text as their own.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("message", &self.message)
            .field("fatal", &self.fatal)
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Errors of the library API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task's arguments could not be serialised to JSON.
    #[error("arguments of actor `{actor}` cannot be serialised: {source}")]
    Serialize {
        /// The actor.
        actor: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A setting is out of range; the message names it.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A background loop of the worker panicked or failed.
    #[error("worker failed: {0}")]
    Worker(String),
}
