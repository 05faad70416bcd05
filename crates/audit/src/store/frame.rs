//! On-disk framing shared by segment files and the checkpoint file.
//!
//! Every file starts with a 16-byte header: an 8-byte magic (`PCAUDSEG` for
//! record segments, `PCAUDCKP` for checkpoints), a little-endian `u32` format
//! version and 4 reserved zero bytes. Checkpoint files and *legacy* segments
//! (written before batch seals existed) are version 1; every segment this
//! version of the crate creates is version 2, a *sealed* segment: each batch
//! of records in it is followed by its seal frame (below). Then frames, back
//! to back:
//!
//! ```text
//! +------------+--------------+-------------------+----------------------------------+
//! | len u32 LE | seq u64 LE   | payload (len B)   | crc32 u32 LE of len||seq||payload |
//! +------------+--------------+-------------------+----------------------------------+
//! ```
//!
//! `seq` is the record's log index (or the checkpoint's ordinal), so a frame
//! moved, dropped or duplicated is caught at its position. A *seal frame*
//! carries [`SEAL_FLAG`]` | size` as its `seq`, where `size` is the tree size
//! right after the batch it closes (so it sits exactly after record
//! `size - 1`), and the batch's signed checkpoint as its payload
//! ([`crate::SignedCheckpoint::to_seal_bytes`]). Record indexes stay below
//! 2^63, so the two kinds never collide, and a version-1 segment never holds a
//! seal. The CRC comes last and is written last: a write torn anywhere leaves
//! either an *incomplete* frame (it runs past the end of the file) or a
//! *corrupt* one (bad CRC). The CRC is for crash detection only; tamper
//! evidence is the Merkle tree and the signatures (seals and checkpoints).
//!
//! ## Preallocated segments: the zero tail
//!
//! The writer zero-fills a segment ahead of its write position (real zero
//! bytes, synced: see `file`), so a segment may end in a *zero tail*: the
//! frames, then zero bytes to the end of the file. A segment ends at the
//! first frame position where the rest of the file is all zero bytes (or at
//! the end of the file). Sixteen zero bytes are never a frame (the CRC of
//! twelve zero bytes is not zero), so the first zero frame header is where
//! the written part ends, and everything after it must be zero too.
//!
//! A torn write can leave only bytes of the batch being written, which
//! starts at the end of the last intact seal and is at most [`TORN_REACH`]
//! bytes long (the writer writes at most [`MAX_WRITE`] bytes of records plus
//! one seal per write and sync). Non-zero bytes after the zeros further than
//! that from the last seal were not written by a crash: they are damage, and
//! open refuses (recovery), as the reader and `audit verify` report them.
//!
//! **No new version number.** Preallocated segments keep version 2: the
//! frames are the same, and only bytes after the last frame differ. A version
//! that does not know the zero tail sees, after the last seal, a corrupt
//! frame with no intact seal after it — a torn end — and cuts it back
//! (truncating the zeros) before it appends at the end of the file: it finds
//! exactly the records this version finds, and the file is a growing one
//! again, which this version reads and appends to as well. A new number
//! would instead make those versions refuse to start with "bad segment
//! header ... restore it from backup", a worse answer for a log that is
//! fine. Segments closed by rotation are cut to their last frame (see
//! `file`), so only the last segment carries a zero tail, the one place an
//! older version accepts a torn end.

