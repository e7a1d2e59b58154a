//! Random operation sequences on `Queue` and `SpscQueue`, checked against a `VecDeque`.

use std::collections::VecDeque;

use proptest::collection::vec;
use proptest::prelude::*;
use shm_queue::{Queue, SpscQueue, TryGetError, TryPutError};

const CAPACITY: usize = 4;
const MAX: usize = 24;

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>),
    Get,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => vec(any::<u8>(), 0..40).prop_map(Op::Put),
        10 => Just(Op::Get),
        1 => Just(Op::Close),
    ]
}

/// The postcard size of a `Vec<u8>` shorter than 128 bytes: a one-byte length, the bytes.
fn encoded(v: &[u8]) -> usize {
    1 + v.len()
}

/// What a put should do given the model; returns `true` when it must succeed.
fn check_put(
    result: Result<(), TryPutError<Vec<u8>>>,
    v: &[u8],
    model: &VecDeque<Vec<u8>>,
    closed: bool,
) -> bool {
    match result {
        Ok(()) => {
            assert!(
                !closed && encoded(v) <= MAX && model.len() < CAPACITY,
                "put succeeded: {model:?}"
            );
            true
        }
        Err(TryPutError::TooLarge { value, size, max }) => {
            assert_eq!((value.as_slice(), size, max), (v, encoded(v), MAX));
            false
        }
        Err(TryPutError::Closed(value)) => {
            assert!(closed && encoded(v) <= MAX);
            assert_eq!(value, v);
            false
        }
        Err(TryPutError::Full(value)) => {
            assert!(!closed && encoded(v) <= MAX && model.len() == CAPACITY);
            assert_eq!(value, v);
            false
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn check_get(result: Result<Vec<u8>, TryGetError>, model: &mut VecDeque<Vec<u8>>, closed: bool) {
    match result {
        Ok(v) => assert_eq!(Some(v), model.pop_front()),
        Err(TryGetError::Empty) => assert!(model.is_empty() && !closed),
        Err(TryGetError::Closed) => assert!(model.is_empty() && closed),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn queue_behaves_like_a_vecdeque(ops in vec(op(), 1..120)) {
        let q = Queue::<Vec<u8>>::builder().capacity(CAPACITY).max_message_size(MAX).create_anonymous().unwrap();
        let mut model = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Put(v) => {
                    if check_put(q.try_put(v.clone()), &v, &model, closed) {
                        model.push_back(v);
                    }
                }
                Op::Get => check_get(q.try_get(), &mut model, closed),
                Op::Close => {
                    q.close();
                    closed = true;
                }
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.is_empty(), model.is_empty());
            prop_assert_eq!(q.is_full(), model.len() == CAPACITY);
            prop_assert_eq!(q.is_closed(), closed);
        }
    }

    #[test]
    fn spsc_behaves_like_a_vecdeque(ops in vec(op(), 1..120)) {
        // A ring of 256 bytes holds four 32-byte records plus any wrap waste, so only the
        // message count can make it full, as in the model.
        let q = SpscQueue::<Vec<u8>>::builder().capacity(CAPACITY).max_message_size(MAX).create_anonymous().unwrap();
        assert_eq!(q.buffer_size(), 256);
        let (mut tx, mut rx) = q.split().unwrap();
        let mut model = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Put(v) => {
                    if check_put(tx.try_put(v.clone()), &v, &model, closed) {
                        model.push_back(v);
                    }
                }
                Op::Get => check_get(rx.try_get(), &mut model, closed),
                Op::Close => {
                    q.close();
                    closed = true;
                }
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(rx.is_empty(), model.is_empty());
            prop_assert_eq!(tx.is_full(), model.len() == CAPACITY);
        }
    }
}
