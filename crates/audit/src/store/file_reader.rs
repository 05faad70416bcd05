//! Read-only access to a file log, used by [`crate::AuditLog::reader`] on a
//! live log and by offline verification (`FileReader::open`), which takes no
//! lock and changes nothing on disk.
//!
//! Every frame returned is checked (length, CRC, sequence number); a defect is
//! reported with the index of the entry. Offline, the log ends where crash
//! recovery would end it: at the last intact seal of the last segment
//! (records after it were never acknowledged: a write in progress or a torn
//! tail), unless damage there is followed by an intact seal, which is damage
//! to acknowledged records and reported with its index. A trailing
//! incomplete/corrupt checkpoint is likewise not part of the log. Seal frames
//! are read where they sit, right after the last record of their batch, and
//! handed out by [`LogReader::read_sealed`] and [`LogReader::last_seal`].
//!
//! A segment's frames end where the rest of the file is zero bytes (the zero
//! tail the writer prefills, see `frame`): a zero frame header ends a
//! segment, and the bytes after it must all be zero. Non-zero bytes after the
//! zeros are reported as damage at the entry where the frames stopped, as
//! recovery refuses them: in the last segment when they lie further past the
//! last seal than a torn write reaches, in any other segment always.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::frame::{self, CHECKPOINT_MAGIC, Decoded, FRAME_OVERHEAD, HEADER_LEN, MAX_PAYLOAD, SegmentKind};
use super::layout::{CHECKPOINT_FILE, list_segments};
use super::recovery::{Want, beyond_torn_reach, intact_frame_after};
use super::{LogReader, SealedRecords};
use crate::checkpoint::SignedCheckpoint;
use crate::error::{Defect, ReadError};

/// Reads a file log. Cheap to clone.
#[derive(Clone)]
pub struct FileReader {
    dir: PathBuf,
    /// Live logs: the acknowledged size. Offline: computed once by a scan.
    live: Option<Arc<AtomicU64>>,
    offline_len: Arc<OnceLock<u64>>,
    /// Where the previous read stopped, so sequential reads do not rescan.
    cursor: Arc<Mutex<Option<Cursor>>>,
}

#[derive(Clone, Copy)]
struct Cursor {
    next: u64,
    segment_first: u64,
    offset: u64,
}

impl FileReader {
    /// Opens the log in `dir` read-only, for offline verification.
    pub fn open(dir: &Path) -> Result<Self, ReadError> {
        if !dir.is_dir() {
            let missing = std::io::Error::new(
                ErrorKind::NotFound,
                "no such directory; give the directory `[audit] path` names (or --config FILE)",
            );
            return Err(io_err("opening", dir, missing));
        }
        Ok(Self::new(dir, None))
    }

    pub(crate) fn live(dir: &Path, durable: Arc<AtomicU64>) -> Self {
        Self::new(dir, Some(durable))
    }

    fn new(dir: &Path, live: Option<Arc<AtomicU64>>) -> Self {
        Self {
            dir: dir.to_owned(),
            live,
            offline_len: Arc::new(OnceLock::new()),
            cursor: Arc::new(Mutex::new(None)),
        }
    }

    fn len_blocking(&self) -> Result<u64, ReadError> {
        if let Some(durable) = &self.live {
            return Ok(durable.load(Ordering::Acquire));
        }
        if let Some(len) = self.offline_len.get() {
            return Ok(*len);
        }
        let segments = list_segments(&self.dir).map_err(|e| io_err("listing", &self.dir, e))?;
        let len = match segments.last() {
            Some((first, path)) => acknowledged_end(path, *first)?,
            None => 0,
        };
        Ok(*self.offline_len.get_or_init(|| len))
    }

