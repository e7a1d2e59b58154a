//! Anonymous segments need no cleanup. This test sits alone in its binary because it reads
//! the machine-wide shared-memory total, which concurrent tests would disturb.

mod common;

use std::time::Duration;

use common::STEP;
use shm_segment::{ObjectKind, SegmentOptions};
use test_support::{Watchdog, child_builder, signal_parent, test_name, wait_parent_line};

fn shmem_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo.lines().find(|l| l.starts_with("Shmem:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An anonymous segment needs no cleanup: when its only holder is SIGKILLed, the kernel
/// frees its memory (it never had a name in /dev/shm to leave behind).
#[test]
fn anonymous_segment_memory_is_freed_when_its_holder_is_killed() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    const SIZE: usize = 128 << 20;
    let mut child = child_builder(&test_name!(), "holder").spawn(|| {
        let seg = SegmentOptions::new(ObjectKind::RAW)
            .len(SIZE)
            .create_anonymous()
            .unwrap();
        // SAFETY: the data area has SIZE bytes and only this process uses it.
        unsafe { std::ptr::write_bytes(seg.data().as_ptr(), 1, SIZE) };
        signal_parent("filled");
        wait_parent_line();
    });
    let filled = child
        .wait_line("filled", STEP)
        .map(|_| shmem_kib())
        .unwrap();
    child.kill();
    child.wait_timeout(STEP).unwrap();
    let freed_kib = filled.saturating_sub(shmem_kib());
    assert!(
        freed_kib >= (SIZE as u64 / 1024) * 3 / 4,
        "only {freed_kib} KiB of shared memory were freed"
    );
}
