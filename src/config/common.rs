//! What every section's validation shares, in a leaf below the parent and the sections: the
//! error a bad value becomes (file, key, problem) and the check of an absolute http(s) URL.

use url::Url;

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

/// An absolute `http` or `https` URL, or why `s` is not one.
pub(super) fn parse_http_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URL ({e})"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("`{s}` must be an http or https URL"));
    }
    Ok(u)
}