    fn read_blocking(&self, range: Range<u64>) -> Result<SealedRecords, ReadError> {
        let len = self.len_blocking()?;
        if range.start > range.end || range.end > len {
            return Err(ReadError::OutOfRange {
                start: range.start,
                end: range.end,
                len,
            });
        }
        let mut out = SealedRecords {
            records: Vec::with_capacity((range.end - range.start) as usize),
            seals: Vec::new(),
        };
        if range.is_empty() {
            return Ok(out);
        }
        let segments = list_segments(&self.dir).map_err(|e| io_err("listing", &self.dir, e))?;
        let saved = self.cursor.lock().ok().and_then(|c| *c);
        let start = match saved {
            Some(c) if c.next == range.start => c,
            _ => {
                let pos = segments.partition_point(|(first, _)| *first <= range.start);
                let Some((first, _)) = pos.checked_sub(1).and_then(|p| segments.get(p)) else {
                    return Err(corrupt(range.start, Defect::Missing));
                };
                Cursor {
                    next: *first,
                    segment_first: *first,
                    offset: 0,
                }
            }
        };
        let mut cur = start;
        let mut file = open_segment(&self.dir, &segments, &mut cur)?;
        while cur.next < range.end {
            match read_frame(&mut file, cur.next)? {
                Some(Frame::Seal(seal, len)) => {
                    cur.offset += len;
                    if cur.next > range.start {
                        out.seals.push(seal);
                    }
                }
                Some(Frame::Record(payload)) => {
                    cur.offset += (FRAME_OVERHEAD + payload.len()) as u64;
                    if cur.next >= range.start {
                        out.records.push(payload);
                    }
                    cur.next += 1;
                }
                None => {
                    // End of this segment's frames (end of file, or a zero tail
                    // that must run to the end of the file): the next segment
                    // must start exactly here.
                    if !rest_is_zero(&mut file)? {
                        return Err(corrupt(cur.next, Defect::AfterZeroTail));
                    }
                    let next_seg = segments.iter().find(|(first, _)| *first > cur.segment_first);
                    match next_seg {
                        Some((first, _)) if *first == cur.next => {
                            cur = Cursor {
                                next: cur.next,
                                segment_first: *first,
                                offset: 0,
                            };
                            file = open_segment(&self.dir, &segments, &mut cur)?;
                        }
                        Some((first, _)) if *first < cur.next => {
                            return Err(corrupt(cur.next, Defect::Misplaced));
                        }
                        _ => return Err(corrupt(cur.next, Defect::Missing)),
                    }
                }
            }
        }
        // The seal of a batch ending at `range.end` sits right after its last
        // record. Whatever else is there (the next record, a write in progress,
        // damage) belongs to a later read.
        if let Ok(Some(Frame::Seal(seal, len))) = read_frame(&mut file, cur.next) {
            cur.offset += len;
            out.seals.push(seal);
        }
        if let Ok(mut saved) = self.cursor.lock() {
            *saved = Some(cur);
        }
        Ok(out)
    }

    /// The last seal: the last one in the newest segment that has one.
    fn last_seal_blocking(&self) -> Result<Option<SignedCheckpoint>, ReadError> {
        let segments = list_segments(&self.dir).map_err(|e| io_err("listing", &self.dir, e))?;
        for (first, path) in segments.iter().rev() {
            let bytes = std::fs::read(path).map_err(|e| io_err("reading", path, e))?;
            if frame::segment_kind(&bytes).is_none() {
                return Err(corrupt(*first, Defect::BadHeader));
            }
            let (mut offset, mut next, mut last) = (HEADER_LEN, *first, None);
            while let Decoded::Frame { seq, payload, len } = frame::decode_entry(&bytes[offset..], next) {
                if frame::is_seal(seq) {
                    last =
                        Some(SignedCheckpoint::from_seal_bytes(payload).map_err(|p| corrupt(next, Defect::Seal(p)))?);
                } else {
                    next += 1;
                }
                offset += len;
            }
            if last.is_some() {
                return Ok(last);
            }
        }
        Ok(None)
    }

