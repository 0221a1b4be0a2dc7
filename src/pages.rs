//! Loading one page of one feed from the store: the only place feeds meet the store.
//!
//! It sits above both [`crate::store`] and [`crate::feed`] (which is pure: keys, pages and
//! renderers), so neither imports the other; the application layer ([`crate::app`]) calls it on
//! a cache miss, and the export command for every page.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::feed::{FeedPage, TranslationLink};
use crate::model::{Content, FeedKey, Selector};
use crate::store::{PageQuery, Store, StoreError};

/// Loads page `page` (1-based) of a feed at `now`. `None` when the page is past the end, or when
/// a tag or byline feed has no article at all (those feeds exist only through their articles;
/// a configured language or category feed always has a page 1, possibly empty).
pub async fn load(
    store: &dyn Store,
    config: &Config,
    key: &FeedKey,
    page: u32,
    now: DateTime<Utc>,
) -> Result<Option<FeedPage>, StoreError> {
    let per_page = config.items_per_feed;
    let offset = (page.max(1) as usize - 1).saturating_mul(per_page);
    // The page and the feed's next scheduled publication are independent queries: run them
    // side by side (a miss waits for the slower).
    let query = PageQuery {
        feed: key,
        now,
        offset,
        limit: per_page + 1,
    };
    let (items, next_publication) =
        tokio::join!(store.page(&query), store.next_publication(key, now));
    let (mut items, next_publication) = (items?, next_publication?);
    let open_ended = matches!(key.selector, Selector::Tag(_) | Selector::Author(_));
    if items.is_empty() && (page > 1 || open_ended) {
        return Ok(None);
    }
    let has_next = items.len() > per_page;
    items.truncate(per_page);

    let wanted: Vec<String> = items
        .iter()
        .flat_map(|a| a.translations.values().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let translations = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        store
            .get_many(&wanted)
            .await?
            .into_iter()
            .filter(|t| t.is_visible(now))
            .map(|t| {
                (
                    t.id.clone(),
                    TranslationLink {
                        lang: t.lang.clone(),
                        url: t.url.clone(),
                    },
                )
            })
            .collect()
    };

    let name = match &key.selector {
        Selector::All => None,
        Selector::Category(id) => config.category(id).map(|c| c.name(&key.lang).to_string()),
        Selector::Tag(s) => items
            .iter()
            .flat_map(|a| a.tags.iter())
            .find(|t| crate::text::slug(t) == *s)
            .cloned(),
        Selector::Author(s) => items
            .iter()
            .map(|a| &a.author)
            .find(|n| crate::text::slug(n) == *s)
            .cloned(),
    };
    Ok(Some(FeedPage {
        key: key.clone(),
        page: page.max(1),
        items,
        has_next,
        translations,
        name,
        next_publication,
        content: Content::Full,
    }))
}
