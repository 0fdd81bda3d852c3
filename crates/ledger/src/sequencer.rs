//! The sequencer: one task that owns every write moving money or spending a limited stock.
//!
//! Callers [`Sequencer::submit`] commands onto a bounded queue; the task takes whatever is waiting
//! (up to a batch limit) and hands the batch to an [`Applier`], which applies it in one
//! transaction with one commit and answers each command itself (commands carry their own reply
//! channel). A full queue refuses at once with [`Full`], which the server answers as
//! `503 Retry-After`: memory never grows without bound, and a caller never waits on a queue it
//! cannot see the end of.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Applies batches of commands. Implementations must answer every command of a batch.
pub trait Applier: Send + 'static {
    type Command: Send + 'static;

    fn apply(&mut self, batch: Vec<Self::Command>) -> impl Future<Output = ()> + Send;

    /// Runs once after the last batch when the sequencer stops (see [`Sequencer::stop`]): for
    /// work that must end before the process does, such as making the last batches durable.
    fn close(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// The queue was full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sequencer's queue is full")]
pub struct Full;

/// The task has stopped (the server is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sequencer has stopped")]
pub struct Stopped;

/// A handle to the sequencer task; cheap to clone.
pub struct Sequencer<C> {
    queue: mpsc::Sender<C>,
    /// Set by [`Sequencer::stop`].
    stop: Arc<watch::Sender<bool>>,
    /// Set by the task once it has applied its last batch and closed its applier.
    done: watch::Receiver<bool>,
}

impl<C> Clone for Sequencer<C> {
    fn clone(&self) -> Self {
        Sequencer {
            queue: self.queue.clone(),
            stop: self.stop.clone(),
            done: self.done.clone(),
        }
    }
}

/// The task's end of the stop and done signals.
struct Control {
    stop: watch::Receiver<bool>,
    done: watch::Sender<bool>,
}

fn control() -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>, Control) {
    let (stop_tx, stop) = watch::channel(false);
    let (done, done_rx) = watch::channel(false);
    (Arc::new(stop_tx), done_rx, Control { stop, done })
}

impl<C: Send + 'static> Sequencer<C> {
    /// Starts the task with a queue of `capacity` commands and batches of at most `max_batch`.
    /// The task ends when every handle is dropped and the queue has drained.
    pub fn spawn<A>(applier: A, capacity: usize, max_batch: usize) -> Sequencer<C>
    where
        A: Applier<Command = C>,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, done, control) = control();
        tokio::spawn(run(applier, rx, max_batch.max(1), control));
        Sequencer {
            queue: tx,
            stop,
            done,
        }
    }

    /// Like [`Sequencer::spawn`], but the task runs on a thread of its own (named `name`) with a
    /// single-threaded runtime. A batch waits many times for short answers (one per query); on
    /// the server's shared runtime each wake-up queues behind whatever requests are running,
    /// and those waits, not the work, then set the batch's length. Here it resumes at once.
    pub fn spawn_dedicated<A>(
        applier: A,
        capacity: usize,
        max_batch: usize,
        name: &str,
    ) -> std::io::Result<Sequencer<C>>
    where
        A: Applier<Command = C>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, done, control) = control();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || runtime.block_on(run(applier, rx, max_batch.max(1), control)))?;
        Ok(Sequencer {
            queue: tx,
            stop,
            done,
        })
    }

    /// Stops taking commands (later ones are refused with [`SubmitError::Stopped`]), applies
    /// those already queued, closes the applier, and returns once all of that is done (or the
    /// task is gone). For a clean shutdown: every command accepted is answered.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Enqueues a command, refusing at once when the queue is full.
    pub fn submit(&self, command: C) -> Result<(), SubmitError<C>> {
        self.queue.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(c) => SubmitError::Full(c),
            mpsc::error::TrySendError::Closed(c) => SubmitError::Stopped(c),
        })
    }

    /// Commands waiting right now.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Why a command was not enqueued; the command is handed back.
#[derive(Debug)]
pub enum SubmitError<C> {
    Full(C),
    Stopped(C),
}