/// Bytes of the file header.
pub const HEADER_LEN: usize = 16;
/// Bytes of frame overhead: len (4) + seq (8) + crc (4).
pub const FRAME_OVERHEAD: usize = 16;
/// Largest payload a frame may carry (a record is far smaller).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// Magic of record segment files.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PCAUDSEG";
/// Magic of the checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"PCAUDCKP";
/// Format version of checkpoint files and of legacy (unsealed) segments.
pub const VERSION_LEGACY: u32 = 1;
/// Format version of sealed segments: every batch ends with a seal frame.
pub const VERSION_SEALED: u32 = 2;
/// Set in the `seq` of a seal frame; the rest of `seq` is the tree size.
pub const SEAL_FLAG: u64 = 1 << 63;
/// Most bytes of record frames the writer puts into one write and sync (a
/// larger batch is written as several sealed batches, each synced before the
/// next); a single record frame larger than this goes alone. Records are at
/// most [`crate::MAX_RECORD_BYTES`] (1 MiB), so a record frame is at most
/// this plus [`FRAME_OVERHEAD`].
pub const MAX_WRITE: usize = 1024 * 1024;
/// Bytes of a seal frame, at most (a seal is about 130 bytes).
pub const MAX_SEAL_FRAME: usize = 4096;
/// How far past the end of the last intact seal a torn write can have left
/// bytes: one write of at most [`MAX_WRITE`] bytes of records (or one record
/// frame) and its seal. Non-zero bytes further out are damage.
pub const TORN_REACH: u64 = (MAX_WRITE + FRAME_OVERHEAD + MAX_SEAL_FRAME) as u64;

/// The 16-byte version-1 header for a file with `magic` (checkpoint files,
/// legacy segments).
pub fn header(magic: [u8; 8]) -> [u8; HEADER_LEN] {
    versioned_header(magic, VERSION_LEGACY)
}

/// The 16-byte header of a sealed (version 2) segment, the only kind new
/// segments are created with.
pub fn sealed_segment_header() -> [u8; HEADER_LEN] {
    versioned_header(SEGMENT_MAGIC, VERSION_SEALED)
}

fn versioned_header(magic: [u8; 8], version: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out
}

/// True when `bytes` starts with a complete, valid version-1 header for `magic`.
pub fn header_ok(bytes: &[u8], magic: [u8; 8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN] == header(magic)
}

/// Whether a segment holds sealed batches, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// Version 1: written before batch seals existed; no seal frames.
    Legacy,
    /// Version 2: every batch is followed by its seal frame.
    Sealed,
}

/// The kind of segment `bytes` starts with, or `None` when the header is not a
/// complete segment header of a known version.
pub fn segment_kind(bytes: &[u8]) -> Option<SegmentKind> {
    let head = bytes.get(..HEADER_LEN)?;
    if head == header(SEGMENT_MAGIC) {
        Some(SegmentKind::Legacy)
    } else if head == sealed_segment_header() {
        Some(SegmentKind::Sealed)
    } else {
        None
    }
}

/// True when every byte of `bytes` is zero: at a frame position, the zero
/// tail of a preallocated segment (or nothing at all).
pub fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// The length of `bytes` without its trailing zero bytes: where the written
/// part of a segment ends, at the latest.
pub fn written_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1)
}

/// True when `seq` is a seal frame's (the rest of it is the tree size).
pub fn is_seal(seq: u64) -> bool {
    seq & SEAL_FLAG != 0
}

/// Appends one encoded frame to `out`.
pub fn encode(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    // Payload sizes are bounded by MAX_PAYLOAD at the API edge.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Result of decoding the frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame and the number of bytes it occupies.
    Frame { seq: u64, payload: &'a [u8], len: usize },
    /// The buffer ends inside the frame: a torn tail, or not yet written.
    Incomplete,
    /// A complete frame that fails its checks.
    Corrupt(FrameDefect),
}

/// What is wrong with a complete frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameDefect {
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("frame carries sequence number {found} where {expected} belongs")]
    Sequence { expected: u64, found: u64 },
    #[error("frame declares a payload of {len} bytes, above the {MAX_PAYLOAD}-byte limit")]
    TooLarge { len: u64 },
}

/// Decodes the frame at the start of `buf`, expecting sequence `expected`.
pub fn decode(buf: &[u8], expected: u64) -> Decoded<'_> {
    decode_with(buf, |seq| seq == expected, expected)
}

/// Decodes the frame of a segment at the start of `buf` when `next` records
/// precede it: record `next` (`seq == next`) or the seal of a tree of `next`
/// records (`seq == SEAL_FLAG | next`). Tell them apart with [`is_seal`].
pub fn decode_entry(buf: &[u8], next: u64) -> Decoded<'_> {
    decode_with(buf, |seq| seq == next || seq == SEAL_FLAG | next, next)
}

