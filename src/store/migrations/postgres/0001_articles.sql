-- Articles: the normalised article whole in `doc` (JSON text), beside the columns feed queries
-- use. Times are Unix seconds (UTC instants) as in the SQLite schema, so both backends order and
-- compare identically. Text that is sorted uses the "C" collation: byte order, as SQLite's
-- BINARY, so ties break the same way on every backend and every replica renders the same bytes.
CREATE TABLE articles (
    id           TEXT COLLATE "C" PRIMARY KEY,
    lang         TEXT COLLATE "C" NOT NULL,
    category     TEXT COLLATE "C" NOT NULL,
    author_slug  TEXT COLLATE "C" NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('published', 'draft')),
    published_at BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    doc          TEXT NOT NULL
);

-- One partial index per feed kind, in feed order: a feed page is a range scan.
CREATE INDEX articles_lang_feed     ON articles (lang, published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX articles_category_feed ON articles (lang, category, published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX articles_author_feed   ON articles (lang, author_slug, published_at DESC, id DESC) WHERE status = 'published';

-- Tag feeds: one row per (published article, tag) with the feed-order columns copied.
CREATE TABLE article_tags (
    article_id   TEXT COLLATE "C" NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    lang         TEXT COLLATE "C" NOT NULL,
    tag_slug     TEXT COLLATE "C" NOT NULL,
    tag          TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (article_id, tag_slug)
);
CREATE INDEX article_tags_feed ON article_tags (lang, tag_slug, published_at DESC, article_id DESC);
