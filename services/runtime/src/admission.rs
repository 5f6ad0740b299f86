//! Admission control: a bound on the requests one process works on at once,
//! and the caller's time budget. A request beyond the bound is answered at
//! once with 503 `overloaded` and `Retry-After` (never queued, so no caller
//! waits longer than it would for an answer); a request whose caller's
//! budget is already spent is answered at once without doing its work. The
//! budget arrives in [`DEADLINE_HEADER`], is kept for the request's task
//! (see [`deadline`] and [`scope`]), and [`crate::upstream::Upstream`] sends
//! what is left of it with every call to another service. The probes
//! (`/health`, `/ready`, `/metrics`) are never refused.

use std::sync::Arc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::IntCounterVec;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::{Code, Problem};

/// The caller's remaining time budget, in whole milliseconds, when it sent
/// the request: relative, so that clocks of caller and callee need not agree.
pub static DEADLINE_HEADER: HeaderName = HeaderName::from_static("x-deadline-ms");

/// `Retry-After` of a shed request, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Paths that are always admitted: the probes must answer under any load.
const PROBES: [&str; 3] = ["/health", "/ready", "/metrics"];

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The instant the current request's caller stops waiting, if it said.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Runs `work` with `deadline` as the current request's deadline: how a
/// task spawned for a request keeps its caller's budget.
pub async fn scope<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, work).await,
        None => work.await,
    }
}

/// The budget left of the current request for a call bounded by `timeout`:
/// the smaller of the two.
pub fn budget(timeout: Duration) -> Duration {
    match deadline() {
        Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
        None => timeout,
    }
}

/// The deadline a request's [`DEADLINE_HEADER`] names, if it has a valid one.
pub fn requested_deadline(headers: &HeaderMap, now: Instant) -> Option<Instant> {
    let ms: u64 = headers.get(&DEADLINE_HEADER)?.to_str().ok()?.parse().ok()?;
    now.checked_add(Duration::from_millis(ms))
}

/// The bound on requests in flight in this process (`MAX_IN_FLIGHT`).
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    /// Admits at most `limit` requests at once.
    pub fn new(limit: usize) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A permit for one request, or `None` when `limit` are in flight.
    fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

/// `admission_refused_total{service,reason}`: requests answered without
/// their work, `overloaded` or `deadline_passed`.
static REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        prometheus::Opts::new(
            "admission_refused_total",
            "Requests answered at once without doing their work.",
        ),
        &["service", "reason"],
    )
    .expect("valid counter definition");
    crate::metrics::http()
        .registry()
        .register(Box::new(counter.clone()))
        .expect("first registration");
    counter
});

fn refused(service: &str, reason: &str) {
    REFUSED.with_label_values(&[service, reason]).inc();
}

/// Sets the bound of an [`crate::server::app`] router: the layer that
/// [`admit`]s requests finds it in the request extensions (without one,
/// every request is admitted, deadlines still apply).
pub fn with_admission(app: axum::Router, admission: Admission) -> axum::Router {
    app.layer(axum::Extension(admission))
}

/// The middleware: see the module documentation.
pub async fn admit(State(service): State<&'static str>, req: Request, next: Next) -> Response {
    if PROBES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let deadline = requested_deadline(req.headers(), Instant::now());
    if deadline.is_some_and(|d| d <= Instant::now()) {
        refused(service, "deadline_passed");
        return Problem::timeout("the caller's time budget was spent before this request started")
            .into_response();
    }
    let admission = req.extensions().get::<Admission>().cloned();
    let _permit = match &admission {
        Some(admission) => match admission.try_admit() {
            Some(permit) => Some(permit),
            None => {
                refused(service, "overloaded");
                return overloaded(admission.limit);
            }
        },
        None => None,
    };
    scope(deadline, next.run(req)).await
}

/// 503 `overloaded` with `Retry-After`.
fn overloaded(limit: usize) -> Response {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Overloaded,
        format!("{limit} requests are already in progress here; try again shortly"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}
