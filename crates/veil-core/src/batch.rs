//! Natural batching of calls to a shared resource (a database, another service).
//!
//! Calls that arrive while the resource is busy with earlier batches wait in a queue and
//! leave together in the next batch, so under load N calls cost one round trip, and a
//! caller on an idle system waits for nothing: a batch is sent as soon as a slot is free,
//! never on a timer. [`Limits`] bound the batches in flight, the calls in a batch and
//! their size.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument as _;

/// One queued call: its input, where its output goes, and the caller's span.
type Job<I, O> = (I, oneshot::Sender<O>, tracing::Span);

/// Callers a batch's span links to at most.
const MAX_LINKS: usize = 32;

/// A handle to a batching task; cheap to clone.
pub struct Batcher<I, O> {
    queue: mpsc::UnboundedSender<Job<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

/// How batches are cut.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// What the batches are, for their tracing span (`batch`, field `of`).
    pub name: &'static str,
    /// Calls in one batch at most.
    pub calls: usize,
    /// Sum of the calls' sizes in one batch at most (a larger call goes alone). It keeps
    /// a batch's statement or request small: sqlx 0.9.0 does not set TCP_NODELAY, and
    /// over TLS a Postgres message longer than one 16 KiB record waits ~40 ms for the
    /// server's delayed ACK (transact-rs/sqlx#4335).
    pub bytes: usize,
    /// Batches running at once.
    pub in_flight: usize,
}

/// A [`Limits::bytes`] for batches that become one Postgres statement: their parameters
/// with the statement's other messages stay inside one 16 KiB TLS record.
pub const STATEMENT_BYTES: usize = 12 * 1024;

impl Limits {
    /// Batches that each become one Postgres statement: up to 64 calls within
    /// [`STATEMENT_BYTES`], `in_flight` statements (pooled connections) at once.
    pub const fn statements(name: &'static str, in_flight: usize) -> Self {
        Self {
            name,
            calls: 64,
            bytes: STATEMENT_BYTES,
            in_flight,
        }
    }
}

/// The batching task is gone (the runtime is shutting down) or dropped this call's
/// output (the batch function returned fewer outputs than inputs).
#[derive(Debug, thiserror::Error)]
#[error("the batch this call joined ended without an answer")]
pub struct BatchLost;

impl From<BatchLost> for crate::error::ServiceError {
    fn from(lost: BatchLost) -> Self {
        Self::Unavailable(lost.to_string())
    }
}

