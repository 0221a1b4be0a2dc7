-- Articles: the normalised article whole in `doc` (JSON), beside the columns feed queries use.
-- Times are Unix seconds (UTC instants); zones are applied only when rendering.
CREATE TABLE articles (
    id           TEXT PRIMARY KEY,
    lang         TEXT NOT NULL,
    category     TEXT NOT NULL,
    author_slug  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('published', 'draft')),
    published_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
-- (A rowid table: rows carry a whole article, kilobytes each, which a WITHOUT ROWID b-tree
-- stores half-empty. The tag table below has small rows, where WITHOUT ROWID saves space.)

-- One index per feed kind, holding only published rows, in feed order: a feed page is a range
-- scan of the first `limit` entries at or before `now`, whatever the corpus size.
CREATE INDEX articles_lang_feed     ON articles (lang, published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX articles_category_feed ON articles (lang, category, published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX articles_author_feed   ON articles (lang, author_slug, published_at DESC, id DESC) WHERE status = 'published';

-- Tag feeds: one row per (published article, tag), with the article's feed-order columns copied
-- so the tag feed is a keyset scan of this table alone.
CREATE TABLE article_tags (
    article_id   TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    lang         TEXT NOT NULL,
    tag_slug     TEXT NOT NULL,
    tag          TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (article_id, tag_slug)
) WITHOUT ROWID;
CREATE INDEX article_tags_feed ON article_tags (lang, tag_slug, published_at DESC, article_id DESC);
