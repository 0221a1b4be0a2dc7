//! `[access]` and `[[partners]]`: who gets which variant of a feed.
//!
//! The public variant may be cut to summaries; partner sites that present a key get the full
//! text. The two sections are kept together because they decide one thing between them, and
//! because a partner is recognised from its key and, behind a proxy, from which peers are trusted
//! to name the client (`trusted_proxies`). The configuration holds only a SHA-256 of each key
//! (see [`Partner`]); [`parse_sha256_hex`] is public for the tests and tools that make one.

use super::common::ConfigError;
use super::raw::{RawAccess, RawPartner};

/// What the public variant of a feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicContent {
    /// The full article HTML, as partners get it (the default: today's behaviour).
    Full,
    /// Title, summary, image and link only; `content:encoded` / `content_html` are left out.
    Summary,
}

/// `[access]`: the public variant, and which peers may speak for the client (`X-Forwarded-For`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub public_content: PublicContent,
    /// Proxies (load balancers, CDNs) whose `X-Forwarded-For` is believed; a client address is
    /// read from that header only when the connection comes from one of these networks.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            public_content: PublicContent::Full,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A partner site syndicating full articles. The configuration holds only the SHA-256 of its key,
/// so a leaked `site.toml` (or a repository holding it) gives nobody the full text.
#[derive(Clone, PartialEq, Eq)]
pub struct Partner {
    /// Stable id, shown in readership figures (`baomoi`).
    pub id: String,
    pub name: String,
    pub key_sha256: [u8; 32],
}

impl std::fmt::Debug for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not a secret, but it has no business in logs either.
        f.debug_struct("Partner")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(super) fn validate_access(
    raw: &RawAccess,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<AccessConfig, ConfigError> {
    let d = AccessConfig::default();
    let public_content = match raw.public_content.as_deref() {
        None => d.public_content,
        Some("full") => PublicContent::Full,
        Some("summary") => PublicContent::Summary,
        Some(other) => {
            return Err(err(
                "access.public_content",
                format!("`{other}` is neither \"full\" nor \"summary\""),
            ));
        }
    };
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.trim();
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    err(
                        &format!("access.trusted_proxies[{i}]"),
                        format!("`{p}` is neither an IP address nor a network such as 10.0.0.0/8"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AccessConfig {
        public_content,
        trusted_proxies,
    })
}

pub(super) fn validate_partners(
    raw: &[RawPartner],
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<Partner>, ConfigError> {
    let mut out: Vec<Partner> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let at = format!("partners[{i}]");
        if p.id.is_empty()
            || p.id.len() > 64
            || !p
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` must be 1-64 characters of a-z, 0-9, - and _", p.id),
            ));
        }
        if out.iter().any(|o| o.id == p.id) {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` is used by an earlier partner", p.id),
            ));
        }
        let name = crate::text::clean_line(&p.name);
        if name.is_empty() {
            return Err(err(&format!("{at}.name"), "must not be empty".into()));
        }
        let hex = p.key_sha256.trim();
        let Some(key_sha256) = parse_sha256_hex(hex) else {
            return Err(err(
                &format!("{at}.key_sha256"),
                "must be the SHA-256 of the partner's key as 64 hex digits (`bantin partner-key` makes a key and its hash)".into(),
            ));
        };
        // A key must name one partner: `access::partner_for_key` can only ever answer one.
        if let Some(o) = out.iter().find(|o| o.key_sha256 == key_sha256) {
            return Err(err(
                &format!("{at}.key_sha256"),
                format!("partner `{}` has the same key", o.id),
            ));
        }
        out.push(Partner {
            id: p.id.clone(),
            name,
            key_sha256,
        });
    }
    Ok(out)
}

/// 64 hex digits (either case) → 32 bytes.
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::testing::{MINIMAL, parse, parse_err};
    use crate::config::{AccessConfig, Config, PublicContent, ReadershipConfig};

    #[test]
    fn access_partners_and_readership() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.access, AccessConfig::default());
        assert!(c.partners.is_empty());
        assert_eq!(c.readership, ReadershipConfig::default());
        let hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        let text = format!(
            "{MINIMAL}[access]\npublic_content = \"summary\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[[partners]]\nid = \"baomoi\"\nname = \"Báo Mới\"\nkey_sha256 = \"{hash}\"\n[readership]\nflush_interval = 2\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.access.public_content, PublicContent::Summary);
        assert_eq!(c.access.trusted_proxies.len(), 2);
        assert_eq!(c.partners[0].id, "baomoi");
        assert_eq!(c.partners[0].key_sha256[0], 0x9f);
        assert_eq!(c.readership.flush_interval.as_secs(), 2);
        assert!(
            !format!("{:?}", c.partners[0]).contains("9f86"),
            "the hash stays out of debug output"
        );
        let off = Config::parse(&text, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_READERSHIP").then(|| "off".to_string())
        })
        .unwrap();
        assert!(!off.readership.enabled);

        let e = parse_err(&text.replace("\"summary\"", "\"teaser\""));
        assert_eq!(e.key, "access.public_content");
        let e = parse_err(&text.replace("10.0.0.0/8", "10.0.0.0/99"));
        assert_eq!(e.key, "access.trusted_proxies[0]");
        let e = parse_err(&text.replace(hash, "secret-key"));
        assert_eq!(e.key, "partners[0].key_sha256");
        assert!(e.problem.contains("64 hex"), "{e}");
        let twice = format!(
            "{text}[[partners]]\nid = \"baomoi\"\nname = \"X\"\nkey_sha256 = \"{}\"\n",
            "0".repeat(64)
        );
        assert_eq!(parse_err(&twice).key, "partners[1].id");
        let e = parse_err(&text.replace("flush_interval = 2", "keep_days = 3"));
        assert_eq!(e.key, "readership.keep_days");
    }
}
