//! Finding, describing and cleaning up named segments: what `multiproc ls`, `rm` and `gc`
//! are made of.
//!
//! Named segments live as `/dev/shm/multiproc.<name>`. A segment is **stale** when its
//! creator and every process in its attach table are dead (pid and start time, so a
//! recycled pid does not count as alive) — and, should the attach table have overflowed, no
//! process maps it (from `/proc/*/maps`; a process we may not inspect counts as mapping it).
//! A file whose header was never written is stale once it is ten seconds old. Only stale
//! segments are collected. Descriptions are read with `pread` and never map the file, so a damaged or
//! foreign file cannot crash the reader.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zerocopy::FromBytes;

use crate::layout::{
    HEADER_LEN, Header, LAYOUT_VERSION, MAGIC, STATE_FAILED, STATE_INITIALISING, STATE_READY,
};
use crate::{ObjectKind, ProcessId, Segment, SegmentName, UnlinkError, sys};

/// A file without a header younger than this may be a segment being created right now.
const HEADERLESS_GRACE: Duration = Duration::from_secs(10);

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
    /// The file could not be read (permissions).
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
    /// Whether the attach table overflowed (cleanup then also asks `/proc`).
    pub attach_overflow: bool,
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
    let mut info = SegmentInfo {
        name: name.to_string(),
        state: SegmentState::Unreadable,
        kind: None,
        size: 0,
        creator: None,
        creator_alive: false,
        attached: Vec::new(),
        attach_overflow: false,
        stale: false,
    };
    let fd = match sys::shm_open_existing(&name.os_name(), false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => return Some(info),
    };
    let Ok(stat) = sys::stat(fd.as_fd()) else {
        return Some(info);
    };
    info.size = stat.len;
    let mut buf = [0u8; HEADER_LEN];
    let Ok(got) = sys::read_at(fd.as_fd(), &mut buf, 0) else {
        return Some(info);
    };
    let magic = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
    if got < 8 || magic == 0 {
        info.state = SegmentState::NoHeader;
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64
            - stat.ctime;
        // The creator writes the header right after creating the file; one that has not
        // after the grace period died in between.
        info.stale = age >= HEADERLESS_GRACE.as_secs() as i64;
        return Some(info);
    }
    let header = match Header::read_from_bytes(&buf) {
        Ok(h) if magic == MAGIC && got == HEADER_LEN => h,
        _ => {
            info.state = SegmentState::NotASegment;
            return Some(info);
        }
    };
    if header.version != LAYOUT_VERSION {
        info.state = SegmentState::OtherVersion;
        return Some(info);
    }
    info.state = match header.init_state {
        STATE_READY => SegmentState::Ready,
        STATE_INITIALISING => SegmentState::Initialising,
        STATE_FAILED => SegmentState::Failed,
        _ => SegmentState::NotASegment,
    };
    if info.state == SegmentState::NotASegment {
        return Some(info);
    }
    info.kind = Some(ObjectKind::new(header.kind).to_string());
    let creator = ProcessId {
        pid: header.creator_pid,
        start_time: header.creator_start,
    };
    info.creator = Some(creator);
    info.creator_alive = creator.is_alive();
    // A slot whose start time is still 0 is being claimed: count it as alive.
    info.attached = header
        .attach
        .iter()
        .filter(|s| s.pid != 0)
        .map(|s| ProcessId {
            pid: s.pid,
            start_time: s.start_time,
        })
        .filter(|p| p.start_time == 0 || p.is_alive())
        .collect();
    info.attach_overflow = header.attach_overflow != 0;
    // An overflowed table does not list everyone: then ask the kernel who maps the file.
    info.stale = !info.creator_alive
        && info.attached.is_empty()
        && !(info.attach_overflow && sys::any_process_maps(&name.file_name()));
    Some(info)
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
    for info in list()?.into_iter().filter(|i| i.name.starts_with(prefix)) {
        if !info.stale {
            report.kept.push((info.name.clone(), keep_reason(&info)));
            continue;
        }
        if dry_run {
            report.removed.push(info.name);
            continue;
        }
        match Segment::unlink(&info.name) {
            Ok(()) | Err(UnlinkError::NotFound { .. }) => report.removed.push(info.name),
            Err(e) => report.kept.push((info.name, e.to_string())),
        }
    }
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
