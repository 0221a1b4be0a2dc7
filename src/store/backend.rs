//! Opening the configured store from its URL: `sqlite://PATH[?max_bytes=N]` or
//! `postgres://…`. Apart from the trait and its types (in the parent module), so that the
//! backends depend on those and only this module depends on the backends.

use std::sync::Arc;

use super::{Store, StoreError, pool, postgres, sqlite};

/// Opens the store a database URL names: `sqlite://PATH[?max_bytes=N]` or `postgres://…`, with
/// the default pool bounds (one HTTP worker per core).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, pool::PoolBounds::default()).await
}

/// [`open`], with its connection pools bounded by `bounds`.
pub async fn open_with(url: &str, bounds: pool::PoolBounds) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let (path, max_bytes) = match rest.rsplit_once("?max_bytes=") {
            Some((path, n)) => (
                path,
                Some(n.parse::<u64>().map_err(|_| {
                    StoreError::Backend(format!(
                        "`max_bytes={n}` in the SQLite URL is not a number of bytes"
                    ))
                })?),
            ),
            None => (rest, None),
        };
        Ok(Arc::new(
            sqlite::SqliteStore::open_capped(std::path::Path::new(path), max_bytes, bounds).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PgStore::connect_with(url, bounds).await?,
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL `{url}`"
        )))
    }
}