impl<I, O> Batcher<I, O>
where
    I: Send + 'static,
    O: Send + 'static,
{
    /// Starts the batching task. `size` tells a call's size (see [`Limits::bytes`]);
    /// `run` gets a batch's inputs and must return one output per input, in order.
    pub fn spawn<S, F, Fut>(limits: Limits, size: S, run: F) -> Self
    where
        S: Fn(&I) -> usize + Send + 'static,
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job<I, O>>();
        let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
        tokio::spawn(async move {
            // The call that did not fit the last batch opens the next one.
            let mut carried: Option<Job<I, O>> = None;
            loop {
                // A slot first: while every slot is busy the queue fills, and the next
                // batch takes all of it.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let first = match carried.take() {
                    Some(job) => job,
                    None => match jobs.recv().await {
                        Some(job) => job,
                        None => return,
                    },
                };
                let mut bytes = size(&first.0);
                let mut batch = vec![first];
                while batch.len() < limits.calls {
                    let Ok(job) = jobs.try_recv() else {
                        break;
                    };
                    bytes += size(&job.0);
                    if bytes > limits.bytes {
                        carried = Some(job);
                        break;
                    }
                    batch.push(job);
                }
                // The batch runs in a span of its own that follows from each caller's
                // (a link in the trace), so a slow call can be traced to its batch.
                let span = tracing::info_span!("batch", of = limits.name, calls = batch.len());
                let mut inputs = Vec::with_capacity(batch.len());
                let mut replies = Vec::with_capacity(batch.len());
                for (input, reply, caller) in batch {
                    if replies.len() < MAX_LINKS {
                        span.follows_from(&caller);
                    }
                    inputs.push(input);
                    replies.push(reply);
                }
                let work = run(inputs);
                tokio::spawn(
                    async move {
                        let outputs = work.await;
                        for (output, reply) in outputs.into_iter().zip(replies) {
                            // A caller that gave up no longer listens; nothing to do.
                            let _ = reply.send(output);
                        }
                        drop(slot);
                    }
                    .instrument(span),
                );
            }
        });
        Self { queue }
    }

    /// Queues `input` at once (calls join batches in the order they were made) and
    /// returns the wait for its batch's answer.
    pub fn call(&self, input: I) -> impl Future<Output = Result<O, BatchLost>> + use<I, O> {
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.send((input, reply, tracing::Span::current()));
        async move {
            queued.map_err(|_| BatchLost)?;
            answer.await.map_err(|_| BatchLost)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    fn limits(calls: usize, bytes: usize, in_flight: usize) -> Limits {
        Limits {
            name: "test",
            calls,
            bytes,
            in_flight,
        }
    }

    #[tokio::test]
    async fn each_caller_gets_its_own_output() {
        let limits = limits(8, usize::MAX, 2);
        let batcher = Batcher::spawn(
            limits,
            |_| 1,
            |inputs: Vec<u32>| async move { inputs.into_iter().map(|i| i * 10).collect::<Vec<_>>() },
        );
        let calls = (0..50).map(|i| {
            let batcher = batcher.clone();
            tokio::spawn(async move { (i, batcher.call(i).await.unwrap()) })
        });
        for call in calls {
            let (i, out) = call.await.unwrap();
            assert_eq!(out, i * 10);
        }
    }

    #[tokio::test]
    async fn calls_queued_behind_a_busy_slot_leave_together_within_the_limits() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let seen = sizes.clone();
        let limits = limits(100, 25, 1);
        // Each call's size is its value: 1 + 2 + ... + 6 = 21 fits, with 7 it would not.
        let batcher = Batcher::spawn(
            limits,
            |i: &u32| *i as usize,
            move |inputs: Vec<u32>| {
                seen.lock().unwrap().push(inputs.len());
                let mut released = released.clone();
                async move {
                    let _ = released.wait_for(|go| *go).await;
                    inputs
                }
            },
        );
        // The first call takes the only slot and holds it until released.
        let first = tokio::spawn(batcher.call(0));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sizes.lock().unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "first batch never ran"
            );
            tokio::task::yield_now().await;
        }
        // Queued while the slot is busy.
        let rest: Vec<_> = (1..=10).map(|i| batcher.call(i)).collect();
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 0);
        for (i, call) in rest.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), i as u32 + 1);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 6, 3, 1]);
    }

    #[tokio::test]
    async fn a_short_answer_loses_the_calls_it_left_out() {
        let limits = limits(1, 1, 1);
        let batcher = Batcher::spawn(
            limits,
            |_| 1,
            |_inputs: Vec<u32>| async { Vec::<u32>::new() },
        );
        assert!(batcher.call(1).await.is_err());
    }

    /// Records how often a span was said to follow from another.
    #[derive(Clone, Default)]
    struct FollowsFrom(Arc<Mutex<usize>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FollowsFrom {
        fn on_follows_from(
            &self,
            _span: &tracing::span::Id,
            _follows: &tracing::span::Id,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            *self.0.lock().unwrap() += 1;
        }
    }

    #[tokio::test]
    async fn a_batch_span_follows_from_each_callers_span() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let links = FollowsFrom::default();
        let subscriber = tracing_subscriber::registry().with(links.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let limits = limits(10, usize::MAX, 1);
        let batcher = Batcher::spawn(limits, |_| 1, |inputs: Vec<u32>| async move { inputs });
        // Four calls, three of them made inside a span of their own.
        let calls: Vec<_> = (0..4)
            .map(|i| {
                if i == 0 {
                    return batcher.call(i);
                }
                let span = tracing::info_span!("caller", i);
                let _entered = span.enter();
                batcher.call(i)
            })
            .collect();
        for (i, call) in (0..).zip(calls) {
            assert_eq!(call.await.unwrap(), i);
        }
        // Whichever batches they went in, each caller's span is followed once.
        assert_eq!(*links.0.lock().unwrap(), 3);
    }
}
