//! `[api]` and the API tokens: limits of the publishing API, and who may call it.
//!
//! The size limits are file keys; the tokens are not. A token is a secret, and `site.toml` is
//! meant to be committed, so tokens come only from the environment (`BANTIN_API_TOKEN`, or a file
//! named by `BANTIN_API_TOKEN_FILE`, which can hold an old and a new token during a rotation).

use super::common::ConfigError;
use super::env::{self, Env};
use super::raw::RawApi;

/// Limits of the publishing API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Bearer tokens; empty means the write API is off.
    pub tokens: Vec<String>,
    pub max_article_bytes: usize,
    pub max_batch_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens: Vec::new(),
            max_article_bytes: 1 << 20,
            max_batch_bytes: 256 << 20,
        }
    }
}

pub(super) fn validate_api(
    raw: &RawApi,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<ApiConfig, ConfigError> {
    let d = ApiConfig::default();
    let tokens = api_tokens(env).map_err(|(k, p)| err(&k, p))?;
    Ok(ApiConfig {
        tokens,
        max_article_bytes: raw.max_article_bytes.unwrap_or(d.max_article_bytes),
        max_batch_bytes: raw.max_batch_bytes.unwrap_or(d.max_batch_bytes),
    })
}

/// Tokens from `BANTIN_API_TOKEN` (one) and `BANTIN_API_TOKEN_FILE` (one per line; blank lines
/// and `#` comments ignored), so a new token can be added beside the old one during a rotation.
fn api_tokens(env: &Env) -> Result<Vec<String>, (String, String)> {
    let mut tokens = Vec::new();
    if let Some(t) = env.api_token() {
        tokens.push(t);
    }
    if let Some(path) = env.api_token_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            (
                env::API_TOKEN_FILE.to_string(),
                format!("cannot read `{path}`: {e}"),
            )
        })?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if let Some(short) = tokens.iter().position(|t| t.len() < 16) {
        // Never echo the token itself.
        return Err((
            env::API_TOKEN.into(),
            format!(
                "token #{} is shorter than 16 characters; use a long random token",
                short + 1
            ),
        ));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::config::testing::MINIMAL;

    #[test]
    fn token_file_holds_several_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(
            &f,
            "# rotated 2026-11\nold-token-0123456789\n\nnew-token-0123456789\n",
        )
        .unwrap();
        let path = f.display().to_string();
        let c = Config::parse(MINIMAL, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_API_TOKEN_FILE").then(|| path.clone())
        })
        .unwrap();
        assert_eq!(
            c.api.tokens,
            vec!["old-token-0123456789", "new-token-0123456789"]
        );
    }
}
