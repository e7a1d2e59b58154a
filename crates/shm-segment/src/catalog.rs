//! Finding, describing and cleaning up named segments: what `multiproc ls`, `rm` and `gc`
//! are made of.
//!
//! Named segments live as `/dev/shm/multiproc.<name>`. Every handle holds a shared `flock`
//! on its file from creation or opening until it is dropped — and the kernel drops it when
//! the process exits, however it exits. A segment is **stale** when nobody holds it: an
//! exclusive lock can be taken. That is the kernel's answer, immune to recycled pids, pid
//! namespaces and a full attach table. Collection takes that exclusive lock, checks that the
//! name still refers to the same file, and only then removes the name, so a process that
//! opens the segment meanwhile either wins (and the segment is kept) or waits and starts
//! over on a fresh one.
//!
//! Descriptions read the header with `pread` and never map the file, so a damaged or
//! foreign file cannot crash the reader; anything that is not a regular file (a FIFO
//! planted under our prefix, say) is reported and left alone.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zerocopy::FromBytes;

use crate::layout::{
    HEADER_LEN, Header, LAYOUT_VERSION, MAGIC, STATE_FAILED, STATE_INITIALISING, STATE_READY,
};
use crate::{ObjectKind, ProcessId, Segment, SegmentName, UnlinkError, sys};

/// A creator takes its lock right after creating the file; a file without a header that is
/// younger than this may be caught in between.
const HEADERLESS_GRACE: Duration = Duration::from_secs(2);

/// The state of a named segment as `ls` shows it.
///
/// # Examples
///
/// ```
/// use shm_segment::catalog::{describe_name, SegmentState};
/// use shm_segment::{ObjectKind, SegmentOptions};
/// # let name = format!("doc-state-{}", std::process::id());
/// let _seg = SegmentOptions::new(ObjectKind::RAW).create(&name)?;
/// assert_eq!(describe_name(&name).unwrap().state, SegmentState::Ready);
/// # Ok::<(), shm_segment::CreateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentState {
    /// Initialised and usable.
    Ready,
    /// The creator is initialising it (or died doing so).
    Initialising,
    /// The creator's initialisation failed.
    Failed,
    /// No header written yet (just created, or abandoned right after creation).
    NoHeader,
    /// The file is not a multiproc segment, or its header is damaged.
    NotASegment,
    /// The header has another layout version.
    OtherVersion,
    /// The file could not be read (permissions), or is not a regular file.
    Unreadable,
}

/// What `ls` knows about one named segment.
///
/// # Examples
///
/// ```
/// use shm_segment::{catalog, ObjectKind, SegmentOptions};
/// # let name = format!("doc-info-{}", std::process::id());
/// let _seg = SegmentOptions::new(ObjectKind::LOCK).create(&name)?;
/// let info = catalog::describe_name(&name).unwrap();
/// assert_eq!(info.creator.unwrap().pid, std::process::id());
/// assert_eq!(info.attached.len(), 1);
/// # Ok::<(), shm_segment::CreateError>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct SegmentInfo {
    /// The segment's name (without the `multiproc.` prefix).
    pub name: String,
    /// State of the header.
    pub state: SegmentState,
    /// The object kind, when the header is readable.
    pub kind: Option<String>,
    /// File length in bytes.
    pub size: u64,
    /// The creator, when the header is readable.
    pub creator: Option<ProcessId>,
    /// Whether the creator is alive.
    pub creator_alive: bool,
    /// Live processes in the attach table.
    pub attached: Vec<ProcessId>,
    /// Whether the attach table overflowed (it then lists only some processes).
    pub attach_overflow: bool,
    /// Whether some process holds a handle to it (the kernel's `flock` says so).
    pub in_use: bool,
    /// Whether `gc` would remove it.
    pub stale: bool,
}

