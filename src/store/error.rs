//! The store's one error type, in a leaf so that the parent's types and every backend and
//! helper module can name it without depending on each other.

/// Why the store could not answer.
///
/// The line between the two is "would the same request succeed later, with nothing changed in
/// it or in bantin?": a database out of reach, locked, out of disk or memory, or read-only (a
/// standby, a remounted file system) will be fixed by its operator or by time, so the client is
/// told 503 with `Retry-After` and keeps its write; a bad query or a corrupt row will not.
/// [`super::sqlite_code_is_unavailable`] and [`super::sqlstate_is_unavailable`] draw the line for each backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take the request now (unreachable, locked, disk full, out of memory,
    /// read-only): worth a 503 and a retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The query failed for another reason (a bug, a corrupt row).
    #[error("store error: {0}")]
    Backend(String),
}