async fn run<A: Applier>(
    mut applier: A,
    mut rx: mpsc::Receiver<A::Command>,
    max_batch: usize,
    mut control: Control,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut stopping = false;
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, max_batch) => n,
            // Told to stop (or every handle is gone): refuse what comes next, then apply what
            // was accepted; the queue answers 0 once it is empty.
            _ = control.stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                rx.close();
                continue;
            }
        };
        if n == 0 {
            break;
        }
        applier.apply(std::mem::take(&mut batch)).await;
        batch.reserve(max_batch);
    }
    applier.close().await;
    control.done.send_replace(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    struct Summer {
        total: u64,
        batches: Vec<usize>,
        report: Option<oneshot::Sender<Vec<usize>>>,
    }

    impl Applier for Summer {
        type Command = (u64, oneshot::Sender<u64>);

        async fn apply(&mut self, batch: Vec<Self::Command>) {
            self.batches.push(batch.len());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            for (n, reply) in batch {
                self.total += n;
                let _ = reply.send(self.total);
            }
            if self.total == 5050
                && let Some(r) = self.report.take()
            {
                let _ = r.send(self.batches.clone());
            }
        }
    }

    /// Submits 1..=n at once and checks each answer is a larger running total; returns the last.
    async fn running_totals(seq: &Sequencer<(u64, oneshot::Sender<u64>)>, n: u64) -> u64 {
        let mut replies = Vec::new();
        for k in 1..=n {
            let (tx, rx) = oneshot::channel();
            seq.submit((k, tx)).unwrap();
            replies.push(rx);
        }
        let mut last = 0;
        for r in replies {
            let v = r.await.unwrap();
            assert!(v > last);
            last = v;
        }
        last
    }

    #[tokio::test]
    async fn commands_are_batched_and_each_answered_once() {
        let (report_tx, report_rx) = oneshot::channel();
        let seq = Sequencer::spawn(
            Summer {
                total: 0,
                batches: vec![],
                report: Some(report_tx),
            },
            1000,
            64,
        );
        assert_eq!(running_totals(&seq, 100).await, 5050);
        let batches = report_rx.await.unwrap();
        assert!(batches.iter().all(|&b| b <= 64));
        assert!(batches.len() < 100, "commands were batched: {batches:?}");
    }

    #[tokio::test]
    async fn a_dedicated_thread_answers_like_a_task() {
        let seq = Sequencer::spawn_dedicated(
            Summer {
                total: 0,
                batches: vec![],
                report: None,
            },
            100,
            8,
            "summer",
        )
        .unwrap();
        assert_eq!(running_totals(&seq, 20).await, 210);
        drop(seq);
    }

    #[tokio::test]
    async fn stopping_answers_every_command_accepted_and_refuses_later_ones() {
        struct Closing(Summer, oneshot::Sender<u64>);
        impl Applier for Closing {
            type Command = (u64, oneshot::Sender<u64>);
            async fn apply(&mut self, batch: Vec<Self::Command>) {
                self.0.apply(batch).await;
            }
            async fn close(self) {
                let _ = self.1.send(self.0.total);
            }
        }
        let (closed_tx, closed_rx) = oneshot::channel();
        let summer = Summer {
            total: 0,
            batches: vec![],
            report: None,
        };
        let seq =
            Sequencer::spawn_dedicated(Closing(summer, closed_tx), 100, 4, "stopping").unwrap();
        let mut replies = Vec::new();
        for k in 1..=20u64 {
            let (tx, rx) = oneshot::channel();
            seq.submit((k, tx)).unwrap();
            replies.push(rx);
        }
        let other = seq.clone();
        seq.stop().await;
        // Everything accepted was applied before the applier closed, and answered.
        assert_eq!(closed_rx.await.unwrap(), 210);
        for r in replies {
            r.await.unwrap();
        }
        let (tx, _rx) = oneshot::channel();
        assert!(matches!(
            other.submit((1, tx)),
            Err(SubmitError::Stopped(_))
        ));
        // Stopping again returns at once.
        other.stop().await;
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let seq = Sequencer::spawn(
            Summer {
                total: 0,
                batches: vec![],
                report: None,
            },
            2,
            1,
        );
        let mut refused = 0;
        let mut keep = Vec::new();
        for n in 0..50u64 {
            let (tx, rx) = oneshot::channel();
            match seq.submit((n, tx)) {
                Ok(()) => keep.push(rx),
                Err(SubmitError::Full(_)) => refused += 1,
                Err(SubmitError::Stopped(_)) => panic!("stopped"),
            }
        }
        assert!(refused > 0);
        for r in keep {
            r.await.unwrap();
        }
    }
}
