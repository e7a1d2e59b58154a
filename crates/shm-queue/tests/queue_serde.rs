//! Queue handles travel through serde: to a child process (anonymous and named queues, and
//! SPSC queues) and through another queue.

mod common;

use common::{WAIT, WATCHDOG};
use shm_queue::{Queue, SpscQueue};
use test_support::{ShmLeakCheck, Watchdog, run_child, test_name, unique_name, wait_parent_line};

#[test]
fn handles_reach_a_child_through_serde() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let name = unique_name("queue-serde");
    let check = ShmLeakCheck::new(&name);
    let mut child = run_child(&test_name!(), "echo", || {
        // One line of JSON with three handles: an anonymous request queue (reopened
        // through the parent's descriptor), a named reply queue and an SPSC queue.
        let line = wait_parent_line();
        let (requests, replies, spsc): (Queue<String>, Queue<String>, SpscQueue<u64>) =
            serde_json::from_str(&line).unwrap();
        assert!(requests.name().is_none() && replies.name().is_some());
        let mut tx = spsc.producer().unwrap();
        while let Ok(request) = requests.get() {
            replies.put(format!("{request}!")).unwrap();
            tx.put(request.len() as u64).unwrap();
        }
    });
    {
        let requests = Queue::<String>::new().unwrap();
        let replies = Queue::<String>::builder().create(&name).unwrap();
        let spsc = SpscQueue::<u64>::new().unwrap();
        let line = serde_json::to_string(&(&requests, &replies, &spsc)).unwrap();
        child.send_line(&line).unwrap();
        let mut rx = spsc.consumer().unwrap();
        for word in ["a", "bb", "ccc"] {
            requests.put(word.to_string()).unwrap();
            assert_eq!(replies.get().unwrap(), format!("{word}!"));
            assert_eq!(rx.get(), Ok(word.len() as u64));
        }
        requests.close();
        child.wait_success(WAIT);
        drop(replies);
        check.finish();
    }
}

#[test]
fn a_queue_handle_travels_through_a_queue() {
    let inner = Queue::<u32>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    let outer = Queue::<Queue<u32>>::builder()
        .capacity(1)
        .max_message_size(128)
        .create_anonymous()
        .unwrap();
    outer.put(inner.clone()).unwrap();
    let received = outer.get().unwrap();
    received.put(41).unwrap();
    assert_eq!(inner.get(), Ok(41));
    assert_eq!(received.capacity(), 2);
    // Opening checks the element type.
    let wrong: Result<Queue<String>, _> =
        serde_json::from_str(&serde_json::to_string(&inner).unwrap());
    assert!(wrong.is_err());
}
