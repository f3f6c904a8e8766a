//! smux v1 framing, client side (`ssm.md` §3): the byte stream inside the
//! Output payloads of a mux port-forwarding session. Frames only; the
//! session logic (streams, keepalive) is built on top.
//!
//! Frame layout: version (1 byte, always 1), cmd (1 byte), length (u16
//! **little-endian**), stream id (u32 **little-endian**), then `length`
//! data bytes, only for PSH.
//!
//! Written by hand rather than with a smux crate on purpose: the fake agent
//! in `session-testkit` uses a *different* implementation (the
//! `async_smux` crate), so the client is never tested only against its own
//! library. The protocol subset is small (SYN, FIN, PSH, NOP; `ssm.md` §3
//! estimates 300–400 lines with the session logic).
//!
//! Stricter than xtaci/smux on receipt: cmd 4 (UPD, a v2 command) and
//! unknown cmds are protocol errors here, as is data on a frame other than
//! PSH (xtaci would not read it and lose the frame boundaries).

/// The only version spoken.
pub const VERSION: u8 = 1;
/// The size of a frame header.
pub const HEADER_LEN: usize = 8;
/// The most data one frame can carry (the u16 length).
pub const MAX_DATA_LEN: usize = u16::MAX as usize;
/// The size writers split data at, like xtaci's default `MaxFrameSize`;
/// [`psh_frames`] uses it.
pub const WRITE_SPLIT: usize = 32_768;

/// A frame command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// 0: open a stream.
    Syn,
    /// 1: end of the sender's side of a stream.
    Fin,
    /// 2: data.
    Psh,
    /// 3: keepalive, stream id 0.
    Nop,
}

impl Cmd {
    /// The byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Syn => 0,
            Self::Fin => 1,
            Self::Psh => 2,
            Self::Nop => 3,
        }
    }

    /// The command of a byte; 4 (v2's UPD) and above are errors.
    pub fn from_u8(byte: u8) -> Result<Self, SmuxError> {
        match byte {
            0 => Ok(Self::Syn),
            1 => Ok(Self::Fin),
            2 => Ok(Self::Psh),
            3 => Ok(Self::Nop),
            other => Err(SmuxError::UnknownCmd(other)),
        }
    }
}

/// An smux protocol error. A decoding error ends the smux session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmuxError {
    /// The version byte is not 1.
    #[error("smux version {0}, only version 1 is spoken")]
    UnsupportedVersion(u8),
    /// A cmd other than SYN, FIN, PSH or NOP (4 is v2's UPD).
    #[error("smux cmd {0} is not a v1 command")]
    UnknownCmd(u8),
    /// A SYN, FIN or NOP frame with data.
    #[error("smux {cmd:?} frame with {len} data bytes")]
    DataOnControlFrame {
        /// The command.
        cmd: Cmd,
        /// The length field.
        len: usize,
    },
    /// More data than a frame holds (65,535 bytes).
    #[error("{len} bytes do not fit one smux frame")]
    DataTooLong {
        /// The data length.
        len: usize,
    },
    /// Every odd stream id has been used: the session takes no new streams.
    #[error("smux stream ids exhausted")]
    StreamIdsExhausted,
}

/// One smux frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub cmd: Cmd,
    /// The stream (0 for NOP).
    pub stream_id: u32,
    /// The data; empty unless `cmd` is PSH.
    pub data: Vec<u8>,
}

impl Frame {
    /// SYN: open `stream_id`.
    pub fn syn(stream_id: u32) -> Self {
        Self {
            cmd: Cmd::Syn,
            stream_id,
            data: Vec::new(),
        }
    }

    /// FIN: end of our side of `stream_id`.
    pub fn fin(stream_id: u32) -> Self {
        Self {
            cmd: Cmd::Fin,
            stream_id,
            data: Vec::new(),
        }
    }

    /// NOP on stream 0.
    pub fn nop() -> Self {
        Self {
            cmd: Cmd::Nop,
            stream_id: 0,
            data: Vec::new(),
        }
    }

    /// PSH: `data` (at most [`MAX_DATA_LEN`] bytes, or encoding fails) on
    /// `stream_id`.
    pub fn psh(stream_id: u32, data: Vec<u8>) -> Self {
        Self {
            cmd: Cmd::Psh,
            stream_id,
            data,
        }
    }