/// Lists every named multiproc segment in `/dev/shm`, sorted by name.
///
/// # Errors
///
/// Only when `/dev/shm` itself cannot be read; unreadable segments are listed as
/// [`SegmentState::Unreadable`].
///
/// # Examples
///
/// ```
/// use shm_segment::{catalog, ObjectKind, SegmentOptions};
/// # let name = format!("doc-list-{}", std::process::id());
/// let seg = SegmentOptions::new(ObjectKind::QUEUE).len(64).create(&name)?;
/// let info = catalog::list()?.into_iter().find(|i| i.name == name).unwrap();
/// assert_eq!(info.kind.as_deref(), Some("queue"));
/// assert!(info.creator_alive && !info.stale);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list() -> io::Result<Vec<SegmentInfo>> {
    let mut infos: Vec<SegmentInfo> = sys::list_shm_dir()?
        .iter()
        .filter_map(|file| SegmentName::from_file_name(file))
        .filter_map(|name| describe(&name))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(infos)
}

/// Describes the named segment `name`, or `None` if there is none.
///
/// # Examples
///
/// ```
/// assert!(shm_segment::catalog::describe_name("no-such-segment-here").is_none());
/// ```
pub fn describe_name(name: &str) -> Option<SegmentInfo> {
    describe(&SegmentName::new(name).ok()?)
}

fn describe(name: &SegmentName) -> Option<SegmentInfo> {
    inspect(name).map(|(info, _)| info)
}

/// Describes the segment; when it is stale, also returns its descriptor holding the
/// exclusive lock (until dropped), so the caller may remove it safely.
fn inspect(name: &SegmentName) -> Option<(SegmentInfo, Option<OwnedFd>)> {
    let mut info = SegmentInfo {
        name: name.to_string(),
        state: SegmentState::Unreadable,
        kind: None,
        size: 0,
        creator: None,
        creator_alive: false,
        attached: Vec::new(),
        attach_overflow: false,
        in_use: true,
        stale: false,
    };
    let fd = match sys::shm_open_existing(&name.file_name(), false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => return Some((info, None)),
    };
    let Ok(stat) = sys::stat(fd.as_fd()) else {
        return Some((info, None));
    };
    info.size = stat.len;
    // Exclusive only if no handle anywhere holds its shared lock. Held until `fd` drops.
    info.in_use = !sys::try_lock_exclusive(fd.as_fd()).unwrap_or(false);
    let mut buf = [0u8; HEADER_LEN];
    let Ok(got) = sys::read_at(fd.as_fd(), &mut buf, 0) else {
        return Some((info, None));
    };
    let magic = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
    if got < 8 || magic == 0 {
        info.state = SegmentState::NoHeader;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        info.stale = !info.in_use && now - stat.ctime >= HEADERLESS_GRACE.as_secs() as i64;
        return Some(finish(info, fd));
    }
    let header = match Header::read_from_bytes(&buf) {
        Ok(h) if magic == MAGIC && got == HEADER_LEN => h,
        _ => {
            info.state = SegmentState::NotASegment;
            return Some((info, None));
        }
    };
    if header.version != LAYOUT_VERSION {
        info.state = SegmentState::OtherVersion;
        return Some((info, None));
    }
    info.state = match header.init_state {
        STATE_READY => SegmentState::Ready,
        STATE_INITIALISING => SegmentState::Initialising,
        STATE_FAILED => SegmentState::Failed,
        _ => SegmentState::NotASegment,
    };
    if info.state == SegmentState::NotASegment {
        return Some((info, None));
    }
    info.kind = Some(ObjectKind::new(header.kind).to_string());
    let creator = ProcessId {
        pid: header.creator_pid,
        start_time: header.creator_start,
    };
    info.creator = Some(creator);
    info.creator_alive = creator.is_alive();
    info.attached = header
        .attach
        .iter()
        .filter(|s| s.ident != 0 && ProcessId::packed_is_alive(s.ident))
        .map(|s| ProcessId {
            pid: (s.ident >> 32) as u32,
            start_time: s.start_time,
        })
        .collect();
    info.attach_overflow = header.attach_overflow != 0;
    info.stale = !info.in_use;
    Some(finish(info, fd))
}

fn finish(info: SegmentInfo, fd: OwnedFd) -> (SegmentInfo, Option<OwnedFd>) {
    let locked = info.stale.then_some(fd);
    (info, locked)
}

