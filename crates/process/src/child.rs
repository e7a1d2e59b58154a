//! The parent's record of one child: its pid, a pidfd to sleep on, and its exit status
//! once reaped. Reaping happens under a lock, so `join` in one thread and
//! `active_children` in another never both `waitpid` the same child.

use std::os::fd::OwnedFd;
use std::time::Instant;

use parking_lot::Mutex;

use crate::sys::{self, Exit};

#[derive(Debug)]
pub(crate) struct ChildState {
    pub pid: u32,
    pub name: String,
    pub daemon: bool,
    pidfd: Option<OwnedFd>,
    exit: Mutex<Option<Exit>>,
}

impl ChildState {
    pub fn new(pid: u32, name: String, daemon: bool) -> Self {
        // Without a pidfd (old kernels), waiting polls instead.
        let pidfd = sys::pidfd(pid).ok();
        ChildState {
            pid,
            name,
            daemon,
            pidfd,
            exit: Mutex::new(None),
        }
    }

    /// The exit status if the child has ended (reaping it if needed).
    pub fn try_reap(&self) -> Option<Exit> {
        let mut exit = self.exit.lock();
        if exit.is_none() {
            // Only this record reaps this pid, under this lock; if someone else did
            // (ECHILD), `try_wait` says `Lost`, never "still running".
            *exit = sys::try_wait(self.pid).ok().flatten();
        }
        *exit
    }

    /// Waits for the child to end, until `deadline` (`None`: forever).
    pub fn wait(&self, deadline: Option<Instant>) -> Option<Exit> {
        loop {
            if let Some(exit) = self.try_reap() {
                return Some(exit);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            sys::wait_exit(self.pidfd.as_ref(), deadline);
        }
    }

    /// Sends `signal` unless the child was already reaped (its pid could then belong to
    /// another process). A zombie keeps its pid until reaped, so this is race-free.
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        let exit = self.exit.lock();
        if exit.is_some() {
            return Ok(());
        }
        match sys::kill(self.pid, signal) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        }
    }
}
