//! The contract every [`Store`] implementation passes: the same assertions, run by each backend's
//! own test (`sqlite_passes_the_store_contract`, `postgres_passes_the_store_contract`).

use chrono::{DateTime, Duration, Utc};

use super::{Facet, FacetBound, PageQuery, Store, Upsert};
use crate::article::tests::config;
use crate::article::{Article, ArticleInput};
use crate::model::{FeedKey, Selector};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn art(
    id: &str,
    lang: &str,
    category: &str,
    published: &str,
    tags: &[&str],
    author: &str,
) -> Article {
    let input = ArticleInput {
        id: id.into(),
        lang: lang.into(),
        category: category.into(),
        title: format!("Bài {id}"),
        summary: "Tóm tắt".into(),
        content_html: "<p>Nội dung</p>".into(),
        url: format!("https://baolongan.example/{lang}/{id}"),
        author: author.into(),
        published_at: published.into(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    Article::from_input(input, &config()).unwrap()
}

async fn ids(
    store: &dyn Store,
    feed: &FeedKey,
    now: DateTime<Utc>,
    offset: usize,
    limit: usize,
) -> Vec<String> {
    store
        .page(&PageQuery {
            feed,
            now,
            offset,
            limit,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

pub(crate) async fn run_all(store: &dyn Store) {
    empty_store(store).await;
    upsert_rules(store).await;
    feed_pages(store).await;
    updates_move_articles_between_feeds(store).await;
    batch_and_delete(store).await;
    readership_rows(store).await;
    source_lease(store).await;
    subscriptions(store).await;
}

async fn subscriptions(store: &dyn Store) {
    use super::subscriptions::{Finished, Outcome, Subscription};
    let now = t("2026-11-30T01:00:00Z");
    let sec = Duration::seconds;
    let topic = "https://feeds.example/vi/rss.xml";
    let other = "https://feeds.example/en/rss.xml";
    let a = Subscription::new(
        topic,
        "https://a.example/cb?x=1",
        "a.example",
        Some("s3cret".into()),
        3600,
        now,
    );
    let b = Subscription::new(topic, "https://b.example/cb", "b.example", None, 7200, now);
    let c = Subscription::new(
        other,
        "https://a.example/other",
        "a.example",
        None,
        3600,
        now,
    );
    for s in [&a, &b, &c] {
        store.save_subscription(s).await.unwrap();
    }
    assert_eq!(
        store
            .subscription(topic, &a.callback)
            .await
            .unwrap()
            .as_ref(),
        Some(&a)
    );
    assert_eq!(
        store
            .subscription(topic, "https://nobody.example/")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.subscriptions(now).await.unwrap(),
        vec![c.clone(), a.clone(), b.clone()]
    );
    assert_eq!(
        store.count_subscriptions("a.example", now).await.unwrap(),
        (3, 2)
    );
    assert_eq!(
        store.subscription_hosts(now).await.unwrap(),
        vec![
            (other.to_string(), "a.example".to_string(), 1),
            (topic.to_string(), "a.example".to_string(), 1),
            (topic.to_string(), "b.example".to_string(), 1),
        ]
    );
    // Nothing pending yet.
    assert_eq!(store.next_delivery(now).await.unwrap(), None);
    assert!(
        store
            .claim_deliveries(now, now + sec(300), 10, &[])
            .await
            .unwrap()
            .is_empty()
    );

    // A renewal replaces the lease and the secret, and duplicates nothing.
    let mut renewed = Subscription::new(topic, &a.callback, "a.example", None, 7200, now + sec(10));
    store.save_subscription(&renewed).await.unwrap();
    renewed.created_at = now;
    renewed.next_attempt = now;
    assert_eq!(
        store.subscription(topic, &a.callback).await.unwrap(),
        Some(renewed.clone())
    );
    assert_eq!(store.subscriptions(now).await.unwrap().len(), 3);

    // Two writes before any delivery: one pending delivery per subscription, due now.
    assert_eq!(
        store
            .mark_published(&[topic.to_string()], now)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .mark_published(
                &[topic.to_string(), "https://feeds.example/none".into()],
                now
            )
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.next_delivery(now).await.unwrap(), Some(now));
    // A busy host is left out; the others are claimed once, whoever asks next gets nothing.
    let lease = now + sec(300);
    let claims = store
        .claim_deliveries(now, lease, 10, &["a.example".to_string()])
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (
            claims[0].callback.as_str(),
            claims[0].updates,
            claims[0].claimed_until
        ),
        ("https://b.example/cb", 2, lease)
    );
    let mut claims_a = store.claim_deliveries(now, lease, 10, &[]).await.unwrap();
    assert_eq!(claims_a.len(), 1);
    assert_eq!(claims_a[0].secret, None, "the renewed secret");
    assert!(
        store
            .claim_deliveries(now, lease, 10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Claimed rows are due when their claim ends.
    assert_eq!(store.next_delivery(now).await.unwrap(), Some(lease));

    // b accepted; a failed; a write lands while a's delivery was out.
    let at = now + sec(1);
    let retry = now + sec(6);
    let done = vec![
        Finished {
            claim: claims[0].clone(),
            at,
            outcome: Outcome::Delivered,
        },
        Finished {
            claim: claims_a[0].clone(),
            at,
            outcome: Outcome::Failed {
                error: "answered 503".into(),
                retry_at: retry,
            },
        },
    ];
    assert_eq!(store.finish_deliveries(&done).await.unwrap(), 2);
    // Written once: a second report under the same (spent) claim changes nothing.
    assert_eq!(store.finish_deliveries(&done).await.unwrap(), 0);
    let got_b = store
        .subscription(topic, "https://b.example/cb")
        .await
        .unwrap()
        .unwrap();
    assert!(!got_b.pending());
    assert_eq!((got_b.last_success, got_b.attempts), (Some(at), 0));
    let got_a = store
        .subscription(topic, &a.callback)
        .await
        .unwrap()
        .unwrap();
    assert!(got_a.pending());
    assert_eq!(
        (
            got_a.attempts,
            got_a.next_attempt,
            got_a.last_error.as_deref()
        ),
        (1, retry, Some("answered 503"))
    );
    // A new write keeps a's backoff, and makes b pending again at once.
    assert_eq!(
        store
            .mark_published(&[topic.to_string()], at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .subscription(topic, &a.callback)
            .await
            .unwrap()
            .unwrap()
            .next_attempt,
        retry
    );
    let again = store
        .claim_deliveries(at, at + sec(300), 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].callback.as_str(), again[0].updates),
        ("https://b.example/cb", 3)
    );
    assert_eq!(store.next_delivery(at).await.unwrap(), Some(retry));
    claims_a = store
        .claim_deliveries(retry, retry + sec(300), 10, &[])
        .await
        .unwrap();
    assert_eq!(
        (claims_a.len(), claims_a[0].attempts, claims_a[0].updates),
        (1, 1, 3)
    );
    // 410: the subscription ends.
    let gone = vec![Finished {
        claim: claims_a[0].clone(),
        at: retry,
        outcome: Outcome::Gone,
    }];
    assert_eq!(store.finish_deliveries(&gone).await.unwrap(), 1);
    assert_eq!(store.subscription(topic, &a.callback).await.unwrap(), None);

    // Leases end: an expired subscription is neither listed, marked nor claimed, then purged.
    let late = now + sec(3600);
    assert_eq!(store.subscriptions(late).await.unwrap().len(), 1);
    assert_eq!(
        store
            .mark_published(&[other.to_string()], late)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count_subscriptions("a.example", late).await.unwrap(),
        (1, 0)
    );
    assert_eq!(store.purge_subscriptions(late).await.unwrap(), 1);
    assert_eq!(store.subscription(other, &c.callback).await.unwrap(), None);
    // A lease renewed after it ended starts afresh, with nothing pending.
    let mut b_late = store
        .subscription(topic, "https://b.example/cb")
        .await
        .unwrap()
        .unwrap();
    assert!(b_late.pending());
    let far = now + sec(7200);
    store
        .save_subscription(&Subscription::new(
            topic,
            &b_late.callback,
            "b.example",
            None,
            3600,
            far,
        ))
        .await
        .unwrap();
    b_late = store
        .subscription(topic, &b_late.callback)
        .await
        .unwrap()
        .unwrap();
    assert!(!b_late.pending());
    assert_eq!((b_late.created_at, b_late.attempts), (far, 0));
    assert!(
        store
            .remove_subscription(topic, &b_late.callback)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_subscription(topic, &b_late.callback)
            .await
            .unwrap()
    );
    assert!(store.subscriptions(now).await.unwrap().is_empty());
}

async fn source_lease(store: &dyn Store) {
    use super::upstream::{SourceState, SourceStatus};
    let now = t("2026-11-30T01:00:00Z");
    let fresh = SourceState::new("bao-a", "http://a.example/rss", now);
    assert!(store.add_source(&fresh).await.unwrap());
    // A second replica starting up does not reset the state the first one keeps.
    let mut other = fresh.clone();
    other.url = "http://elsewhere.example/".into();
    assert!(!store.add_source(&other).await.unwrap());
    assert_eq!(store.source_states().await.unwrap(), vec![fresh.clone()]);

    // Not due yet: nobody gets it.
    let early = now - Duration::seconds(1);
    let lease = now + Duration::minutes(5);
    assert_eq!(
        store.claim_source("bao-a", early, lease).await.unwrap(),
        None
    );
    // Due: the first claim wins, the second (another replica, same instant) gets nothing.
    assert_eq!(
        store.claim_source("bao-a", now, lease).await.unwrap(),
        Some(fresh.clone())
    );
    assert_eq!(store.claim_source("bao-a", now, lease).await.unwrap(), None);
    assert_eq!(store.claim_source("nope", now, lease).await.unwrap(), None);
    // Every replica reading the states sees the lease.
    assert_eq!(store.source_states().await.unwrap()[0].next_poll, lease);

    let mut polled = fresh.clone();
    polled.status = SourceStatus::Ok;
    polled.etag = Some("\"v1\"".into());
    polled.last_modified = Some("Mon, 30 Nov 2026 01:00:00 GMT".into());
    polled.last_success = Some(now);
    polled.items = 30;
    polled.next_poll = now + Duration::minutes(15);
    // Written under the lease it holds; a second write under the same (now spent) lease is
    // refused, as is one under a lease never taken.
    assert!(store.finish_source(&polled, lease).await.unwrap());
    let mut late = polled.clone();
    late.items = 1;
    assert!(!store.finish_source(&late, lease).await.unwrap());
    assert!(!store.finish_source(&late, now).await.unwrap());
    assert_eq!(store.source_states().await.unwrap(), vec![polled.clone()]);
    store.save_source(&polled).await.unwrap();
    assert_eq!(store.source_states().await.unwrap(), vec![polled.clone()]);
    // The saved schedule replaces the lease.
    let at = now + Duration::minutes(15);
    assert_eq!(
        store
            .claim_source("bao-a", at, at + Duration::minutes(5))
            .await
            .unwrap(),
        Some(polled)
    );
}

async fn empty_store(store: &dyn Store) {
    store.ping().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    assert_eq!(store.get("nope").await.unwrap(), None);
    let feed = FeedKey::new("vi", Selector::All);
    assert!(ids(store, &feed, Utc::now(), 0, 10).await.is_empty());
    assert_eq!(
        store.next_publication(&feed, Utc::now()).await.unwrap(),
        None
    );
}

async fn upsert_rules(store: &dyn Store) {
    let v1 = art(
        "c-1",
        "vi",
        "kinh-te",
        "2026-04-12T08:30:00",
        &["giá lúa"],
        "Minh Thư",
    );
    assert_eq!(store.upsert(&v1).await.unwrap(), Upsert::Created);
    assert_eq!(store.upsert(&v1).await.unwrap(), Upsert::Unchanged);
    assert_eq!(
        store.get("c-1").await.unwrap().as_ref(),
        Some(&v1),
        "the article comes back exactly as stored"
    );

    let mut v2 = v1.clone();
    v2.title = "Đính chính".into();
    v2.updated_at = v1.updated_at + Duration::hours(1);
    assert_eq!(
        store.upsert(&v2).await.unwrap(),
        Upsert::Updated {
            previous: Box::new(v1.clone())
        }
    );
    assert_eq!(
        store.upsert(&v1).await.unwrap(),
        Upsert::Stale {
            stored_updated_at: v2.updated_at
        }
    );
    assert_eq!(
        store.get("c-1").await.unwrap().unwrap().title,
        "Đính chính",
        "a stale write changes nothing"
    );
    assert_eq!(
        store.delete("c-1").await.unwrap().map(|a| a.id),
        Some("c-1".to_string())
    );
    assert_eq!(store.delete("c-1").await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 0);
}

async fn feed_pages(store: &dyn Store) {
    let now = t("2026-06-01T00:00:00Z");
    // Two articles at the same instant: ties break by id, descending.
    let mut all = vec![
        art(
            "p-01",
            "vi",
            "kinh-te",
            "2026-05-01T08:00:00",
            &["giá lúa"],
            "Minh Thư",
        ),
        art(
            "p-02",
            "vi",
            "kinh-te",
            "2026-05-02T08:00:00",
            &["Giá Lúa", "Tết"],
            "Hoàng Nam",
        ),
        art(
            "p-03",
            "vi",
            "xa-hoi",
            "2026-05-02T08:00:00",
            &[],
            "Minh Thư",
        ),
        art(
            "p-04",
            "vi",
            "xa-hoi",
            "2026-05-03T08:00:00+09:00",
            &["tết"],
            "",
        ),
        art(
            "p-05",
            "en",
            "kinh-te",
            "2026-05-04T08:00:00",
            &["rice"],
            "Minh Thư",
        ),
        // Scheduled: after `now`.
        art(
            "p-06",
            "vi",
            "kinh-te",
            "2026-07-01T08:00:00",
            &["giá lúa"],
            "Minh Thư",
        ),
        art(
            "p-07",
            "vi",
            "kinh-te",
            "2026-06-15T08:00:00",
            &[],
            "Minh Thư",
        ),
    ];
    let mut draft = art(
        "p-08",
        "vi",
        "kinh-te",
        "2026-05-05T08:00:00",
        &["giá lúa"],
        "Minh Thư",
    );
    draft.status = crate::article::Status::Draft;
    all.push(draft);
    for a in &all {
        assert_eq!(store.upsert(a).await.unwrap(), Upsert::Created);
    }
    let vi = FeedKey::new("vi", Selector::All);
    assert_eq!(
        ids(store, &vi, now, 0, 10).await,
        ["p-04", "p-03", "p-02", "p-01"]
    );
    assert_eq!(ids(store, &vi, now, 0, 2).await, ["p-04", "p-03"]);
    assert_eq!(
        ids(store, &vi, now, 2, 2).await,
        ["p-02", "p-01"],
        "page 2 continues where page 1 ended"
    );
    assert_eq!(
        ids(store, &vi, now, 1, 2).await,
        ["p-03", "p-02"],
        "a page may start inside a tie"
    );
    assert!(ids(store, &vi, now, 4, 2).await.is_empty());
    let cat = FeedKey::new("vi", Selector::Category("kinh-te".into()));
    assert_eq!(ids(store, &cat, now, 0, 10).await, ["p-02", "p-01"]);
    let tag = FeedKey::new("vi", Selector::Tag("gia-lua".into()));
    assert_eq!(ids(store, &tag, now, 0, 10).await, ["p-02", "p-01"]);
    assert_eq!(ids(store, &tag, now, 1, 10).await, ["p-01"]);
    let author = FeedKey::new("vi", Selector::Author("minh-thu".into()));
    assert_eq!(ids(store, &author, now, 0, 10).await, ["p-03", "p-01"]);
    let en = FeedKey::new("en", Selector::All);
    assert_eq!(ids(store, &en, now, 0, 10).await, ["p-05"]);

    // The next scheduled article of each feed, per feed.
    assert_eq!(
        store.next_publication(&cat, now).await.unwrap(),
        Some(all[6].published_at)
    );
    assert_eq!(
        store.next_publication(&tag, now).await.unwrap(),
        Some(all[5].published_at)
    );
    assert_eq!(store.next_publication(&en, now).await.unwrap(), None);
    // Once it is time, the scheduled article is in the feed.
    assert_eq!(ids(store, &cat, all[6].published_at, 0, 1).await, ["p-07"]);

    // Item counts: what the pages hold in all (drafts and scheduled articles are not counted
    // until visible), so a page past the end is known without reading it.
    assert_eq!(store.count_visible(&vi, now).await.unwrap(), 4);
    assert_eq!(store.count_visible(&cat, now).await.unwrap(), 2);
    assert_eq!(store.count_visible(&tag, now).await.unwrap(), 2);
    assert_eq!(store.count_visible(&author, now).await.unwrap(), 2);
    assert_eq!(
        store
            .count_visible(&cat, all[6].published_at)
            .await
            .unwrap(),
        3
    );
    let nobody = FeedKey::new("vi", Selector::Tag("khong-co".into()));
    assert_eq!(store.count_visible(&nobody, now).await.unwrap(), 0);

    let (tags, authors) = store.facets(now, FacetBound::ALL).await.unwrap();
    let tag_list: Vec<_> = tags
        .iter()
        .map(|f| (f.lang.as_str(), f.slug.as_str(), f.count))
        .collect();
    assert_eq!(
        tag_list,
        [("en", "rice", 1), ("vi", "gia-lua", 2), ("vi", "tet", 2)]
    );
    let author_list: Vec<_> = authors
        .iter()
        .map(|f| (f.lang.as_str(), f.name.as_str(), f.count))
        .collect();
    assert_eq!(
        author_list,
        [
            ("en", "Minh Thư", 1),
            ("vi", "Hoàng Nam", 1),
            ("vi", "Minh Thư", 2)
        ]
    );

    // Bounded listings: the least used left out, then only the most used (ties by language
    // and slug), still in the listing's order.
    let slugs = |f: &[Facet]| -> Vec<(String, String)> {
        f.iter().map(|f| (f.lang.clone(), f.slug.clone())).collect()
    };
    let bound = FacetBound {
        min_articles: 2,
        limit: 10,
    };
    let (tags, authors) = store.facets(now, bound).await.unwrap();
    let pair = |l: &str, s: &str| (l.to_string(), s.to_string());
    assert_eq!(slugs(&tags), [pair("vi", "gia-lua"), pair("vi", "tet")]);
    assert_eq!(slugs(&authors), [pair("vi", "minh-thu")]);
    let bound = FacetBound {
        min_articles: 1,
        limit: 2,
    };
    let (tags, authors) = store.facets(now, bound).await.unwrap();
    assert_eq!(slugs(&tags), [pair("vi", "gia-lua"), pair("vi", "tet")]);
    assert_eq!(
        slugs(&authors),
        [pair("en", "minh-thu"), pair("vi", "minh-thu")]
    );

    let many = store
        .get_many(&["p-01".into(), "p-05".into(), "missing".into()])
        .await
        .unwrap();
    let mut got: Vec<_> = many.into_iter().map(|a| a.id).collect();
    got.sort();
    assert_eq!(got, ["p-01", "p-05"]);
    for a in &all {
        store.delete(&a.id).await.unwrap();
    }
}

async fn updates_move_articles_between_feeds(store: &dyn Store) {
    let now = t("2026-06-01T00:00:00Z");
    let a = art(
        "m-1",
        "vi",
        "kinh-te",
        "2026-05-01T08:00:00",
        &["giá lúa"],
        "Minh Thư",
    );
    store.upsert(&a).await.unwrap();
    let mut moved = art(
        "m-1",
        "vi",
        "xa-hoi",
        "2026-05-01T08:00:00",
        &["Tết"],
        "Hoàng Nam",
    );
    moved.updated_at = a.updated_at + Duration::minutes(5);
    store.upsert(&moved).await.unwrap();
    for (sel, expect) in [
        (Selector::Category("kinh-te".into()), 0),
        (Selector::Category("xa-hoi".into()), 1),
        (Selector::Tag("gia-lua".into()), 0),
        (Selector::Tag("tet".into()), 1),
        (Selector::Author("minh-thu".into()), 0),
        (Selector::Author("hoang-nam".into()), 1),
    ] {
        let feed = FeedKey::new("vi", sel);
        assert_eq!(
            ids(store, &feed, now, 0, 10).await.len(),
            expect,
            "{feed:?}"
        );
    }
    // Back to draft: out of every feed, tag feeds included.
    let mut draft = moved.clone();
    draft.status = crate::article::Status::Draft;
    draft.updated_at += Duration::minutes(5);
    store.upsert(&draft).await.unwrap();
    assert!(
        ids(
            store,
            &FeedKey::new("vi", Selector::Tag("tet".into())),
            now,
            0,
            10
        )
        .await
        .is_empty()
    );
    assert!(
        ids(store, &FeedKey::new("vi", Selector::All), now, 0, 10)
            .await
            .is_empty()
    );
    store.delete("m-1").await.unwrap();
}

async fn batch_and_delete(store: &dyn Store) {
    let a = art(
        "b-1",
        "vi",
        "kinh-te",
        "2026-05-01T08:00:00",
        &["giá lúa"],
        "Minh Thư",
    );
    let b = art(
        "b-2",
        "en",
        "kinh-te",
        "2026-05-01T09:00:00",
        &["rice"],
        "Minh Thư",
    );
    let mut a2 = a.clone();
    a2.updated_at += Duration::minutes(1);
    let outcomes = store
        .upsert_batch(&[a.clone(), b.clone(), a.clone(), a2.clone(), a.clone()])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            Upsert::Created,
            Upsert::Created,
            Upsert::Unchanged,
            Upsert::Updated {
                previous: Box::new(a.clone())
            },
            Upsert::Stale {
                stored_updated_at: a2.updated_at
            },
        ]
    );
    assert_eq!(store.count().await.unwrap(), 2);
    let tag = FeedKey::new("vi", Selector::Tag("gia-lua".into()));
    store.delete("b-1").await.unwrap();
    assert!(
        ids(store, &tag, t("2026-06-01T00:00:00Z"), 0, 10)
            .await
            .is_empty(),
        "tag rows go with the article"
    );
    store.delete("b-2").await.unwrap();
}

async fn readership_rows(store: &dyn Store) {
    use super::readership::*;
    use crate::sketch::{self, Sketch};
    let day = |s: &str| parse_day(s).unwrap();
    let secret = store.readership_secret().await.unwrap();
    assert_ne!(secret, [0u8; 16]);
    assert_eq!(
        store.readership_secret().await.unwrap(),
        secret,
        "one secret per database"
    );

    let d1 = day("2026-11-29");
    let d2 = day("2026-11-30");
    let feed = "/vi/rss.xml".to_string();
    let readers = |family: &str, ids: std::ops::Range<u64>| {
        let mut s = Sketch::new(if family.is_empty() {
            sketch::ALL
        } else {
            sketch::FAMILY
        });
        for i in ids {
            s.insert(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()));
        }
        ReaderSketch {
            day: d2,
            feed: feed.clone(),
            family: family.into(),
            sketch: s.to_bytes(),
        }
    };
    let estimate = |rows: &WindowRows, family: &str| {
        rows.sketches
            .iter()
            .find(|s| s.family == family && s.day == d2)
            .map(|s| Sketch::from_bytes(&s.sketch).unwrap().estimate())
    };
    let batch = |polls: u64, subs: u64, at: i64, ids: std::ops::Range<u64>| ReadershipBatch {
        totals: vec![DayTotals {
            day: d2,
            feed: feed.clone(),
            polls,
            not_modified: polls / 2,
            bytes: polls * 1000,
        }],
        sketches: vec![readers("", ids.clone()), readers("Miniflux", ids)],
        claims: vec![Claim {
            day: d2,
            feed: feed.clone(),
            aggregator: "Feedly".into(),
            network: "203.0.113.0/24".into(),
            subscribers: subs,
            first_seen: at,
            last_seen: at,
            verdict: 0,
        }],
        partners: vec![PartnerPolls {
            day: d2,
            feed: feed.clone(),
            partner: "baomoi".into(),
            polls: 1,
        }],
        impolite: vec![Impolite {
            day: d2,
            feed: feed.clone(),
            user_agent: "curl/8.0".into(),
            unconditional: 3,
            too_soon: 2,
        }],
    };
    store
        .add_readership(&batch(10, 131, 1_000, 0..10))
        .await
        .unwrap();
    // A second replica's flush: counts add up, its readers merge with the stored ones (5 of its
    // 10 seen already), and its older sighting of Feedly's claim widens the claim without
    // replacing the later count.
    store
        .add_readership(&batch(4, 120, 900, 5..15))
        .await
        .unwrap();
    store
        .add_readership(&ReadershipBatch::default())
        .await
        .unwrap();
    let early = ReadershipBatch {
        totals: vec![DayTotals {
            day: d1,
            feed: "/en/atom.xml".into(),
            polls: 1,
            not_modified: 0,
            bytes: 5,
        }],
        ..Default::default()
    };
    store.add_readership(&early).await.unwrap();

    let w = store.readership_window(d2, d2, None, 10).await.unwrap();
    assert_eq!(w.feeds, std::slice::from_ref(&feed));
    assert_eq!(w.totals.len(), 1);
    let t = &w.totals[0];
    assert_eq!(
        (t.totals.polls, t.totals.not_modified, t.totals.bytes),
        (14, 7, 14_000)
    );
    assert_eq!(t.closed, None);
    assert_eq!(
        estimate(&w, ALL_READERS),
        Some(15),
        "readers of both flushes, each once"
    );
    assert_eq!(estimate(&w, "Miniflux"), Some(15));
    assert_eq!(w.claims.len(), 1);
    let c = &w.claims[0];
    assert_eq!(
        (c.subscribers, c.first_seen, c.last_seen),
        (131, 900, 1_000)
    );
    assert_eq!(w.partners[0].polls, 2);
    assert_eq!(
        store.readership_impolite(d2, d2, 10).await.unwrap(),
        [ImpoliteSum {
            feed: feed.clone(),
            user_agent: "curl/8.0".into(),
            unconditional: 6,
            too_soon: 4
        }]
    );
    store
        .add_readership(&batch(1, 140, 2_000, 0..1))
        .await
        .unwrap();
    let w = store.readership_window(d2, d2, None, 10).await.unwrap();
    assert_eq!(
        w.claims[0].subscribers, 140,
        "a later sighting replaces the count"
    );

    // Counts saturate in the store; they never wrap or fail the write.
    let huge = ReadershipBatch {
        totals: vec![DayTotals {
            day: d2,
            feed: feed.clone(),
            polls: u64::MAX,
            not_modified: 0,
            bytes: u64::MAX,
        }],
        ..Default::default()
    };
    store.add_readership(&huge).await.unwrap();
    store.add_readership(&huge).await.unwrap();
    let w = store.readership_window(d2, d2, None, 10).await.unwrap();
    assert_eq!(w.totals[0].totals.polls, i64::MAX as u64);

    // Bounds per feed-day: claims from one network, and families.
    let mut flood = ReadershipBatch::default();
    for i in 0..5 {
        flood.claims.push(Claim {
            day: d2,
            feed: feed.clone(),
            aggregator: format!("Fake{i}"),
            network: "198.51.100.0/24".into(),
            subscribers: 1,
            first_seen: 0,
            last_seen: 0,
            verdict: 0,
        });
    }
    for i in 0..12u64 {
        flood
            .sketches
            .push(readers(&format!("F{i}"), (100 * i)..(100 * i + 2)));
    }
    store.add_readership(&flood).await.unwrap();
    let w = store.readership_window(d2, d2, None, 10).await.unwrap();
    assert_eq!(w.claims.len(), 1 + MAX_CLAIMS_PER_NETWORK);
    let families = w
        .sketches
        .iter()
        .filter(|s| s.family != ALL_READERS)
        .count();
    assert_eq!(families, MAX_FAMILIES);
    assert_eq!(
        w.totals[0].overflow,
        Overflow {
            readers_folded: 2 * (12 - (MAX_FAMILIES as u64 - 2)),
            claims_dropped: 5 - MAX_CLAIMS_PER_NETWORK as u64,
        }
    );

    // Pages: days in (day, feed) order after a key; window feeds in feed order after a feed.
    let all = store.readership_days(d1, d2, None, 10).await.unwrap();
    let keys: Vec<(chrono::NaiveDate, &str)> = all
        .iter()
        .map(|t| (t.totals.day, t.totals.feed.as_str()))
        .collect();
    assert_eq!(keys, [(d1, "/en/atom.xml"), (d2, feed.as_str())]);
    let next = store
        .readership_days(d1, d2, Some((d1, "/en/atom.xml".into())), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].totals.day, d2);
    let first = store.readership_window(d1, d2, None, 1).await.unwrap();
    assert_eq!(first.feeds, ["/en/atom.xml"]);
    assert!(first.sketches.is_empty(), "only the page's feeds");
    let second = store
        .readership_window(d1, d2, Some("/en/atom.xml".into()), 1)
        .await
        .unwrap();
    assert_eq!(second.feeds, std::slice::from_ref(&feed));
    assert!(!second.sketches.is_empty());
    let none = store
        .readership_window(d1, d2, Some(feed.clone()), 1)
        .await
        .unwrap();
    assert_eq!(none, WindowRows::default());

    let next = day("2026-12-01");
    assert_eq!(store.open_readership_days(next).await.unwrap(), [d1, d2]);
    assert_eq!(store.open_readership_days(d2).await.unwrap(), [d1]);
    let closed = |subs: u64| ClosedDay {
        day: d2,
        feed: feed.clone(),
        subscribers: subs,
        clients: format!("[{{\"client\":\"Feedly\",\"subscribers\":{subs}}}]"),
    };
    let quiet = ClosedDay {
        day: d2,
        feed: "/vi/kinh-te/rss.xml".into(),
        subscribers: 3,
        clients: "[]".into(),
    };
    store
        .close_readership_days(&[closed(143), quiet])
        .await
        .unwrap();
    store.close_readership_days(&[closed(999)]).await.unwrap();
    let rows = store.readership_days(d2, d2, None, 10).await.unwrap();
    assert_eq!(
        rows.len(),
        2,
        "a feed with subscribers but no polls that day gets a row"
    );
    let vi = rows.iter().find(|t| t.totals.feed == feed).unwrap();
    assert_eq!(
        vi.closed.as_ref().map(|c| c.0),
        Some(143),
        "the first close wins"
    );
    assert_eq!(vi.totals.polls, i64::MAX as u64, "closing keeps the counts");
    let quiet = rows.iter().find(|t| t.totals.feed != feed).unwrap();
    assert_eq!(
        (quiet.totals.polls, quiet.closed.as_ref().map(|c| c.0)),
        (0, Some(3))
    );
    assert_eq!(store.open_readership_days(next).await.unwrap(), [d1]);

    // Sketches and claims go with the window; totals are kept longer.
    store.prune_readership(next, d1).await.unwrap();
    let w = store.readership_window(d1, d2, None, 10).await.unwrap();
    assert!(w.sketches.is_empty() && w.claims.is_empty());
    assert_eq!(w.totals.len(), 3, "totals are kept longer");
    assert_eq!(w.partners.len(), 1);
    store.prune_readership(d2, d2).await.unwrap();
    let w = store.readership_window(d1, d2, None, 10).await.unwrap();
    assert!(w.totals.iter().all(|t| t.totals.day == d2));
    store.prune_readership(next, next).await.unwrap();
    assert_eq!(
        store.readership_window(d1, next, None, 10).await.unwrap(),
        WindowRows::default()
    );
    assert!(
        store
            .readership_impolite(d1, next, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