    /// Appends the frame's bytes to `out`; on error nothing is appended.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), SmuxError> {
        let len = self.data.len();
        if self.cmd != Cmd::Psh && len != 0 {
            return Err(SmuxError::DataOnControlFrame { cmd: self.cmd, len });
        }
        let len16 = u16::try_from(len).map_err(|_| SmuxError::DataTooLong { len })?;
        out.reserve(HEADER_LEN + len);
        out.push(VERSION);
        out.push(self.cmd.to_u8());
        out.extend_from_slice(&len16.to_le_bytes());
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        out.extend_from_slice(&self.data);
        Ok(())
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, SmuxError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

/// `data` as PSH frames on `stream_id` of at most [`WRITE_SPLIT`] bytes
/// each (none for empty data).
pub fn psh_frames(stream_id: u32, data: &[u8]) -> impl Iterator<Item = Frame> + '_ {
    data.chunks(WRITE_SPLIT)
        .map(move |chunk| Frame::psh(stream_id, chunk.to_vec()))
}

/// An incremental decoder: feed it byte chunks as they come (a frame may
/// span several chunks, a chunk may hold several frames), take frames out.
///
/// After an error it stays failed and returns the same error.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    start: usize,
    failed: Option<SmuxError>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SmuxError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match parse(&self.buf[self.start..]) {
            Ok(Some((frame, used))) => {
                self.start += used;
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.failed = Some(err.clone());
                self.buf = Vec::new();
                self.start = 0;
                Err(err)
            }
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// One frame at the start of `bytes` and the bytes it took, or `None` if
/// `bytes` is too short. Header errors are reported as soon as the header
/// bytes that show them are there.
fn parse(bytes: &[u8]) -> Result<Option<(Frame, usize)>, SmuxError> {
    let Some(&version) = bytes.first() else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(SmuxError::UnsupportedVersion(version));
    }
    let Some(&cmd) = bytes.get(1) else {
        return Ok(None);
    };
    let cmd = Cmd::from_u8(cmd)?;
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if cmd != Cmd::Psh && len != 0 {
        return Err(SmuxError::DataOnControlFrame { cmd, len });
    }
    let stream_id = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let Some(data) = bytes.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let frame = Frame {
        cmd,
        stream_id,
        data: data.to_vec(),
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

/// The client's stream ids: 3, 5, 7, … (the counter starts at 1 and adds 2
/// before each use, as xtaci's client does); refuses once the u32 wraps.
#[derive(Debug, Clone)]
pub struct StreamIds {
    last: u32,
}

impl Default for StreamIds {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamIds {
    /// The allocator of a new client session.
    pub fn new() -> Self {
        Self { last: 1 }
    }

    /// The next id, or [`SmuxError::StreamIdsExhausted`] after 4,294,967,295.
    pub fn allocate(&mut self) -> Result<u32, SmuxError> {
        let next = self
            .last
            .checked_add(2)
            .ok_or(SmuxError::StreamIdsExhausted)?;
        self.last = next;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace(' ', "")).unwrap()
    }

    /// The smux vectors of `ssm.md` §6.
    #[test]
    fn golden_vectors() {
        let cases = [
            (Frame::syn(3), "01 00 0000 03000000"),
            (
                Frame::psh(3, b"ping".to_vec()),
                "01 02 0400 03000000 70696e67",
            ),
            (Frame::fin(3), "01 01 0000 03000000"),
            (Frame::nop(), "01 03 0000 00000000"),
            (Frame::syn(5), "01 00 0000 05000000"),
        ];
        for (frame, hex) in cases {
            assert_eq!(frame.encode().unwrap(), bytes(hex), "{frame:?}");
            let mut dec = FrameDecoder::new();
            dec.push(&bytes(hex));
            assert_eq!(dec.next_frame().unwrap(), Some(frame));
            assert_eq!(dec.next_frame().unwrap(), None);
            assert_eq!(dec.buffered(), 0);
        }

        let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let encoded = Frame::psh(5, data.clone()).encode().unwrap();
        assert_eq!(encoded[..8], bytes("01 02 2c01 05000000")[..]);
        assert_eq!(encoded[8..], data[..]);
        let mut dec = FrameDecoder::new();
        dec.push(&encoded[..100]);
        assert_eq!(dec.next_frame().unwrap(), None);
        dec.push(&encoded[100..]);
        assert_eq!(dec.next_frame().unwrap(), Some(Frame::psh(5, data)));
    }

    #[test]
    fn protocol_errors() {
        let mut dec = FrameDecoder::new();
        dec.push(&bytes("02 00 0000 03000000"));
        assert_eq!(dec.next_frame(), Err(SmuxError::UnsupportedVersion(2)));
        // It stays failed.
        dec.push(&bytes("01 03 0000 00000000"));
        assert_eq!(dec.next_frame(), Err(SmuxError::UnsupportedVersion(2)));

        let mut dec = FrameDecoder::new();
        dec.push(&bytes("01 04"));
        assert_eq!(dec.next_frame(), Err(SmuxError::UnknownCmd(4)));
        let mut dec = FrameDecoder::new();
        dec.push(&bytes("01 09 0000 03000000"));
        assert_eq!(dec.next_frame(), Err(SmuxError::UnknownCmd(9)));
        let mut dec = FrameDecoder::new();
        dec.push(&bytes("01 01 0100 03000000 00"));
        assert_eq!(
            dec.next_frame(),
            Err(SmuxError::DataOnControlFrame {
                cmd: Cmd::Fin,
                len: 1
            })
        );
    }

    #[test]
    fn encode_limits_and_split() {
        assert!(Frame::psh(3, vec![0; MAX_DATA_LEN]).encode().is_ok());
        assert_eq!(
            Frame::psh(3, vec![0; MAX_DATA_LEN + 1]).encode(),
            Err(SmuxError::DataTooLong { len: 65_536 })
        );
        let mut fin = Frame::fin(3);
        fin.data = vec![1];
        assert!(fin.encode().is_err());

        let frames: Vec<Frame> = psh_frames(7, &vec![9; 70_000]).collect();
        let lens: Vec<usize> = frames.iter().map(|f| f.data.len()).collect();
        assert_eq!(lens, [32_768, 32_768, 4_464]);
        assert_eq!(psh_frames(7, &[]).count(), 0);
    }

    #[test]
    fn stream_ids_are_odd_from_three_and_refuse_on_wrap() {
        let mut ids = StreamIds::new();
        assert_eq!(ids.allocate(), Ok(3));
        assert_eq!(ids.allocate(), Ok(5));
        assert_eq!(ids.allocate(), Ok(7));

        let mut ids = StreamIds { last: u32::MAX - 4 };
        assert_eq!(ids.allocate(), Ok(u32::MAX - 2));
        assert_eq!(ids.allocate(), Ok(u32::MAX));
        assert_eq!(ids.allocate(), Err(SmuxError::StreamIdsExhausted));
        assert_eq!(ids.allocate(), Err(SmuxError::StreamIdsExhausted));
    }

    fn frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            any::<u32>().prop_map(Frame::syn),
            any::<u32>().prop_map(Frame::fin),
            Just(Frame::nop()),
            (
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..2000)
            )
                .prop_map(|(id, data)| Frame::psh(id, data)),
        ]
    }

    /// Feeds `stream` in chunks cut at `cuts` (fractions), collecting frames
    /// until the first error.
    fn feed(stream: &[u8], cuts: &[prop::sample::Index]) -> (Vec<Frame>, Option<SmuxError>) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::new();
        let mut out = Vec::new();
        for pair in points.windows(2) {
            dec.push(&stream[pair[0]..pair[1]]);
            loop {
                match dec.next_frame() {
                    Ok(Some(frame)) => out.push(frame),
                    Ok(None) => break,
                    Err(err) => return (out, Some(err)),
                }
            }
        }
        (out, None)
    }

    proptest! {
        #[test]
        fn frames_split_anywhere_decode_the_same(
            frames in proptest::collection::vec(frame(), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let mut stream = Vec::new();
            for f in &frames {
                f.encode_into(&mut stream).unwrap();
            }
            let (decoded, err) = feed(&stream, &cuts);
            prop_assert_eq!(err, None);
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn random_bytes_never_panic(
            stream in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let _ = feed(&stream, &cuts);
        }

        #[test]
        fn mostly_valid_streams_never_panic(
            frames in proptest::collection::vec(frame(), 1..8),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut stream = Vec::new();
            for f in &frames {
                f.encode_into(&mut stream).unwrap();
            }
            let i = at.index(stream.len());
            stream[i] = byte;
            let _ = feed(&stream, &cuts);
        }
    }
}
