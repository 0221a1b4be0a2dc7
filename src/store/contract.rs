//! The contract every [`Store`] implementation passes: the same assertions, run by each backend's
//! own test (`sqlite_passes_the_store_contract`, `postgres_passes_the_store_contract`).

use chrono::{DateTime, Duration, Utc};

use super::{PageQuery, Store, Upsert};
use crate::article::tests::config;
use crate::article::{Article, ArticleInput};
use crate::feed::{FeedKey, Selector};

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

    let (tags, authors) = store.facets(now).await.unwrap();
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
