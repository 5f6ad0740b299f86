//! Background tasks that run beside a service's server, such as estoque's
//! sweeper and pedidos' reconciler: each is handed the same stop signal and
//! awaited, for a bounded time, before the process exits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The tasks a service runs beside its server.
pub struct Tasks {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            stop: watch::Sender::new(false),
            running: Vec::new(),
        }
    }
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the future `task` builds from the stop signal. The task should
    /// return soon after [`Stop`] completes; work it drops at that point must
    /// be safe to drop (a rolled-back transaction, a lease that lapses).
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        // Dropping `Tasks` without calling `stop` stops the tasks as well.
        let signal = Stop(Box::pin(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
        self.running.push((name, tokio::spawn(task(signal))));
    }

    /// Signals every task to stop and waits until all have returned, at most
    /// `wait` in all; a task still running then is aborted.
    pub async fn stop(self, wait: Duration) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + wait;
        for (name, mut task) in self.running {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(task = name, error = %err, "background task failed")
                }
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        ?wait,
                        "background task did not stop in time, aborting it"
                    );
                    task.abort();
                }
            }
        }
    }
}

/// Runs `pass` now and then every `period` until `stop` completes. A pass
/// that overruns delays the next one instead of causing a burst; a pass in
/// progress when `stop` completes is dropped, so it must leave nothing that
/// the next pass (on this replica or another) cannot pick up.
pub async fn every<F, Fut>(period: Duration, stop: impl Future<Output = ()>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Stopping wins over a tick or a pass that is ready at the same time.
        tokio::select! {
            biased;
            () = &mut stop => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = pass() => {}
        }
    }
}

/// Completes when the task it was handed to should stop.
pub struct Stop(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_task_sees_the_signal_and_finishes_before_stop_returns() {
        let finished = Arc::new(AtomicBool::new(false));
        let mut tasks = Tasks::new();
        let flag = finished.clone();
        tasks.spawn("waiter", |stop| async move {
            stop.await;
            flag.store(true, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        assert!(!finished.load(Ordering::SeqCst), "no signal yet");
        tasks.stop(Duration::from_secs(5)).await;
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn every_runs_passes_until_stopped_and_starts_none_after() {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stop_tx = Some(stop_tx);
        let passes = std::cell::Cell::new(0);
        let stop = async {
            let _ = stop_rx.await;
        };
        every(Duration::from_millis(5), stop, || {
            passes.set(passes.get() + 1);
            if passes.get() == 3 {
                stop_tx.take().unwrap().send(()).unwrap();
            }
            async {}
        })
        .await;
        assert_eq!(passes.get(), 3);
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_is_aborted_after_the_wait() {
        let mut tasks = Tasks::new();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("stuck", |_stop| async move {
            let _guard = dropped_tx;
            std::future::pending::<()>().await;
        });
        let start = tokio::time::Instant::now();
        tasks.stop(Duration::from_millis(100)).await;
        assert!(start.elapsed() >= Duration::from_millis(100));
        // Aborting drops the task's future, and with it the sender.
        assert!(dropped_rx.await.is_err(), "the stuck task was aborted");
    }
}
