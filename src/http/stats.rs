//! Readership for the newsroom: `GET /api/v1/stats?days=N` (JSON) and `/stats` (an HTML page
//! with an inline SVG chart, no script), both behind the API token. The page also takes the token
//! as the password of HTTP Basic, so an editor can open it in a browser's password prompt.
//!
//! Handlers only check the token, read `days`, and format what
//! [`crate::readership::Readership::stats`] computes. Every list in an answer is bounded (the top
//! feeds of each day, the top clients of each feed, the top claims, each with a count of what was
//! left out), so a year of figures is a few megabytes at most, whatever the traffic was.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{ApiToken, Endpoint, Figures, Guard};
use super::error::HttpError;
use crate::app::App;
use crate::readership::Stats;
use crate::readership::figures::DayFigures;
use crate::text::escape_xml as esc;

/// The readership figures' routes: the JSON and the newsroom's page.
pub fn router() -> axum::Router<super::state::State> {
    use axum::routing::get;
    axum::Router::new()
        .route(crate::routes::STATS_PAGE, get(page))
        .route(crate::routes::API_STATS, get(api))
}

/// Days shown when `days` is not given: a week by API, a month on the page.
const API_DAYS: u32 = 7;
const PAGE_DAYS: u32 = 30;
/// Most days one request may ask for.
const MAX_DAYS: u32 = 366;

/// `days=N` from the query: 1..=366, or the default.
fn days_param(query: Option<&str>, default: u32) -> Result<u32, HttpError> {
    let Some(q) = query else { return Ok(default) };
    match url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "days") {
        None => Ok(default),
        Some((_, v)) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_DAYS).contains(&n) => Ok(n),
            _ => Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "bad_days",
                format!("`days={v}` must be a whole number of days from 1 to {MAX_DAYS}"),
            )
            .with_field("days")),
        },
    }
}

/// `GET /api/v1/stats?days=N`.
pub async fn api(
    State(state): State<super::state::State>,
    _token: ApiToken<Figures>,
    uri: axum::http::Uri,
) -> Response {
    let app = &state.app;
    let result = async {
        let days = days_param(uri.query(), API_DAYS)?;
        let s = app.stats(days).await?;
        Ok::<_, HttpError>(
            Json(json!({
                "days": s.days,
                "clients": s.clients,
                "claims": s.claims,
                "claims_left_out": s.claims_left_out,
                "impolite": s.impolite,
                "limits": {
                    "feeds_per_day": crate::readership::figures::TOP_FEEDS,
                    "clients_per_feed": crate::readership::figures::TOP_CLIENTS,
                    "claims": crate::readership::figures::TOP_CLAIMS,
                    "max_claim": crate::readership::claims::MAX_CLAIM,
                    "confirm_after_seconds": crate::readership::claims::CONFIRM_AFTER,
                },
            }))
            .into_response(),
        )
    }
    .await;
    super::response::private_no_store(
        result.unwrap_or_else(|e| super::auth::challenge(e.into_response())),
    )
}

