//! Small HTML pages for people: the index of every feed (with autodiscovery links, so pasting
//! the service's address into a reader finds the feeds) and a preview of one feed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::app::App;
use crate::config::Config;
use crate::feed::{self, FeedKey, Format, configured_feeds};
use crate::text::escape_xml as esc;

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn head(title: &str, lang: &str, alternates: &[(FeedKey, String)], config: &Config) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\n",
        esc(lang),
        esc(title)
    );
    for (key, name) in alternates {
        for f in Format::ALL {
            s.push_str(&format!(
                "<link rel=\"alternate\" type=\"{}\" title=\"{}\" href=\"{}\">\n",
                f.mime(),
                esc(name),
                esc(&key.url(config, f, 1))
            ));
        }
    }
    s.push_str("<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}li{margin:.3em 0}</style></head><body>\n");
    s
}

fn feed_links(key: &FeedKey, config: &Config) -> String {
    Format::ALL
        .iter()
        .map(|f| {
            format!(
                "<a href=\"{}\">{}</a>",
                esc(&key.path(config, *f)),
                f.file_name()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `/`: every configured feed, per language.
pub async fn home(app: &App) -> Response {
    let config = &app.config;
    let first = &config.languages[0];
    let feeds = configured_feeds(config);
    let names: Vec<(FeedKey, String)> = feeds
        .iter()
        .map(|k| {
            let lang = config
                .language(&k.lang)
                .map(|l| l.site_name.clone())
                .unwrap_or_default();
            let name = match &k.selector {
                feed::Selector::Category(id) => config
                    .category(id)
                    .map(|c| format!("{lang} – {}", c.name(&k.lang)))
                    .unwrap_or(lang),
                _ => lang,
            };
            (k.clone(), name)
        })
        .collect();
    let langs: Vec<(FeedKey, String)> = names
        .iter()
        .filter(|(k, _)| k.selector == feed::Selector::All)
        .cloned()
        .collect();
    let mut s = head(&first.site_name, &first.code, &langs, config);
    s.push_str(&format!("<h1>{}</h1>\n<p><a href=\"/feeds.opml\">feeds.opml</a>: every feed, for your reader.</p>\n", esc(&first.site_name)));
    for l in &config.languages {
        s.push_str(&format!(
            "<h2 lang=\"{}\">{}</h2>\n<ul>\n",
            esc(&l.code),
            esc(&l.site_name)
        ));
        for (k, name) in names.iter().filter(|(k, _)| k.lang == l.code) {
            s.push_str(&format!(
                "<li><a href=\"{}\">{}</a> — {}</li>\n",
                esc(&k.dir(config)),
                esc(name),
                feed_links(k, config)
            ));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</body></html>\n");
    html(StatusCode::OK, s)
}

/// `/vi/kinh-te/`: the newest articles of one feed, with autodiscovery of its three formats.
pub async fn preview(app: &App, key: FeedKey, page: u32) -> Response {
    let config = &app.config;
    let loaded = match feed::load(&*app.store, config, &key, page, Utc::now()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return super::feeds::text_response(
                StatusCode::NOT_FOUND,
                "No such page of this feed.".into(),
            );
        }
        Err(e) => return super::feeds::store_failure(e),
    };
    let title = loaded.title(config);
    let mut s = head(&title, &key.lang, &[(key.clone(), title.clone())], config);
    s.push_str(&format!(
        "<h1>{}</h1>\n<p>{}</p>\n<ol>\n",
        esc(&title),
        feed_links(&key, config)
    ));
    for a in &loaded.items {
        let local = a
            .published_at
            .with_timezone(&config.zone.0)
            .format("%d/%m/%Y - %H:%M");
        s.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>{}</small><br>{}</li>\n",
            esc(&a.url),
            esc(&a.title),
            local,
            esc(&a.summary)
        ));
    }
    s.push_str("</ol>\n");
    if loaded.has_next {
        s.push_str(&format!("<p><a href=\"?page={}\">→</a></p>\n", page + 1));
    }
    s.push_str("</body></html>\n");
    html(StatusCode::OK, s)
}
