//! `Pipe` across processes: duplex ping-pong, `recv` after the peer closed or was
//! SIGKILLed (an error after draining, never a hang), `send` to a dead peer, `poll` and
//! `recv_timeout` time-outs, ends moved through serde, and named pipes.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{Connection, Pipe, RecvError, RecvTimeoutError, SendError};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, iterations, signal_parent, test_name, unique_name,
    wait_parent_line,
};

const NAME_ENV: &str = "SHM_QUEUE_TEST_NAME";

#[test]
fn duplex_ping_pong_across_processes() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let rounds = iterations(10_000) as u64;
    // A small ring, so that both directions wrap many times.
    let (mut here, there) = Pipe::builder()
        .duplex(true)
        .max_message_size(64)
        .buffer_size(256)
        .create_anonymous()
        .unwrap();
    let mut child = child_builder(&test_name!(), "echo")
        .env(QUEUE_ENV, share(&there))
        .spawn(|| {
            let mut conn: Connection = from_env(QUEUE_ENV);
            loop {
                match conn.recv::<(u64, String)>() {
                    Ok((n, text)) => conn.send(&(n + 1, format!("{text}!"))).unwrap(),
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            // The parent's bytes after its last value came before its close.
        });
    // Sending the end moved it: this process's copy is inert.
    let mut there = there;
    assert_eq!(there.send(&1_u8), Err(SendError::Moved));
    assert_eq!(there.recv::<u8>(), Err(RecvError::Moved));
    for n in 0..rounds {
        here.send(&(n, n.to_string())).unwrap();
        assert_eq!(here.recv(), Ok((n + 1, format!("{n}!"))));
    }
    // Bytes and values are the same records.
    here.send_bytes(&postcard_pair(7, "x")).unwrap();
    assert_eq!(here.recv_bytes(), Ok(postcard_pair(8, "x!")));
    here.close();
    child.wait_success(WAIT);
    assert_eq!(here.recv::<u8>(), Err(RecvError::Closed));
}

/// The postcard encoding of `(n, text)` for small `n` and short `text`.
fn postcard_pair(n: u8, text: &str) -> Vec<u8> {
    let mut bytes = vec![n, text.len() as u8];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

#[test]
fn recv_after_peer_close_returns_the_rest_then_closed() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let (mut rx, tx) = Pipe::new().unwrap();
    let (back_rx, back_tx) = Pipe::new().unwrap();
    let mut child = child_builder(&test_name!(), "sender")
        .env(QUEUE_ENV, share(&(&tx, &back_rx)))
        .spawn(|| {
            let (mut tx, mut back_rx): (Connection, Connection) = from_env(QUEUE_ENV);
            for word in ["a", "b", "c"] {
                tx.send(&word).unwrap();
            }
            tx.close();
            assert_eq!(tx.send(&"d"), Err(SendError::Closed));
            // Closing the receiving end makes the peer's sends fail.
            back_rx.close();
            signal_parent("closed");
        });
    child.wait_line("closed", WAIT).unwrap();
    for word in ["a", "b", "c"] {
        assert_eq!(rx.recv::<String>().as_deref(), Ok(word));
    }
    assert_eq!(rx.recv::<String>(), Err(RecvError::Closed));
    assert_eq!(rx.recv_bytes(), Err(RecvError::Closed));
    assert!(rx.poll(Duration::ZERO), "a closed end polls readable");
    assert_eq!(rx.send(&1_u8), Err(SendError::ReadOnly));
    let mut back_tx = back_tx;
    assert_eq!(back_tx.send(&1_u8), Err(SendError::Closed));
    assert_eq!(back_tx.recv::<u8>(), Err(RecvError::WriteOnly));
    child.wait_success(WAIT);
    drop((tx, back_rx));
}

#[test]
fn recv_after_peer_sigkill_is_an_error_not_a_hang() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let (mut here, there) = Pipe::builder()
        .duplex(true)
        .max_message_size(64)
        .buffer_size(512)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .env(QUEUE_ENV, share(&there))
        .spawn(|| {
            let mut conn: Connection = from_env(QUEUE_ENV);
            conn.send(&"one").unwrap();
            conn.send(&"two").unwrap();
            signal_parent("sent");
            // Hold the end, never closing it, until killed.
            let _ = wait_parent_line();
            unreachable!("the parent never writes");
        });
    victim.wait_line("sent", WAIT).unwrap();
    assert_eq!(here.recv::<String>().as_deref(), Ok("one"));
    // A receiver that is (most likely) asleep in `recv` when the peer is killed.
    let receiver = std::thread::spawn(move || {
        let second = here.recv::<String>();
        let after = here.recv::<String>();
        (here, second, after)
    });
    victim.kill();
    assert_eq!(victim.wait_timeout(WAIT).unwrap().signal(), Some(9));
    let (mut here, second, after) = receiver.join().unwrap();
    // What the peer sent before dying is delivered, then the death is an error.
    assert_eq!(second.as_deref(), Ok("two"));
    assert_eq!(after, Err(RecvError::PeerDied));
    assert_eq!(here.recv::<String>(), Err(RecvError::PeerDied));
    assert!(here.poll(Duration::ZERO));
    // A sender that fills the dead peer's direction stops waiting too.
    let error = loop {
        if let Err(e) = here.send_bytes(&[0; 64]) {
            break e;
        }
    };
    assert_eq!(error, SendError::PeerDied);
}

