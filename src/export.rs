//! `bantin export DIR`: page 1 of every feed, in every format, as static files (each with `.gz`
//! and `.br` siblings for servers such as nginx's `gzip_static`/`brotli_static`), plus
//! `feeds.opml`. The layout mirrors the URLs, so `DIR` can be served as the site's root; the self
//! links inside point at the public URL, as they do when bantin serves them itself. The `.gz`
//! and `.br` files are the best-ratio bodies (what bantin swaps in after a miss), since a static
//! file is compressed once and sent for as long as it stands.

use std::path::Path;

use chrono::Utc;

use crate::app::{App, FeedError};
use crate::cache::CacheKey;
use crate::feed::{FeedKey, Format, Selector, configured_feeds};
use crate::render::Representation;

fn write(dir: &Path, rel: &str, rep: &Representation) -> std::io::Result<()> {
    let path = dir.join(rel.trim_start_matches('/'));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, &rep.identity.bytes)?;
    let mut gz = path.clone().into_os_string();
    gz.push(".gz");
    std::fs::write(gz, &rep.gzip.bytes)?;
    let mut br = path.into_os_string();
    br.push(".br");
    std::fs::write(br, &rep.br.bytes)
}

/// Writes every feed; returns how many files (not counting compressed siblings) were written.
pub async fn export(app: &App, dir: &Path) -> anyhow::Result<usize> {
    let mut feeds = configured_feeds(app.config());
    // Every feed, not only the listed ones: a static copy has no reason to leave any out.
    let (tags, authors) = app
        .store()
        .facets(Utc::now(), crate::store::FacetBound::ALL)
        .await?;
    feeds.extend(
        tags.iter()
            .map(|f| FeedKey::new(&f.lang, Selector::Tag(f.slug.clone()))),
    );
    feeds.extend(
        authors
            .iter()
            .map(|f| FeedKey::new(&f.lang, Selector::Author(f.slug.clone()))),
    );
    let mut n = 0;
    for feed in feeds {
        for format in Format::ALL {
            let key = CacheKey {
                feed: feed.clone(),
                format,
                page: 1,
                content: app.public_content(),
            };
            match app.feed(&key).await {
                Ok((entry, _)) => {
                    let rep = entry.rep.best();
                    write(dir, &feed.path(app.config(), format), &rep)?;
                    n += 1;
                }
                Err(FeedError::NotFound(_)) => {}
                Err(FeedError::Busy) => anyhow::bail!("{}", crate::app::BUSY_TEXT),
                Err(FeedError::Store(e)) => return Err(e.into()),
            }
        }
    }
    match app.opml().await {
        Ok((entry, _)) => write(dir, "/feeds.opml", &entry.rep.best())?,
        Err(FeedError::Store(e)) => return Err(e.into()),
        Err(e) => anyhow::bail!("feeds.opml: {e}"),
    }
    Ok(n + 1)
}