/// Removes the named segment if it is stale (nobody holds it), checking under the exclusive
/// lock that the name still refers to the file examined. Returns whether it was removed.
fn remove_if_stale(name: &SegmentName) -> Option<(SegmentInfo, Result<bool, UnlinkError>)> {
    let (info, locked) = inspect(name)?;
    let Some(fd) = locked else {
        return Some((info, Ok(false)));
    };
    let same = sys::stat(fd.as_fd())
        .ok()
        .map(|st| (st.dev, st.ino))
        .is_some_and(|id| sys::shm_path_identity(&name.file_name()).ok() == Some(id));
    if !same {
        return Some((info, Ok(false)));
    }
    let result = match Segment::unlink(name.as_str()) {
        Ok(()) | Err(UnlinkError::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    };
    drop(fd);
    Some((info, result))
}

/// Removes the remains of a segment whose creator died before finishing, if nobody holds
/// them. Used by `create_or_open` to recover instead of failing for ever.
pub(crate) fn reclaim_if_abandoned(name: &str) -> bool {
    SegmentName::new(name)
        .ok()
        .and_then(|name| remove_if_stale(&name))
        .is_some_and(|(_, removed)| matches!(removed, Ok(true)))
}

/// What [`gc`] did.
///
/// # Examples
///
/// ```
/// let report = shm_segment::catalog::gc_matching("doc-nothing-here-", true)?;
/// assert!(report.removed.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Stale segments removed (or, in a dry run, that would be removed).
    pub removed: Vec<String>,
    /// Segments left alone, with the reason.
    pub kept: Vec<(String, String)>,
}

/// Removes every stale named segment (see the module docs); with `dry_run`, only reports
/// what it would remove. Never removes a segment that a live process created, has open or
/// maps, nor a file that is not a multiproc segment.
///
/// Two collectors racing are harmless: the loser finds the name already gone.
///
/// # Errors
///
/// Only when `/dev/shm` cannot be read.
///
/// # Examples
///
/// ```
/// use shm_segment::{catalog, ObjectKind, SegmentOptions};
/// # let name = format!("doc-gc-{}", std::process::id());
/// let seg = SegmentOptions::new(ObjectKind::RAW).create(&name)?;
/// let report = catalog::gc(true)?;
/// assert!(!report.removed.contains(&name)); // its creator, this process, is alive
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn gc(dry_run: bool) -> io::Result<GcReport> {
    gc_matching("", dry_run)
}

/// Like [`gc`], limited to the segments whose names start with `prefix`.
///
/// # Errors
///
/// Only when `/dev/shm` cannot be read.
///
/// # Examples
///
/// ```
/// let report = shm_segment::catalog::gc_matching("no-such-prefix-", false)?;
/// assert!(report.removed.is_empty() && report.kept.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn gc_matching(prefix: &str, dry_run: bool) -> io::Result<GcReport> {
    let mut report = GcReport::default();
    let names = sys::list_shm_dir()?
        .iter()
        .filter_map(|file| SegmentName::from_file_name(file))
        .filter(|name| name.as_str().starts_with(prefix))
        .collect::<Vec<_>>();
    for name in names {
        if dry_run {
            match describe(&name) {
                Some(info) if info.stale => report.removed.push(info.name),
                Some(info) => report.kept.push((info.name.clone(), keep_reason(&info))),
                None => {}
            }
            continue;
        }
        match remove_if_stale(&name) {
            Some((info, Ok(true))) => report.removed.push(info.name),
            Some((info, Ok(false))) => report.kept.push((info.name.clone(), keep_reason(&info))),
            Some((info, Err(e))) => report.kept.push((info.name, e.to_string())),
            None => {}
        }
    }
    report.removed.sort();
    report.kept.sort();
    Ok(report)
}

fn keep_reason(info: &SegmentInfo) -> String {
    match info.state {
        SegmentState::NotASegment => "not a multiproc segment".into(),
        SegmentState::OtherVersion => "made by another multiproc version".into(),
        SegmentState::Unreadable => "unreadable (permissions)".into(),
        SegmentState::NoHeader => "being created".into(),
        _ if info.creator_alive => {
            format!("creator {} is alive", info.creator.map_or(0, |c| c.pid))
        }
        _ if !info.attached.is_empty() => {
            format!("{} live process(es) attached", info.attached.len())
        }
        _ => "mapped by a live process".into(),
    }
}
