//! The pool's handler thread: collects results, supervises workers, dispatches tasks, and
//! shuts the workers down after `close` or `terminate`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shm_queue::{GetTimeoutError, TryGetError};

use super::worker::{Done, status_word};
use super::{PoolError, Shared, State};

/// How long the handler sleeps on the result queue between supervision rounds: the bound
/// on how late a dead worker is noticed.
const ROUND: Duration = Duration::from_millis(20);

/// After this many workers in a row die before taking any task, the pool stops replacing
/// them: something kills every new worker (typically a failing initializer), and going on
/// would only leave every call waiting.
const EARLY_DEATH_LIMIT: u32 = 3;

/// How long a worker slot stays empty after its worker could not be started.
const RESPAWN_PAUSE: Duration = Duration::from_secs(1);

/// Starts a worker in slot `index`, or remembers when that failed.
fn respawn(shared: &Shared, state: &mut State, index: usize) {
    match shared.spawn_worker(index as u32) {
        Ok(worker) => {
            state.workers[index] = Some(worker);
            state.spawn_failed_at = None;
        }
        Err(e) => {
            state.start_error = Some(e.to_string());
            state.spawn_failed_at = Some(std::time::Instant::now());
        }
    }
}

pub(crate) fn run(shared: &Arc<Shared>) {
    loop {
        match shared.results.get_timeout(ROUND) {
            Ok(done) => complete(&mut shared.lock(), done),
            Err(GetTimeoutError::Timeout | GetTimeoutError::Closed) => {}
            // A damaged record was dropped by the queue; its task is failed when its worker
            // is found dead or the pool ends, never waited for silently.
            Err(GetTimeoutError::Decode(e)) => {
                eprintln!("multiproc pool: dropped a damaged result: {e}")
            }
        }
        let mut state = shared.lock();
        take_results(shared, &mut state);
        supervise(shared, &mut state);
        state.dispatch();
        let stop = shut_down_if_done(&mut state);
        drop(state);
        shared.changed.notify_all();
        if stop {
            return;
        }
    }
}

/// Completes every result that can be taken now. Whether the queue is empty afterwards
/// is another matter: a result published behind a slot that a live worker is still
/// writing is taken only once that worker publishes.
fn take_results(shared: &Shared, state: &mut State) {
    loop {
        match shared.results.try_get() {
            Ok(done) => complete(state, done),
            Err(TryGetError::Decode(e)) => {
                eprintln!("multiproc pool: dropped a damaged result: {e}")
            }
            Err(TryGetError::Empty | TryGetError::Closed) => return,
        }
    }
}

fn complete(state: &mut State, done: Done) {
    if let Some(Some(worker)) = state.workers.get_mut(done.worker as usize) {
        worker.assigned.retain(|&id| id != done.id);
        worker.took_task = true;
    }
    state.early_deaths = 0;
    state.finish(done.id, done.outcome.into());
}

/// Finds workers that ended; fails the task each was running, re-queues the ones it had not
/// started, and starts a replacement (unless the pool is winding down).
fn supervise(shared: &Shared, state: &mut State) {
    if state.terminated {
        // The workers were killed on purpose; their tasks fail as `Terminated`.
        return;
    }
    for index in 0..state.workers.len() {
        let Some(worker) = &state.workers[index] else {
            // A slot whose worker could not be started: try again after a pause.
            let pause_over = state
                .spawn_failed_at
                .is_none_or(|at| at.elapsed() >= RESPAWN_PAUSE);
            if pause_over && state.broken.is_none() && !(state.closed && state.tasks.is_empty()) {
                respawn(shared, state, index);
            }
            continue;
        };
        if worker.process.is_alive() {
            continue;
        }
        // Results it sent before ending are in the queue already: take them first. One
        // may sit behind a slot that a live worker claimed and is still writing, where no
        // get reaches it yet; judging now would run its task again (or fail a task that
        // finished). Everything it sent lies below the put position read now that it is
        // gone, so the verdict waits for a round in which gets have passed that mark
        // (slots claimed by dead workers do not hold it up: gets skip them). Other
        // workers' results arriving meanwhile do not delay it.
        let mark = shared.results.positions().put;
        take_results(shared, state);
        let Some(worker) = state.workers[index].as_mut() else {
            continue;
        };
        let mark = *worker.results_mark.get_or_insert(mark);
        if shared.results.positions().get < mark {
            continue;
        }
        let Some(mut worker) = state.workers[index].take() else {
            continue;
        };
        let pid = worker.process.pid().unwrap_or(0);
        let how = match worker.process.exitcode() {
            Some(code) if code < 0 => format!("killed by signal {}", -code),
            Some(code) => format!("exited with code {code}"),
            None => "ended".to_owned(),
        };
        let _ = worker.process.join();
        // [running] Acquire: pairs with the worker's Release store of the task it runs.
        let running = status_word(&shared.status, index as u32)
            .load(Ordering::Acquire)
            .checked_sub(1);
        if worker.took_task || running.is_some() {
            state.early_deaths = 0;
        } else {
            state.early_deaths += 1;
        }
        for id in worker.assigned.drain(..).rev() {
            if Some(id) == running {
                let died = PoolError::WorkerDied {
                    pid,
                    how: how.clone(),
                };
                state.finish(id, Err(died));
            } else if let Some(entry) = state.tasks.get(&id) {
                state.pending.push_front(entry.task.clone());
            }
        }
        if state.early_deaths >= EARLY_DEATH_LIMIT && state.broken.is_none() {
            state.broken = Some(format!(
                "{} workers in a row died before taking a task (the last one {how}); is the \
                 initializer failing?",
                state.early_deaths
            ));
        }
        let winding_down = state.terminated || (state.closed && state.tasks.is_empty());
        if !winding_down && state.broken.is_none() {
            respawn(shared, state, index);
        }
    }
    if let Some(reason) = state.broken.clone() {
        let ids: Vec<u64> = state.tasks.keys().copied().collect();
        for id in ids {
            state.finish(
                id,
                Err(PoolError::Broken {
                    reason: reason.clone(),
                }),
            );
        }
        state.pending.clear();
        return;
    }
    // Without any worker left, nothing would ever finish the remaining tasks.
    if state.workers.iter().all(Option::is_none) && !state.tasks.is_empty() {
        let why = state
            .start_error
            .clone()
            .unwrap_or_else(|| "no worker left".to_owned());
        let ids: Vec<u64> = state.tasks.keys().copied().collect();
        for id in ids {
            state.finish(id, Err(PoolError::Start(why.clone())));
        }
        state.pending.clear();
    }
}

/// After `terminate`, or after `close` once every task finished: stops and reaps the
/// workers. Returns whether the handler is done.
fn shut_down_if_done(state: &mut State) -> bool {
    if state.terminated {
        let ids: Vec<u64> = state.tasks.keys().copied().collect();
        for id in ids {
            state.finish(id, Err(PoolError::Terminated));
        }
        state.pending.clear();
        for worker in state.workers.iter_mut().flatten() {
            let _ = worker.process.kill();
        }
    } else if state.closed && state.tasks.is_empty() {
        // Closing a worker's queue ends its loop once the queue is empty.
        for worker in state.workers.iter().flatten() {
            worker.tasks.close();
        }
    } else {
        return false;
    }
    let all_gone = state
        .workers
        .iter()
        .flatten()
        .all(|w| !w.process.is_alive());
    if all_gone {
        for worker in state.workers.iter_mut().flatten() {
            let _ = worker.process.join();
        }
        state.finished = true;
    }
    all_gone
}
