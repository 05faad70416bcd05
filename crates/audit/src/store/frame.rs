//! On-disk framing shared by segment files and the checkpoint file.
//!
//! Every file starts with a 16-byte header: an 8-byte magic (`PCAUDSEG` for
//! record segments, `PCAUDCKP` for checkpoints), a little-endian `u32` format
//! version (1) and 4 reserved zero bytes. Then frames, back to back:
//!
//! ```text
//! +------------+--------------+-------------------+----------------------------------+
//! | len u32 LE | seq u64 LE   | payload (len B)   | crc32 u32 LE of len||seq||payload |
//! +------------+--------------+-------------------+----------------------------------+
//! ```
//!
//! `seq` is the record's log index (or the checkpoint's ordinal), so a frame
//! moved, dropped or duplicated is caught at its position. The CRC comes last
//! and is written last: a write torn anywhere leaves either an *incomplete*
//! frame (it runs past the end of the file) or a *corrupt* one (bad CRC). The
//! CRC is for crash detection only; tamper evidence is the Merkle tree and the
//! signed checkpoints.

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
const VERSION: u32 = 1;

/// The 16-byte header for a file with `magic`.
pub fn header(magic: [u8; 8]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&magic);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out
}

/// True when `bytes` starts with a complete, valid header for `magic`.
pub fn header_ok(bytes: &[u8], magic: [u8; 8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN] == header(magic)
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
    if seq != expected {
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
}
