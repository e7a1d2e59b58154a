//! Errors per operation: `TooLarge`, `Full`, `Empty`, time-outs (never early), values that
//! fail to encode or decode, panicking serialisers, and opening with the wrong type or kind.

use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_queue::{
    CreateError, GetTimeoutError, OpenError, PutError, PutTimeoutError, Queue, SpscQueue,
    TryGetError, TryPutError,
};
use test_support::{ShmLeakCheck, unique_name};

#[test]
fn too_large_full_and_empty() {
    let q = Queue::<Vec<u8>>::builder()
        .capacity(2)
        .max_message_size(10)
        .create_anonymous()
        .unwrap();
    // A 9-byte vector encodes to 10 bytes (length prefix): the largest that fits.
    q.try_put(vec![1; 9]).unwrap();
    match q.try_put(vec![2; 10]) {
        Err(TryPutError::TooLarge { value, size, max }) => {
            assert_eq!((value, size, max), (vec![2; 10], 11, 10))
        }
        other => panic!("{other:?}"),
    }
    match q.put(vec![3; 100]) {
        Err(PutError::TooLarge { value, .. }) => assert_eq!(value.len(), 100),
        other => panic!("{other:?}"),
    }
    q.try_put(vec![]).unwrap();
    assert!(matches!(q.try_put(vec![4]), Err(TryPutError::Full(v)) if v == [4]));
    // Too large wins over full: it is checked before waiting for room.
    assert!(matches!(
        q.try_put(vec![5; 50]),
        Err(TryPutError::TooLarge { .. })
    ));
    assert_eq!(q.try_get(), Ok(vec![1; 9]));
    assert_eq!(q.try_get(), Ok(vec![]));
    assert_eq!(q.try_get(), Err(TryGetError::Empty));

    let s = SpscQueue::<Vec<u8>>::builder()
        .capacity(1)
        .max_message_size(10)
        .create_anonymous()
        .unwrap();
    let (mut tx, mut rx) = s.split().unwrap();
    assert!(matches!(
        tx.try_put(vec![0; 10]),
        Err(TryPutError::TooLarge {
            size: 11,
            max: 10,
            ..
        })
    ));
    tx.try_put(vec![7]).unwrap();
    assert!(matches!(tx.try_put(vec![8]), Err(TryPutError::Full(v)) if v == [8]));
    assert_eq!(rx.try_get(), Ok(vec![7]));
    assert_eq!(rx.try_get(), Err(TryGetError::Empty));
}

#[test]
fn timeouts_are_honoured_never_early() {
    let timeout = Duration::from_millis(30);
    let q = Queue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    let start = Instant::now();
    assert_eq!(q.get_timeout(timeout), Err(GetTimeoutError::Timeout));
    assert!(start.elapsed() >= timeout);
    q.put(1).unwrap();
    let start = Instant::now();
    assert!(matches!(
        q.put_timeout(2, timeout),
        Err(PutTimeoutError::Timeout(2))
    ));
    assert!(start.elapsed() >= timeout);
    assert_eq!(q.get_timeout(timeout), Ok(1));

    let s = SpscQueue::<u32>::builder()
        .capacity(1)
        .create_anonymous()
        .unwrap();
    let (mut tx, mut rx) = s.split().unwrap();
    let start = Instant::now();
    assert_eq!(rx.get_timeout(timeout), Err(GetTimeoutError::Timeout));
    assert!(start.elapsed() >= timeout);
    tx.put(1).unwrap();
    let start = Instant::now();
    assert!(matches!(
        tx.put_timeout(2, timeout),
        Err(PutTimeoutError::Timeout(2))
    ));
    assert!(start.elapsed() >= timeout);
}

/// Serialises like a `u32`, but refuses 13 and panics on 666; deserialising refuses 7.
#[derive(Debug, PartialEq)]
struct Picky(u32);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            13 => Err(serde::ser::Error::custom("thirteen is unlucky")),
            666 => panic!("a serialiser panicked"),
            n => serializer.serialize_u32(n),
        }
    }
}

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u32::deserialize(deserializer)? {
            7 => Err(serde::de::Error::custom("seven is refused")),
            n => Ok(Picky(n)),
        }
    }
}

#[test]
fn encode_and_decode_errors_leave_the_queue_usable() {
    let q = Queue::<Picky>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    match q.put(Picky(13)) {
        Err(PutError::Encode { value, error }) => {
            assert_eq!(value, Picky(13));
            // postcard reports a custom serde error without its text.
            assert!(!error.to_string().is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(q.is_empty());
    // A serialiser that panics (while sizing the value, before any slot is taken).
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.put(Picky(666))));
    assert!(panicked.is_err());
    q.put(Picky(7)).unwrap();
    q.put(Picky(8)).unwrap();
    assert!(matches!(q.try_get(), Err(TryGetError::Decode(_))));
    assert_eq!(q.try_get(), Ok(Picky(8)));
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    // Every slot is usable again.
    q.put(Picky(1)).unwrap();
    q.put(Picky(2)).unwrap();
    assert_eq!((q.get().unwrap(), q.get().unwrap()), (Picky(1), Picky(2)));

    let s = SpscQueue::<Picky>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    let (mut tx, mut rx) = s.split().unwrap();
    assert!(matches!(tx.put(Picky(13)), Err(PutError::Encode { .. })));
    tx.put(Picky(7)).unwrap();
    tx.put(Picky(9)).unwrap();
    assert!(matches!(rx.try_get(), Err(TryGetError::Decode(_))));
    assert_eq!(rx.try_get(), Ok(Picky(9)));
}

#[test]
fn invalid_configurations_are_refused() {
    assert!(matches!(
        Queue::<u8>::builder().capacity(0).create_anonymous(),
        Err(CreateError::InvalidConfig { .. })
    ));
    assert!(matches!(
        Queue::<u8>::builder()
            .max_message_size(0)
            .create_anonymous(),
        Err(CreateError::InvalidConfig { .. })
    ));
    assert!(matches!(
        Queue::<u8>::builder()
            .capacity(usize::MAX)
            .create_anonymous(),
        Err(CreateError::InvalidConfig { .. })
    ));
    assert!(matches!(
        SpscQueue::<u8>::builder()
            .max_message_size(100)
            .buffer_size(64)
            .create_anonymous(),
        Err(CreateError::InvalidConfig { .. })
    ));
}

#[test]
fn opening_with_another_type_or_kind_fails() {
    let name = unique_name("queue-errors-open");
    let check = ShmLeakCheck::new(&name);
    {
        let q = Queue::<u32>::builder().capacity(4).create(&name).unwrap();
        let err = Queue::<u64>::open(&name).unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::Segment(shm_segment::OpenError::TypeMismatch { .. })
            ),
            "{err}"
        );
        let err = SpscQueue::<u32>::open(&name).unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::Segment(shm_segment::OpenError::KindMismatch { .. })
            ),
            "{err}"
        );
        let other = Queue::<u32>::open(&name).unwrap();
        q.put(3).unwrap();
        assert_eq!(other.get(), Ok(3));
        assert_eq!(other.capacity(), 4);
        assert!(matches!(
            Queue::<u32>::builder().create(&name),
            Err(CreateError::Segment(
                shm_segment::CreateError::AlreadyExists { .. }
            ))
        ));
    }
    let err = Queue::<u32>::open(&name).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Segment(shm_segment::OpenError::NotFound { .. })
        ),
        "{err}"
    );
    check.finish();
}
