//! The hyper service for a connection the fast path handed over (an API request, a page, an
//! HTTP/1.0 or unusual request): cached feed hits are still answered synchronously, the rest by
//! the axum router. Below both the fast loop and the server, which use it and nothing of each
//! other's.

use std::rc::Rc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Version, header};

use super::edge::{Conn, Phase, Tracked};
use super::state::{BAD_HOST, Peer, State};
use super::{feeds, response};

/// What one worker serves with: its state and router, cloned into each connection.
#[derive(Clone)]
pub struct Worker {
    pub state: State,
    pub router: Router,
}

/// hyper's service for one handed-over connection: cached feed hits are answered synchronously
/// from the worker's own references (no task, no allocation beyond the response); everything
/// else goes through the axum router. It marks the connection busy from a request's head to the
/// end of its response body, which is what the edge's deadlines and shedding go by.
pub struct ConnService {
    pub worker: Worker,
    pub conn: Rc<Conn>,
    /// The connection's peer, for readership counting.
    pub peer: Option<std::net::IpAddr>,
}

type Answer = Result<axum::http::Response<Tracked<axum::body::Body>>, std::convert::Infallible>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for ConnService {
    type Response = axum::http::Response<Tracked<axum::body::Body>>;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        std::future::Ready<Answer>,
        futures::future::LocalBoxFuture<'static, Answer>,
    >;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.conn.set_phase(Phase::Busy);
        let conn = self.conn.clone();
        let track = move |mut r: axum::response::Response| {
            // axum's router sets `Content-Length` from the (empty) body of every answer, a 304's
            // too, where it would claim the feed is empty (RFC 9110 §8.6): the fast path sends
            // none, and neither does this one.
            if r.status() == StatusCode::NOT_MODIFIED {
                r.headers_mut().remove(header::CONTENT_LENGTH);
            }
            r.map(|b| Tracked::new(b, conn))
        };
        let state = &self.worker.state;
        if req.version() == Version::HTTP_11
            && req.headers().get_all(header::HOST).iter().count() != 1
        {
            let mut r = response::text_response(StatusCode::BAD_REQUEST, BAD_HOST.into());
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return futures::future::Either::Left(std::future::ready(Ok(track(r))));
        }
        if let Some(resp) = feeds::hot(state, req.method(), req.uri(), req.headers(), self.peer) {
            return futures::future::Either::Left(std::future::ready(Ok(track(resp))));
        }
        if let Some(ip) = self.peer {
            req.extensions_mut().insert(Peer(ip));
        }
        let router = self.worker.router.clone();
        futures::future::Either::Right(Box::pin(async move {
            use tower::ServiceExt;
            let resp = router.oneshot(req).await?;
            Ok(track(resp))
        }))
    }
}