/// `GET /stats?days=N`: the page for the newsroom.
pub async fn page(
    State(state): State<super::state::State>,
    _token: ApiToken<Page>,
    uri: axum::http::Uri,
) -> Response {
    let app = &state.app;
    let result = async {
        let days = days_param(uri.query(), PAGE_DAYS)?;
        let s = app.stats(days).await?;
        Ok::<_, HttpError>(render(app, &s))
    }
    .await;
    let r = match result {
        Ok(html) => {
            let mut r = (StatusCode::OK, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => return Page::refused(e),
    };
    super::response::private_no_store(r)
}

/// The `/stats` page: its refusals are text for a person, with the browser's password prompt.
pub enum Page {}
impl Guard for Page {
    const ENDPOINT: Endpoint = Endpoint::Stats;
    fn refused(e: HttpError) -> Response {
        let status = e.status;
        let retry = e.retry_after;
        let mut r = super::response::text_response(status, e.message);
        r.headers_mut().remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        super::response::private_no_store(super::auth::challenge(r))
    }
}

/// A byte count for people: `1.2 MB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Subscribers per day (all feeds together) as an SVG line chart with a labelled point per day.
fn chart(days: &[DayFigures]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const PAD: f64 = 40.0;
    let totals: Vec<(String, u64)> = days
        .iter()
        .map(|d| (d.date.format("%Y-%m-%d").to_string(), d.subscribers))
        .collect();
    let max = totals.iter().map(|t| t.1).max().unwrap_or(0).max(1);
    let n = totals.len().max(2) - 1;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / n as f64;
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max as f64;
    let mut s = format!(
        "<svg id=\"subscribers-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Subscribers per day\">\n"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{PAD}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/><line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{0}\" stroke=\"#999\"/>",
        H - PAD,
        W - PAD
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{max}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">0</text>",
        PAD - 4.0,
        PAD + 4.0,
        PAD - 4.0,
        H - PAD + 4.0
    );
    let points: Vec<String> = totals
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    for (i, (date, v)) in totals.iter().enumerate() {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#c0392b\" data-date=\"{date}\" data-subscribers=\"{v}\"><title>{date}: {v} subscribers</title></circle>",
            x(i),
            y(*v)
        );
    }
    if let (Some(first), Some(last)) = (totals.first(), totals.last()) {
        let _ = writeln!(
            s,
            "<text x=\"{PAD}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            H - PAD + 16.0,
            first.0,
            W - PAD,
            H - PAD + 16.0,
            last.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A Unix time in the site zone, for people.
fn local_time(app: &App, secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| {
            t.with_timezone(&app.config().zone.0)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn render(app: &App, stats: &Stats) -> String {
    let days = &stats.days;
    let site = &app.config().languages[0].site_name;
    let latest = days.last();
    let today_subs: u64 = latest.map_or(0, |d| d.subscribers);
    let sum = |f: fn(&DayFigures) -> u64| days.iter().fold(0u64, |s, d| s.saturating_add(f(d)));
    let polls = sum(|d| d.polls);
    let not_modified = sum(|d| d.not_modified);
    let bytes = sum(|d| d.bytes);
    let from = days.first().map(|d| d.date.to_string()).unwrap_or_default();
    let to = latest.map(|d| d.date.to_string()).unwrap_or_default();

    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Readership – {}</title>\n<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}td,th{{padding:.2em .6em;text-align:left}}td.n,th.n{{text-align:right}}tr:nth-child(even){{background:#f4f4f4}}</style></head><body>\n",
        esc(site)
    );
    let _ = writeln!(
        s,
        "<h1>Readership – {}</h1>\n<p>{from} to {to}. Subscribers follow the FeedPress rules: the aggregators' reported counts (as far as they are believed, see the claims below), plus partners, plus distinct readers (address and User-Agent, estimated with a sketch: exact to 128 readers, then within about 2%) over 7 days, plus the built-in hub's verified push subscriptions (kind <code>push</code>, one client per callback host, counted as they stand when the day is figured); browsers and bots are polls, never subscribers.</p>",
        esc(site)
    );
    let _ = writeln!(
        s,
        "<p><strong id=\"subscribers-today\">{today_subs}</strong> subscribers on {to} · <strong id=\"polls\">{polls}</strong> polls · <strong id=\"not-modified-share\">{}</strong> answered 304 Not Modified · {} sent</p>",
        percent(not_modified, polls),
        human_bytes(bytes)
    );
    s.push_str("<h2>Subscribers per day</h2>\n");
    s.push_str(&chart(days));

    if let Some(l) = latest {
        let _ = writeln!(
            s,
            "<h2>Top feeds on {to}</h2>\n<table id=\"top-feeds\"><tr><th>feed</th><th class=\"n\">subscribers</th><th class=\"n\">polls</th><th class=\"n\">304</th><th class=\"n\">sent</th></tr>"
        );
        for f in &l.feeds {
            let _ = writeln!(
                s,
                "<tr><td><a href=\"{0}\">{0}</a></td><td class=\"n\">{1}</td><td class=\"n\">{2}</td><td class=\"n\">{3}</td><td class=\"n\">{4}</td></tr>",
                esc(&f.feed),
                f.subscribers,
                f.polls,
                percent(f.not_modified, f.polls),
                human_bytes(f.bytes)
            );
        }
        s.push_str("</table>\n");
        if l.feeds_left_out > 0 {
            let _ = writeln!(
                s,
                "<p id=\"feeds-left-out\">{} more feeds not listed ({} feeds in all).</p>",
                l.feeds_left_out, l.feed_count
            );
        }

        let _ = writeln!(
            s,
            "<h2>Subscribers by client on {to}</h2>\n<table id=\"clients\"><tr><th>client</th><th>kind</th><th class=\"n\">subscribers</th></tr>"
        );
        for c in stats.clients.iter().take(25) {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&c.client),
                esc(&c.kind),
                c.subscribers
            );
        }
        s.push_str("</table>\n");
    }

    let _ = writeln!(
        s,
        "<h2>Subscriber claims</h2>\n<p>What aggregators say in their User-Agents over the 7 days ending {to}, by client network (/24 or /48; addresses are not kept). A claim counts once seen on polls at least an hour apart, capped at {} subscribers; one network backs one aggregator per feed; an aggregator polling from several networks counts once, with its largest claim; an aggregator that documents how to verify its fetchers counts only verified ones.</p>",
        crate::readership::claims::MAX_CLAIM
    );
    if stats.claims.is_empty() {
        s.push_str("<p id=\"claims\">None.</p>\n");
    } else {
        s.push_str("<table id=\"claims\"><tr><th>aggregator</th><th>feed</th><th>network</th><th class=\"n\">subscribers</th><th>first seen</th><th>last seen</th><th>verification</th><th>counted</th></tr>\n");
        for c in &stats.claims {
            let counted = if c.counted {
                "yes"
            } else if !c.confirmed {
                "no (seen once, or within an hour)"
            } else {
                "no"
            };
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{counted}</td></tr>",
                esc(&c.aggregator),
                esc(&c.feed),
                esc(&c.network),
                c.subscribers,
                local_time(app, c.first_seen),
                local_time(app, c.last_seen),
                c.verification,
            );
        }
        s.push_str("</table>\n");
        if stats.claims_left_out > 0 {
            let _ = writeln!(
                s,
                "<p>{} smaller claims not listed.</p>",
                stats.claims_left_out
            );
        }
    }

    let impolite = &stats.impolite;
    let _ = writeln!(
        s,
        "<h2>Impolite pollers</h2>\n<p>Clients fetching a feed without <code>If-None-Match</code> or <code>If-Modified-Since</code> again before its max-age ({} s) had passed: what feed-reader scoring services check, seen from the server.</p>",
        app.config().cache.max_age
    );
    if impolite.is_empty() {
        s.push_str("<p id=\"impolite\">None.</p>\n");
    } else {
        s.push_str("<table id=\"impolite\"><tr><th>User-Agent</th><th>feed</th><th class=\"n\">unconditional</th><th class=\"n\">too soon</th></tr>\n");
        for i in impolite {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&i.user_agent),
                esc(&i.feed),
                i.unconditional,
                i.too_soon
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parameter() {
        assert_eq!(days_param(None, 7).unwrap(), 7);
        assert_eq!(days_param(Some("days=30"), 7).unwrap(), 30);
        assert_eq!(days_param(Some("x=1"), 7).unwrap(), 7);
        for bad in ["days=0", "days=367", "days=-1", "days=week"] {
            let e = days_param(Some(bad), 7).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.field.as_deref(), Some("days"));
        }
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_200_000), "1.2 MB");
        assert_eq!(percent(1, 4), "25%");
        assert_eq!(percent(0, 0), "–");
    }
}
