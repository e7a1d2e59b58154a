//! Every way an open can fail gives its typed error: wrong kind, type or version, truncated
//! or garbage files, foreign files with our prefix, bad names, no space. Never a panic, a
//! SIGBUS or undefined behaviour.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::shm_path;
use proptest::prelude::*;
use shm_segment::layout::HEADER_LEN;
use shm_segment::{
    CreateError, CreateOrOpenError, ObjectKind, OpenError, Segment, SegmentOptions,
    TypeFingerprint, UnlinkError,
};
use test_support::{ShmLeakCheck, unique_name};

const QUICK: Duration = Duration::from_millis(30);

fn queue_of<T>() -> SegmentOptions {
    SegmentOptions::new(ObjectKind::QUEUE)
        .fingerprint(TypeFingerprint::of::<T>())
        .len(256)
}

/// Writes `bytes` as the named segment's whole file.
fn write_file(name: &str, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(shm_path(name))
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn wrong_kind_type_and_version_are_typed_errors() {
    let name = unique_name("mismatch");
    let leaks = ShmLeakCheck::new(&name);
    let seg = queue_of::<u64>().create(&name).unwrap();

    match SegmentOptions::new(ObjectKind::LOCK).open(&name) {
        Err(OpenError::KindMismatch {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (ObjectKind::LOCK, ObjectKind::QUEUE));
        }
        other => panic!("expected KindMismatch, got {other:?}"),
    }
    match queue_of::<u32>().open(&name) {
        Err(OpenError::TypeMismatch {
            expected, found, ..
        }) => {
            assert_eq!(expected, TypeFingerprint::of::<u32>());
            assert_eq!(found, TypeFingerprint::of::<u64>());
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert!(queue_of::<u64>().open(&name).is_ok());
    assert!(
        SegmentOptions::any().open(&name).is_ok(),
        "`any` accepts every kind and type"
    );

    // Patch the layout version in the file.
    let f = OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    f.write_all_at(&99u32.to_le_bytes(), 8).unwrap();
    match queue_of::<u64>().open(&name) {
        Err(OpenError::VersionMismatch {
            expected: 1,
            found: 99,
            ..
        }) => {}
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    drop(seg);
    leaks.finish();
}

#[test]
fn truncated_files_are_typed_errors_not_sigbus() {
    let name = unique_name("trunc");
    let leaks = ShmLeakCheck::new(&name);
    let seg = queue_of::<u64>().create(&name).unwrap();
    seg.persist();
    let total = (HEADER_LEN + seg.data_len()) as u64;
    drop(seg);
    let original = std::fs::read(shm_path(&name)).unwrap();
    for len in [0, 7, HEADER_LEN as u64 - 1, total - 1] {
        write_file(&name, &original);
        let f = OpenOptions::new()
            .write(true)
            .open(shm_path(&name))
            .unwrap();
        f.set_len(len).unwrap();
        match queue_of::<u64>().init_timeout(QUICK).open(&name) {
            Err(OpenError::Truncated { len: l, .. }) => assert_eq!(l, len),
            Err(OpenError::SizeMismatch { header, file, .. }) => {
                assert_eq!((header, file), (total, len))
            }
            other => {
                panic!("truncated to {len}: expected Truncated or SizeMismatch, got {other:?}")
            }
        }
    }
    Segment::unlink(&name).unwrap();
    leaks.finish();
}

#[test]
fn foreign_files_with_our_prefix_are_not_segments() {
    let name = unique_name("foreign");
    let leaks = ShmLeakCheck::new(&name);

    write_file(
        &name,
        b"hello, I am somebody else's file and longer than eight bytes",
    );
    assert!(matches!(
        queue_of::<u64>().open(&name),
        Err(OpenError::NotASegment { .. })
    ));

    let mut random = vec![0u8; 8192];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    random[0] |= 1; // a non-zero magic
    write_file(&name, &random);
    assert!(matches!(
        queue_of::<u64>().open(&name),
        Err(OpenError::NotASegment { .. })
    ));

    // All zeroes: what a creator that died right after creating the file leaves.
    write_file(&name, &[0u8; 8192]);
    match queue_of::<u64>().init_timeout(QUICK).open(&name) {
        Err(OpenError::InitTimeout { creator: None, .. }) => {}
        other => panic!("expected InitTimeout without a creator, got {other:?}"),
    }
    let info = shm_segment::catalog::describe_name(&name).unwrap();
    assert_eq!(info.state, shm_segment::catalog::SegmentState::NoHeader);

    // gc never removes a file that is not a segment of ours.
    write_file(&name, b"not ours at all, not ours at all");
    assert!(
        !shm_segment::catalog::gc_matching(&name, false)
            .unwrap()
            .removed
            .contains(&name)
    );
    Segment::unlink(&name).unwrap();
    leaks.finish();
}

#[test]
fn invalid_names_are_rejected_everywhere() {
    let long = "x".repeat(201);
    for bad in [
        "",
        "a/b",
        "../etc",
        "sp ace",
        "tab\t",
        "é",
        long.as_str(),
        "nul\0",
    ] {
        assert!(
            matches!(
                queue_of::<u64>().create(bad),
                Err(CreateError::InvalidName(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(queue_of::<u64>().open(bad), Err(OpenError::InvalidName(_))),
            "{bad:?}"
        );
        assert!(
            matches!(Segment::unlink(bad), Err(UnlinkError::InvalidName(_))),
            "{bad:?}"
        );
        assert!(matches!(
            queue_of::<u64>().create_or_open(bad),
            Err(CreateOrOpenError::Create(CreateError::InvalidName(_)))
        ));
    }
    assert!(shm_segment::SegmentName::new(&"y".repeat(200)).is_ok());
    assert!(shm_segment::SegmentName::new("Ok.name_1-2").is_ok());
}

#[test]
fn exists_and_not_found() {
    let name = unique_name("exists");
    let leaks = ShmLeakCheck::new(&name);
    assert!(matches!(
        queue_of::<u64>().open(&name),
        Err(OpenError::NotFound { .. })
    ));
    let seg = queue_of::<u64>().create(&name).unwrap();
    let err = queue_of::<u64>().create(&name).unwrap_err();
    assert!(matches!(err, CreateError::AlreadyExists { .. }));
    assert!(
        err.to_string().contains("multiproc rm"),
        "the message says what to do: {err}"
    );
    assert!(matches!(
        Segment::unlink(&format!("{name}-nope")),
        Err(UnlinkError::NotFound { .. })
    ));
    drop(seg);
    assert!(
        matches!(
            queue_of::<u64>().open(&name),
            Err(OpenError::NotFound { .. })
        ),
        "the creator removed it"
    );
    leaks.finish();
}

#[test]
fn no_space_is_an_error_at_create_and_leaves_nothing() {
    let name = unique_name("nospace");
    let leaks = ShmLeakCheck::new(&name);
    // More than the whole of /dev/shm, so tmpfs refuses at once instead of filling memory
    // first; but under the 1 TiB layout limit.
    let size = rustix::fs::statvfs("/dev/shm")
        .map(|s| s.f_blocks * s.f_frsize)
        .unwrap();
    let ask = (size + (1 << 30)).min((1 << 40) - (1 << 20)) as usize;
    if (size as usize) >= ask {
        test_support::skip("/dev/shm is too large to fill in a test");
        return;
    }
    match queue_of::<u64>().len(ask).create(&name) {
        Err(e @ CreateError::NoSpace { .. }) => assert!(e.to_string().contains("--shm-size")),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(
        !std::path::Path::new(&shm_path(&name)).exists(),
        "nothing half-created"
    );

    // Growing past the free space is NoSpace too, and the segment stays usable.
    let seg = queue_of::<u64>().max_len(ask).create(&name).unwrap();
    assert!(matches!(
        seg.grow(ask),
        Err(shm_segment::GrowError::NoSpace { .. })
    ));
    seg.grow(1 << 20).unwrap();
    drop(seg);
    leaks.finish();
}

#[test]
fn oversized_requests_are_invalid_size() {
    assert!(matches!(
        queue_of::<u64>().len(1 << 41).create_anonymous(),
        Err(CreateError::InvalidSize { .. })
    ));
    assert!(matches!(
        queue_of::<u64>().max_len(usize::MAX).create_anonymous(),
        Err(CreateError::InvalidSize { .. })
    ));
}

#[test]
fn one_segment_mapped_twice_in_one_process() {
    let name = unique_name("twice");
    let leaks = ShmLeakCheck::new(&name);
    let a = queue_of::<u64>().create(&name).unwrap();
    let b = queue_of::<u64>().open(&name).unwrap();
    assert_ne!(a.data(), b.data(), "two mappings at two addresses");
    common::store(&a, 3, 17);
    assert_eq!(common::load(&b, 3), 17);
    assert_eq!(
        a.attached().len(),
        2,
        "both handles are in the attach table"
    );
    drop(b);
    assert_eq!(a.attached().len(), 1, "a dropped handle leaves the table");
    drop(a);
    leaks.finish();
}

/// Flips each bit of a real header, one at a time: every open either succeeds consistently
/// or fails with an error; none panics or faults.
#[test]
fn byte_flip_sweep_over_the_header() {
    let name = unique_name("flip");
    let leaks = ShmLeakCheck::new(&name);
    let seg = queue_of::<u64>().create(&name).unwrap();
    seg.persist();
    drop(seg);
    let path = shm_path(&name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut original = vec![0u8; HEADER_LEN];
    file.read_exact_at(&mut original, 0).unwrap();
    // The fixed part bit by bit; the attach table byte by byte (slot 0 and a free one).
    let mut flips: Vec<(usize, u8)> = (0..128)
        .flat_map(|i| (0..8).map(move |bit| (i, 1u8 << bit)))
        .collect();
    flips.extend((128..160).map(|i| (i, 0xff)));
    flips.extend((1008..1024).map(|i| (i, 0xff)));
    let (mut ok, mut err) = (0, 0);
    for (at, mask) in flips {
        let mut bytes = original.clone();
        bytes[at] ^= mask;
        file.write_all_at(&bytes, 0).unwrap();
        match queue_of::<u64>()
            .init_timeout(Duration::from_millis(2))
            .open(&name)
        {
            Ok(seg) => {
                assert_eq!(
                    seg.kind(),
                    ObjectKind::QUEUE,
                    "an accepted header is consistent"
                );
                ok += 1;
            }
            Err(_) => err += 1,
        }
    }
    file.write_all_at(&original, 0).unwrap();
    assert!(
        queue_of::<u64>().open(&name).is_ok(),
        "the restored header opens"
    );
    assert!(
        ok > 0 && err > 0,
        "some flips are harmless, some are caught ({ok} ok, {err} errors)"
    );
    Segment::unlink(&name).unwrap();
    leaks.finish();
}

/// Removes a test file on drop, so a failing property does not leak it.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random headers never panic and never fault. Some cases get a right magic, version,
    /// offsets and lengths (each independently), so every later check, the mapping, the
    /// ready wait and `refresh` are reached too.
    #[test]
    fn random_headers_never_panic(
        mut header in proptest::collection::vec(any::<u8>(), HEADER_LEN),
        extra_pages in 0usize..3,
        fixes in proptest::collection::vec(any::<bool>(), 6),
        total_pages in 1u64..5,
        max_pages in 1u64..8,
    ) {
        use shm_segment::layout::{LAYOUT_VERSION, MAGIC, STATE_READY};
        let put = |h: &mut Vec<u8>, at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        if fixes[0] { put(&mut header, 0, &MAGIC.to_le_bytes()); }
        if fixes[1] { put(&mut header, 8, &LAYOUT_VERSION.to_le_bytes()); }
        if fixes[2] { put(&mut header, 48, &(HEADER_LEN as u32).to_le_bytes()); }
        if fixes[3] { put(&mut header, 32, &(total_pages * 4096).to_le_bytes()); }
        if fixes[4] { put(&mut header, 40, &(max_pages * 4096).to_le_bytes()); }
        if fixes[5] { put(&mut header, 52, &STATE_READY.to_le_bytes()); }
        let name = unique_name("prop");
        let _remove = RemoveOnDrop(shm_path(&name));
        let file_len = (HEADER_LEN + extra_pages * 4096) as u64;
        let mut f = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(shm_path(&name)).unwrap();
        f.write_all(&header).unwrap();
        f.seek(SeekFrom::Start(file_len)).unwrap();
        f.set_len(file_len).unwrap();
        let result = SegmentOptions::any().init_timeout(Duration::from_millis(1)).open(&name);
        if let Ok(seg) = &result {
            prop_assert!((HEADER_LEN + seg.data_len()) as u64 <= file_len.max(4096));
            prop_assert!(seg.refresh().is_ok() || seg.refresh().is_err());
            // Touch every mapped byte: an accepted segment must be fully readable.
            let sum: u64 = (0..seg.data_len()).step_by(512).map(|i| {
                // SAFETY: in bounds of the mapped data; a plain read of bytes nobody writes.
                u64::from(unsafe { seg.data().as_ptr().add(i).read_volatile() })
            }).sum();
            prop_assert!(sum < u64::MAX);
        }
    }
}

/// RELIABILITY row 12: a 64 KiB tmpfs over /dev/shm in a private mount namespace. Creating
/// or growing past it is `NoSpace` at that moment; what was created stays fully usable
/// (every page was reserved, so touching it cannot raise SIGBUS).
#[test]
fn full_dev_shm_in_a_private_mount_namespace() {
    use test_support::{Watchdog, child_builder, signal_parent, test_name};
    let _wd = Watchdog::new(Duration::from_secs(60));
    let parent = test_support::child_role().is_none();
    if parent && !(test_support::is_root() && test_support::have_program("unshare")) {
        test_support::skip("needs root and unshare for a private mount namespace");
        return;
    }
    let script = "mount -t tmpfs -o size=64k tmpfs /dev/shm && exec \"$0\" \"$@\"";
    let mut child = child_builder(&test_name!(), "small-shm")
        .wrapper(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ])
        .spawn(|| {
            let opts = SegmentOptions::new(ObjectKind::RAW);
            let seg = opts
                .clone()
                .len(32 << 10)
                .max_len(1 << 20)
                .create("fits")
                .unwrap();
            // SAFETY: every mapped byte is inside the segment's data and nobody else uses it.
            unsafe { std::ptr::write_bytes(seg.data().as_ptr(), 0xab, seg.data_len()) };
            assert!(matches!(
                opts.clone().len(64 << 10).create("too-big"),
                Err(CreateError::NoSpace { .. })
            ));
            assert!(!std::path::Path::new("/dev/shm/multiproc.too-big").exists());
            assert!(matches!(
                seg.grow(512 << 10),
                Err(shm_segment::GrowError::NoSpace { .. })
            ));
            // SAFETY: as above; the failed grow changed nothing that is mapped.
            unsafe { std::ptr::write_bytes(seg.data().as_ptr(), 0xcd, seg.data_len()) };
            signal_parent("checked");
        });
    match child.wait_line("checked", common::STEP) {
        Ok(_) => child.wait_success(common::STEP),
        Err(e) => {
            let tail = child.stderr_tail().join("\n");
            if tail.contains("unshare failed") || tail.contains("mount:") {
                test_support::skip(&format!(
                    "cannot make a private mount namespace here: {tail}"
                ));
            } else {
                panic!("child failed: {e}\n{tail}");
            }
        }
    }
}

/// A FIFO planted under our prefix must not hang `open`, `ls` or `gc` (opening a FIFO for
/// reading blocks until a writer comes).
#[test]
fn a_fifo_under_our_prefix_hangs_nothing() {
    let _wd = test_support::Watchdog::new(Duration::from_secs(30));
    let name = unique_name("fifo");
    let leaks = ShmLeakCheck::new(&name);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        shm_path(&name).as_str(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert!(matches!(
        queue_of::<u64>().open(&name),
        Err(OpenError::NotASegment { .. })
    ));
    let info = shm_segment::catalog::describe_name(&name).unwrap();
    assert_eq!(info.state, shm_segment::catalog::SegmentState::Unreadable);
    assert!(
        !shm_segment::catalog::gc_matching(&name, false)
            .unwrap()
            .removed
            .contains(&name)
    );
    std::fs::remove_file(shm_path(&name)).unwrap();
    leaks.finish();
}

/// RELIABILITY row 19: collectors racing an opener on a stale segment. One cleaner wins;
/// the opener ends up with the segment that carries the name (the old one, kept because it
/// opened first, or a new one it created after the removal), never with a removed file.
#[test]
fn gc_racing_create_or_open_never_strands_the_opener() {
    let _wd = test_support::Watchdog::new(Duration::from_secs(120));
    let name = unique_name("gc-race");
    let leaks = ShmLeakCheck::new(&name);
    let opts = queue_of::<u64>();
    for _ in 0..test_support::iterations(50) {
        // A stale segment: persisted, and nobody holds it any more.
        opts.create(&name).unwrap().persist();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let name = name.clone();
                std::thread::spawn(move || shm_segment::catalog::gc_matching(&name, false).unwrap())
            })
            .collect();
        let seg = opts.create_or_open(&name).unwrap();
        let reports: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let removals = reports.iter().filter(|r| r.removed.contains(&name)).count();
        assert!(removals <= 1, "one cleaner wins: {reports:?}");
        let again = opts.open(&name).unwrap();
        assert_eq!(
            again.inode(),
            seg.inode(),
            "the opener holds the segment that has the name"
        );
        // A segment this thread created goes with its creating handle; an old one stays.
        let created = seg.is_creator();
        drop((seg, again));
        if !created {
            Segment::unlink(&name).unwrap();
        }
    }
    leaks.finish();
}

/// A file just created by someone (no header yet) is left alone by gc: its creator may be
/// between creating it and writing the header.
#[test]
fn gc_leaves_a_headerless_file_that_is_being_created() {
    let name = unique_name("young");
    let leaks = ShmLeakCheck::new(&name);
    write_file(&name, &[0u8; 4096]);
    let report = shm_segment::catalog::gc_matching(&name, false).unwrap();
    assert!(!report.removed.contains(&name), "{report:?}");
    Segment::unlink(&name).unwrap();
    leaks.finish();
}
