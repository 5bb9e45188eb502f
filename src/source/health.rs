//! Whether the gateway still answers at all, told apart from one request left unanswered.
//!
//! A request that gets no answer within the timeout can mean two different things: IB left that
//! one request hanging (a stalled HMDS farm; retrying it later is right) or the gateway answers
//! nothing any more (IB Gateway restarting, or logged out and waiting for a login; every further
//! request would wait its whole timeout too, and a run would last requests × attempts × timeout).
//! [`Health::unanswered`] tells them apart with a probe that any live gateway answers at once
//! (IB's current-time request): answered, the request alone was stalled and is retried as
//! before; unanswered within [`PROBE_MAX`] (or the timeout, when shorter), the gateway is
//! declared silent. From then on every request fails at once with the same error, and
//! [`Health::silenced`] resolves, so a command can end the run right away: a silent gateway
//! ends a run within the timeout plus the probe's few seconds. The state is not final: while
//! silent, one request per timeout probes again, and an answer clears it (a library user's
//! long-lived source recovers when the gateway does).
//!
//! Decision: a probe, not "no answer of any kind during the timeout", because a backfill can
//! legitimately have every request in flight waiting on a slow farm while the gateway is well.

use super::errors::ErrorClass;
use super::SourceError;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The longest wait for the probe's answer (a live gateway answers it in milliseconds).
pub const PROBE_MAX: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct State {
    /// When the gateway last answered anything (a request or a probe).
    answered_at: Option<Instant>,
    /// When the last probe ended (answered or not).
    probed_at: Option<Instant>,
}

/// The gateway's liveness, shared by every request of one connection.
#[derive(Debug)]
pub struct Health {
    gateway: String,
    timeout: Duration,
    state: Mutex<State>,
    /// One probe at a time: requests timing out together share its verdict.
    probing: tokio::sync::Mutex<()>,
    silent: watch::Sender<Option<SourceError>>,
}

impl Health {
    /// The health of the gateway at `gateway`, whose requests wait at most `timeout`.
    pub fn new(gateway: impl Into<String>, timeout: Duration) -> Self {
        Health {
            gateway: gateway.into(),
            timeout,
            state: Mutex::new(State::default()),
            probing: tokio::sync::Mutex::new(()),
            silent: watch::Sender::new(None),
        }
    }

    /// How long a probe waits for its answer.
    pub fn probe_within(&self) -> Duration {
        self.timeout.min(PROBE_MAX)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway answered something.
    pub fn answered(&self) {
        self.state().answered_at = Some(Instant::now());
    }

    /// The error of a silent gateway, while it is declared silent.
    pub fn silent(&self) -> Option<SourceError> {
        self.silent.borrow().clone()
    }

    /// Resolves with the error once the gateway is declared silent (at once if it already is).
    pub fn silenced(&self) -> impl Future<Output = SourceError> + Send + 'static {
        let mut rx = self.silent.subscribe();
        async move {
            let declared = rx.wait_for(Option::is_some).await.ok().and_then(|e| e.clone());
            match declared {
                Some(e) => e,
                // The source is gone: nothing can be declared any more.
                None => std::future::pending().await,
            }
        }
    }

    fn silent_error(&self) -> SourceError {
        SourceError::client(
            ErrorClass::Retry,
            format!(
                "the gateway at {} stopped answering: a request went unanswered for {} s and so did a clock request for {} s; \
                 IB Gateway does this while it restarts or waits for a login: check that it is running and logged in, then run again",
                self.gateway,
                self.timeout.as_secs_f64(),
                self.probe_within().as_secs_f64()
            ),
        )
    }

    fn stalled_error(&self) -> SourceError {
        SourceError::client(
            ErrorClass::Retry,
            format!(
                "the gateway at {} did not answer a request within {} s (it answers others: IB left this one hanging; it is retried)",
                self.gateway,
                self.timeout.as_secs_f64()
            ),
        )
    }

    async fn probe<F, Fut>(&self, probe: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let alive = tokio::time::timeout(self.probe_within(), probe()).await.unwrap_or(false);
        self.state().probed_at = Some(Instant::now());
        if alive {
            self.answered();
            self.silent.send_if_modified(|s| s.take().is_some());
        } else {
            let e = self.silent_error();
            self.silent.send_if_modified(|s| s.replace(e).is_none());
        }
        alive
    }

    /// A heartbeat: probes now (after any probe in progress) and says whether the gateway
    /// answered; the verdict declares or clears the silence as a request's probe does.
    pub async fn heartbeat<F, Fut>(&self, probe: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let _one = self.probing.lock().await;
        self.probe(probe).await
    }

    /// Before sending a request: `Err` at once while the gateway is silent, except that once
    /// per timeout a request probes again (and goes ahead if the gateway answers).
    pub async fn check<F, Fut>(&self, probe: F) -> Result<(), SourceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let Some(e) = self.silent() else { return Ok(()) };
        let Ok(_one) = self.probing.try_lock() else { return Err(e) };
        let due = self.state().probed_at.is_none_or(|t| t.elapsed() >= self.timeout);
        if due && self.probe(probe).await {
            return Ok(());
        }
        Err(self.silent().unwrap_or(e))
    }

    /// A request sent at `sent` went unanswered for the timeout: the error it ends with (the
    /// gateway is probed unless it answered something since `sent`).
    pub async fn unanswered<F, Fut>(&self, sent: Instant, probe: F) -> SourceError
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let _one = self.probing.lock().await;
        if let Some(e) = self.silent() {
            return e;
        }
        if self.state().answered_at.is_some_and(|t| t > sent) {
            return self.stalled_error();
        }
        if self.probe(probe).await {
            self.stalled_error()
        } else {
            self.silent().unwrap_or_else(|| self.silent_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Health {
        Health::new("127.0.0.1:4002", Duration::from_millis(200))
    }

    #[tokio::test]
    async fn an_answered_probe_means_one_stalled_request() {
        let h = health();
        let e = h.unanswered(Instant::now(), || async { true }).await;
        assert_eq!(e.class, ErrorClass::Retry);
        assert!(e.message.contains("did not answer a request"), "{}", e.message);
        assert!(h.silent().is_none());
        // A probe would fail here: none is sent while the gateway is well.
        assert!(h.check(|| async { false }).await.is_ok());
        assert!(h.silent().is_none());
    }

    #[tokio::test]
    async fn an_unanswered_probe_declares_the_gateway_silent_until_it_answers_again() {
        let h = health();
        let silenced = h.silenced();
        let e = h.unanswered(Instant::now(), std::future::pending).await;
        assert_eq!(e.class, ErrorClass::Retry);
        assert!(e.message.contains("127.0.0.1:4002") && e.message.contains("stopped answering"), "{}", e.message);
        let got = tokio::time::timeout(Duration::from_secs(1), silenced).await.expect("silenced resolves");
        assert_eq!(got, e);
        // Within the timeout of the last probe: refused at once, no probe.
        assert_eq!(h.check(|| async { true }).await, Err(e.clone()));
        // A timeout later a request probes again; an answer clears the state.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(h.check(|| async { true }).await, Ok(()));
        assert!(h.silent().is_none());
    }

    #[tokio::test]
    async fn an_answer_since_the_request_was_sent_needs_no_probe() {
        let h = health();
        let sent = Instant::now();
        h.answered();
        // A probe would fail here: none is sent, the gateway answered since.
        let e = h.unanswered(sent, || async { false }).await;
        assert!(e.message.contains("did not answer a request"));
        assert!(h.silent().is_none());
    }
}