    fn checkpoints_blocking(&self) -> Result<Vec<SignedCheckpoint>, ReadError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &path, e)),
        };
        if !frame::header_ok(&bytes, CHECKPOINT_MAGIC) {
            return Err(ReadError::BadCheckpoint {
                position: 0,
                problem: "bad checkpoint file header".into(),
            });
        }
        let mut out = Vec::new();
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let position = out.len() as u64;
            match frame::decode(rest, position) {
                Decoded::Frame { payload, len, .. } => {
                    let cp = SignedCheckpoint::from_json(payload)
                        .map_err(|problem| ReadError::BadCheckpoint { position, problem })?;
                    out.push(cp);
                    offset += len;
                }
                Decoded::Incomplete => break,
                Decoded::Corrupt(defect) => {
                    let extent = frame::declared_len(rest).map_or(usize::MAX, |l| l + FRAME_OVERHEAD);
                    if extent >= rest.len() {
                        break; // a torn final checkpoint: never acknowledged
                    }
                    return Err(ReadError::BadCheckpoint {
                        position,
                        problem: defect.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }
}

impl LogReader for FileReader {
    async fn len(&self) -> Result<u64, ReadError> {
        let this = self.clone();
        blocking(move || this.len_blocking()).await
    }

    async fn read(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, ReadError> {
        let this = self.clone();
        blocking(move || this.read_blocking(range).map(|r| r.records)).await
    }

    async fn read_sealed(&self, range: Range<u64>) -> Result<SealedRecords, ReadError> {
        let this = self.clone();
        blocking(move || this.read_blocking(range)).await
    }

    async fn last_seal(&self) -> Result<Option<SignedCheckpoint>, ReadError> {
        let this = self.clone();
        blocking(move || this.last_seal_blocking()).await
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, ReadError> {
        let this = self.clone();
        blocking(move || this.checkpoints_blocking()).await
    }
}

async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ReadError> {
    tokio::task::spawn_blocking(op).await.unwrap_or_else(|e| {
        Err(ReadError::Io {
            action: "running the reader",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })
    })
}

/// Opens the segment at `cur`, checking its header when starting at offset 0.
fn open_segment(dir: &Path, segments: &[(u64, PathBuf)], cur: &mut Cursor) -> Result<BufReader<File>, ReadError> {
    let path = segments
        .iter()
        .find(|(first, _)| *first == cur.segment_first)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| super::layout::segment_path(dir, cur.segment_first));
    let file = File::open(&path).map_err(|e| io_err("opening", &path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    if cur.offset == 0 {
        let mut header = [0u8; HEADER_LEN];
        if reader.read_exact(&mut header).is_err() || frame::segment_kind(&header).is_none() {
            return Err(corrupt(cur.segment_first, Defect::BadHeader));
        }
        cur.offset = HEADER_LEN as u64;
    } else {
        reader
            .seek(SeekFrom::Start(cur.offset))
            .map_err(|e| io_err("seeking", &path, e))?;
    }
    Ok(reader)
}

/// One frame of a segment: a record's bytes, or a batch seal and its length
/// on disk.
enum Frame {
    Record(Vec<u8>),
    Seal(SignedCheckpoint, u64),
}

/// Reads and checks one frame where `index` records precede it. `Ok(None)` at
/// a clean end of file, or where a zero tail starts: a frame of zero bytes
/// (never a valid frame; whoever goes on past it checks the rest with
/// [`rest_is_zero`]).
fn read_frame(file: &mut BufReader<File>, index: u64) -> Result<Option<Frame>, ReadError> {
    let mut buf = vec![0u8; 12];
    let got = read_full(file, &mut buf)?;
    if got < buf.len() {
        return match frame::is_zero(&buf[..got]) {
            true => Ok(None),
            false => Err(corrupt(index, Defect::Incomplete)),
        };
    }
    let len = frame::declared_len(&buf).unwrap_or(0);
    if len > MAX_PAYLOAD {
        return Err(corrupt(
            index,
            Defect::Frame(frame::FrameDefect::TooLarge { len: len as u64 }),
        ));
    }
    buf.resize(12 + len + 4, 0);
    let got = read_full(file, &mut buf[12..])?;
    if frame::is_zero(&buf[..12 + got]) {
        return Ok(None);
    }
    if got != len + 4 {
        return Err(corrupt(index, Defect::Incomplete));
    }
    match frame::decode_entry(&buf, index) {
        Decoded::Frame { seq, payload, len } if frame::is_seal(seq) => {
            let seal = SignedCheckpoint::from_seal_bytes(payload).map_err(|p| corrupt(index, Defect::Seal(p)))?;
            Ok(Some(Frame::Seal(seal, len as u64)))
        }
        Decoded::Frame { .. } => {
            buf.truncate(12 + len);
            buf.drain(..12);
            Ok(Some(Frame::Record(buf)))
        }
        Decoded::Corrupt(defect) => Err(corrupt(index, Defect::Frame(defect))),
        Decoded::Incomplete => Err(corrupt(index, Defect::Incomplete)),
    }
}

/// True when every byte from the reader's position to the end of the file is
/// zero: what may follow the frames of a segment.
fn rest_is_zero(file: &mut BufReader<File>) -> Result<bool, ReadError> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(file, &mut chunk)?;
        if !frame::is_zero(&chunk[..n]) {
            return Ok(false);
        }
        if n < chunk.len() {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(file: &mut BufReader<File>, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("reading", Path::new("segment"), e)),
        }
    }
    Ok(done)
}

/// Where the acknowledged log ends in the last segment `path` (first index
/// `first`), judged as crash recovery judges it but without changing
/// anything: in a sealed segment, at its last intact seal (records after it
/// were never acknowledged); in a legacy one, at its last intact record.
/// Damage followed by an intact seal (sealed) or any intact frame (legacy) is
/// damage to acknowledged records, reported with its index; so are non-zero
/// bytes further past the last seal than a torn write reaches. A zero tail
/// is the clean end.
fn acknowledged_end(path: &Path, first: u64) -> Result<u64, ReadError> {
    let bytes = std::fs::read(path).map_err(|e| io_err("reading", path, e))?;
    let kind = match frame::segment_kind(&bytes) {
        Some(kind) => kind,
        // A header torn while the segment was created: nothing in it yet.
        None if bytes.len() <= HEADER_LEN => return Ok(first),
        None => return Err(corrupt(first, Defect::BadHeader)),
    };
    let want = match kind {
        SegmentKind::Sealed => Want::Seal,
        SegmentKind::Legacy => Want::Any,
    };
    let (mut offset, mut next) = (HEADER_LEN, first);
    let mut acknowledged = first;
    // Where the last intact seal (or, legacy, record) ends: a torn write
    // starts there.
    let mut acknowledged_at = HEADER_LEN;
    while offset < bytes.len() {
        let defect = match frame::decode_entry(&bytes[offset..], next) {
            Decoded::Frame { seq, len, .. } if frame::is_seal(seq) => {
                if kind == SegmentKind::Legacy {
                    return Err(corrupt(next, Defect::Seal("a legacy segment holds a batch seal")));
                }
                acknowledged = next;
                offset += len;
                acknowledged_at = offset;
                continue;
            }
            Decoded::Frame { len, .. } => {
                next += 1;
                offset += len;
                if kind == SegmentKind::Legacy {
                    acknowledged = next;
                    acknowledged_at = offset;
                }
                continue;
            }
            // The zero tail of a preallocated segment: the clean end.
            Decoded::Incomplete | Decoded::Corrupt(_) if frame::is_zero(&bytes[offset..]) => break,
            Decoded::Incomplete => Defect::Incomplete,
            Decoded::Corrupt(defect) => Defect::Frame(defect),
        };
        if intact_frame_after(&bytes, offset, next, want).is_some() {
            return Err(corrupt(next, defect));
        }
        if beyond_torn_reach(&bytes, acknowledged_at).is_some() {
            return Err(corrupt(next, Defect::AfterZeroTail));
        }
        break;
    }
    Ok(acknowledged)
}

fn corrupt(index: u64, defect: Defect) -> ReadError {
    ReadError::Corrupt { index, defect }
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> ReadError {
    ReadError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