#[test]
fn poll_and_recv_timeout_wait_their_time() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let (mut rx, tx) = Pipe::new().unwrap();
    let mut child = child_builder(&test_name!(), "late-sender")
        .env(QUEUE_ENV, share(&tx))
        .spawn(|| {
            let mut tx: Connection = from_env(QUEUE_ENV);
            assert_eq!(wait_parent_line(), "send");
            tx.send(&99_u32).unwrap();
            assert_eq!(wait_parent_line(), "exit");
        });
    for ms in [0, 1, 10] {
        let timeout = Duration::from_millis(ms);
        let start = Instant::now();
        assert!(!rx.poll(timeout));
        assert!(start.elapsed() >= timeout, "poll returned early");
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout::<u32>(timeout),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= timeout, "recv_timeout returned early");
    }
    child.send_line("send").unwrap();
    assert!(rx.poll(WAIT));
    // `poll` took nothing.
    assert!(rx.poll(Duration::ZERO));
    assert_eq!(rx.recv_timeout::<u32>(WAIT), Ok(99));
    assert!(!rx.poll(Duration::ZERO));
    child.send_line("exit").unwrap();
    child.wait_success(WAIT);
    drop(tx);
}

#[test]
fn named_pipe_end_opened_by_another_process() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let name = unique_name("pipe-named");
    let leaks = ShmLeakCheck::new(&name);
    {
        // Made after the child is spawned: a child re-runs the test from the top and exits
        // without running destructors.
        let mut child = child_builder(&test_name!(), "opener")
            .env(NAME_ENV, &name)
            .spawn(|| {
                assert_eq!(wait_parent_line(), "go");
                let name = std::env::var(NAME_ENV).unwrap();
                assert!(Connection::open(&name, 2).is_err());
                let mut tx = Connection::open(&name, 1).unwrap();
                tx.send(&"by name").unwrap();
                // Dropping an end that was not sent closes it.
            });
        let (mut rx, tx) = Pipe::builder().create(&name).unwrap();
        child.send_line("go").unwrap();
        assert_eq!(rx.recv::<String>().as_deref(), Ok("by name"));
        assert_eq!(rx.recv::<String>(), Err(RecvError::Closed));
        child.wait_success(WAIT);
        // The child took the end over: the creator's copy is inert.
        let mut tx = tx;
        assert_eq!(tx.send(&1_u8), Err(SendError::Moved));
    }
    leaks.finish();
}
