//! Running jobs on worker threads and handing their results back in the order the jobs came
//! (`mtasts report parse --jobs N`): a reorder buffer holds the results that finished before an
//! earlier one, and no more than `2 × workers` jobs are ever submitted and not yet handed back, so
//! memory is bounded by the number of workers, never by the number of jobs.
//!
//! Workers are plain threads sharing one job queue; they are not joined. When the consumer stops
//! early (a closed standard output) the queue and the result channel are dropped, each worker ends
//! after its current job, and the process does not wait for it.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

/// A job's result, or the panic that ended it (a bug: it is resumed on the consumer's thread, in
/// order, so that it crashes the command as it would have without threads).
type Done<R> = thread::Result<R>;

/// Runs `work` on every item of `jobs` on at most `workers` threads (none when `workers` is 1: then
/// everything runs on the calling thread, one job after the other), and calls `sink` with each
/// result in the order of `jobs`. `jobs` is pulled on the calling thread only as results are handed
/// back, so a lazy iterator is expanded as it goes.
///
/// # Errors
///
/// The first error `sink` returns; nothing is handed back after it.
pub(super) fn run_ordered<J, R, E>(
    jobs: impl IntoIterator<Item = J>,
    workers: usize,
    work: impl Fn(J) -> R + Send + Sync + 'static,
    mut sink: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    J: Send + 'static,
    R: Send + 'static,
{
    if workers <= 1 {
        for job in jobs {
            sink(work(job))?;
        }
        return Ok(());
    }
    let mut pool = Pool::new(workers, work);
    let mut jobs = jobs.into_iter();
    let in_flight = 2 * workers;
    loop {
        while pool.pending() < in_flight {
            let Some(job) = jobs.next() else { break };
            pool.submit(job);
        }
        let Some(done) = pool.next() else {
            return Ok(());
        };
        match done {
            Ok(result) => sink(result)?,
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

/// The worker threads, their shared queue and the reorder buffer.
struct Pool<J, R, F> {
    work: Arc<F>,
    max_workers: usize,
    workers: usize,
    queue_tx: Sender<(usize, J)>,
    queue_rx: Arc<Mutex<Receiver<(usize, J)>>>,
    results_tx: Sender<(usize, Done<R>)>,
    results_rx: Receiver<(usize, Done<R>)>,
    /// The sequence number of the next job submitted.
    submitted: usize,
    /// The sequence number of the next result handed back; `buffer[i]` is that of `next + i`.
    next: usize,
    buffer: VecDeque<Option<Done<R>>>,
}

impl<J, R, F> Pool<J, R, F>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(J) -> R + Send + Sync + 'static,
{
    fn new(max_workers: usize, work: F) -> Self {
        let (queue_tx, queue_rx) = mpsc::channel();
        let (results_tx, results_rx) = mpsc::channel();
        Pool {
            work: Arc::new(work),
            max_workers,
            workers: 0,
            queue_tx,
            queue_rx: Arc::new(Mutex::new(queue_rx)),
            results_tx,
            results_rx,
            submitted: 0,
            next: 0,
            buffer: VecDeque::new(),
        }
    }

    /// Jobs submitted and not handed back yet.
    fn pending(&self) -> usize {
        self.submitted - self.next
    }

    /// Queues `job`, starting one more worker while there are fewer than the maximum (a single
    /// input starts one thread, not one per core).
    fn submit(&mut self, job: J) {
        if self.workers < self.max_workers && self.workers < self.pending() + 1 {
            self.spawn();
        }
        // The workers hold the receiving side until the pool is dropped.
        let _ = self.queue_tx.send((self.submitted, job));
        self.submitted += 1;
        self.buffer.push_back(None);
    }

    fn spawn(&mut self) {
        let queue = Arc::clone(&self.queue_rx);
        let results = self.results_tx.clone();
        let work = Arc::clone(&self.work);
        self.workers += 1;
        thread::spawn(move || {
            loop {
                // A poisoned lock means another worker panicked while taking a job, which it
                // cannot (`recv` does not panic); the queue is still sound.
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((seq, job)) = next else { return };
                let done = panic::catch_unwind(AssertUnwindSafe(|| work(job)));
                if results.send((seq, done)).is_err() {
                    return;
                }
            }
        });
    }

    /// The next result in submission order, waiting for it; `None` when every submitted job was
    /// handed back.
    fn next(&mut self) -> Option<Done<R>> {
        if self.pending() == 0 {
            return None;
        }
        while self.buffer.front().is_some_and(Option::is_none) {
            // The pool holds a sender itself, so this only fails if every worker is gone, which
            // none is while jobs are pending (a panic is caught and sent back).
            let (seq, done) = self.results_rx.recv().ok()?;
            if let Some(slot) = self.buffer.get_mut(seq - self.next) {
                *slot = Some(done);
            }
        }
        self.next += 1;
        self.buffer.pop_front().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Jobs that finish in reverse order of submission come back in submission order.
    #[test]
    fn results_come_back_in_job_order() {
        for workers in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            let result: Result<(), ()> = run_ordered(
                0..40u64,
                workers,
                |n| {
                    thread::sleep(Duration::from_millis((40 - n) % 7));
                    n * 10
                },
                |r| {
                    seen.push(r);
                    Ok(())
                },
            );
            assert_eq!(result, Ok(()));
            assert_eq!(
                seen,
                (0..40).map(|n| n * 10).collect::<Vec<_>>(),
                "{workers}"
            );
        }
    }

    /// The iterator is never more than `2 × workers` jobs ahead of what was handed back.
    #[test]
    fn at_most_twice_the_workers_are_in_flight() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let jobs = (0..100usize).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let mut handed = 0;
        let mut most = 0;
        let result: Result<(), ()> = run_ordered(
            jobs,
            3,
            |n| n,
            |_| {
                handed += 1;
                most = most.max(pulled.load(Ordering::SeqCst) - handed);
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(handed, 100);
        assert!(most < 6, "{most} jobs ahead");
    }

    /// An error from the sink stops the run: nothing is handed back after it.
    #[test]
    fn the_first_sink_error_stops_everything() {
        let mut seen = 0;
        let result = run_ordered(
            0..1000,
            4,
            |n| n,
            |n| {
                seen += 1;
                if n == 5 { Err(n) } else { Ok(()) }
            },
        );
        assert_eq!(result, Err(5));
        assert_eq!(seen, 6);
    }

    /// A panic inside a job reaches the caller's thread, at the job's place.
    #[test]
    fn a_panicking_job_panics_the_caller_in_order() {
        let mut seen = Vec::new();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            let _: Result<(), ()> = run_ordered(
                0..20,
                2,
                |n| {
                    assert_ne!(n, 7, "job seven");
                    n
                },
                |n| {
                    seen.push(n);
                    Ok(())
                },
            );
        }));
        assert!(caught.is_err());
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn no_jobs_is_no_results() {
        let result: Result<(), ()> = run_ordered(Vec::<u8>::new(), 4, |n| n, |_| Err(()));
        assert_eq!(result, Ok(()));
    }
}