fn decode_with(buf: &[u8], accept: impl Fn(u64) -> bool, expected: u64) -> Decoded<'_> {
    let Some(len) = read_u32(buf, 0) else {
        return Decoded::Incomplete;
    };
    let len = len as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt(FrameDefect::TooLarge { len: len as u64 });
    }
    let total = FRAME_OVERHEAD + len;
    if buf.len() < total {
        return Decoded::Incomplete;
    }
    let body_end = 12 + len;
    let (Some(seq), Some(crc)) = (read_u64(buf, 4), read_u32(buf, body_end)) else {
        return Decoded::Incomplete;
    };
    if crc32fast::hash(&buf[..body_end]) != crc {
        return Decoded::Corrupt(FrameDefect::Checksum);
    }
    if !accept(seq) {
        return Decoded::Corrupt(FrameDefect::Sequence { expected, found: seq });
    }
    Decoded::Frame {
        seq,
        payload: &buf[12..body_end],
        len: total,
    }
}

/// The payload length declared by a frame header, if the header is complete.
pub fn declared_len(header: &[u8]) -> Option<usize> {
    read_u32(header, 0).map(|l| l as usize)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_and_corrupt() {
        let mut buf = Vec::new();
        encode(7, b"hello", &mut buf);
        assert_eq!(buf.len(), FRAME_OVERHEAD + 5);
        assert_eq!(
            decode(&buf, 7),
            Decoded::Frame {
                seq: 7,
                payload: b"hello",
                len: buf.len()
            }
        );
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut], 7), Decoded::Incomplete, "cut at {cut}");
        }
        assert_eq!(
            decode(&buf, 8),
            Decoded::Corrupt(FrameDefect::Sequence { expected: 8, found: 7 })
        );
        let mut flipped = buf.clone();
        flipped[13] ^= 1;
        assert_eq!(decode(&flipped, 7), Decoded::Corrupt(FrameDefect::Checksum));
    }

    #[test]
    fn seal_frames_sit_after_the_records_they_seal() {
        let mut buf = Vec::new();
        encode(SEAL_FLAG | 8, b"seal", &mut buf);
        match decode_entry(&buf, 8) {
            Decoded::Frame { seq, .. } => assert!(is_seal(seq) && seq & !SEAL_FLAG == 8),
            other => panic!("{other:?}"),
        }
        // A seal of another size, or a seal where the checkpoint file expects an ordinal.
        assert!(matches!(
            decode_entry(&buf, 9),
            Decoded::Corrupt(FrameDefect::Sequence { .. })
        ));
        assert!(matches!(
            decode(&buf, 8),
            Decoded::Corrupt(FrameDefect::Sequence { .. })
        ));
        assert_eq!(segment_kind(&sealed_segment_header()), Some(SegmentKind::Sealed));
        assert_eq!(segment_kind(&header(SEGMENT_MAGIC)), Some(SegmentKind::Legacy));
        assert_eq!(segment_kind(&header(CHECKPOINT_MAGIC)), None);
    }

    #[test]
    fn a_zero_frame_is_never_a_frame() {
        let zeros = [0u8; 64];
        assert!(is_zero(&zeros));
        assert!(matches!(decode(&zeros, 0), Decoded::Corrupt(FrameDefect::Checksum)));
        assert!(matches!(
            decode_entry(&zeros, 0),
            Decoded::Corrupt(FrameDefect::Checksum)
        ));
        let mut buf = Vec::new();
        encode(3, b"x", &mut buf);
        let framed = buf.len();
        buf.extend_from_slice(&zeros);
        assert_eq!(
            written_len(&buf),
            framed - buf[..framed].iter().rev().take_while(|b| **b == 0).count()
        );
        assert_eq!(written_len(&zeros), 0);
        assert!(TORN_REACH as usize > crate::MAX_RECORD_BYTES + FRAME_OVERHEAD + 130);
    }
}
