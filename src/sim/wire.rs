//! Framing of the TWS API: the `API\0` greeting, length-prefixed frames, the text handshake reply
//! and protobuf message frames (`u32` length, `i32` message id + 200, payload).

use tokio::io::{AsyncRead, AsyncReadExt};

/// Offset TWS adds to a message id whose payload is protobuf.
pub const PROTOBUF_OFFSET: i32 = 200;

/// Largest request frame the simulator accepts. Requests are a few hundred bytes; IB's own
/// ceiling is 16 MiB (`0x00FFFFFF`), far more than a client ever needs to send us.
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;

/// Lowest and highest server versions the simulator can speak; ibapi 5.5 needs protobuf (≥ 213)
/// and the brief asks for 215–226.
pub const SERVER_VERSION_RANGE: (i32, i32) = (215, 226);

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the socket.
    #[error("connection closed")]
    Eof,
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A length prefix above the limit: the stream cannot be trusted any more.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A length prefix too short to hold a message id.
    #[error("frame of {0} bytes cannot hold a message id")]
    TooShort(usize),
    /// The greeting was not `API\0` followed by a version range.
    #[error("bad handshake: {0}")]
    BadHandshake(String),
}

/// Reads one length-prefixed body, refusing lengths outside `min..=max` before allocating.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, min: usize, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    if len < min {
        return Err(FrameError::TooShort(len));
    }
    let mut body = vec![0u8; len];
    read_exact(r, &mut body).await?;
    Ok(body)
}

async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Eof),
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Reads the client's greeting and returns its version range `(min, max)`.
pub async fn read_greeting<R: AsyncRead + Unpin>(r: &mut R) -> Result<(i32, i32), FrameError> {
    let mut api = [0u8; 4];
    read_exact(r, &mut api).await?;
    if &api != b"API\0" {
        return Err(FrameError::BadHandshake(format!("greeting {api:?}")));
    }
    let body = read_body(r, 1, 256).await?;
    let text = String::from_utf8_lossy(&body);
    parse_version_range(&text).ok_or_else(|| FrameError::BadHandshake(format!("version range {text:?}")))
}

/// Parses `v213..226` (or a single `v213`) into `(min, max)`.
pub fn parse_version_range(text: &str) -> Option<(i32, i32)> {
    let rest = text.trim_end_matches('\0').strip_prefix('v')?;
    let (lo, hi) = match rest.split_once("..") {
        Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
        None => {
            let v = rest.parse().ok()?;
            (v, v)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// The server version to answer a client range with, if the ranges overlap. A client whose range
/// lies above the simulator's gets the simulator's highest (as an older TWS answers, leaving the
/// client to decide); one below gets [`version_refusal`].
pub fn negotiate(client: (i32, i32)) -> Option<i32> {
    let lo = client.0.max(SERVER_VERSION_RANGE.0);
    let hi = client.1.min(SERVER_VERSION_RANGE.1);
    (lo <= hi).then_some(hi)
}

/// IB's code for a client whose API version the server does not speak ("Unsupported version"
/// in IB's own table of codes). Kept here rather than in `domain::codes`: only a client that
/// cannot speak protobuf ever sees it, and twslake's own client never is one.
pub const UNSUPPORTED_VERSION: i32 = 506;

/// What a client gets when its version range lies wholly below [`SERVER_VERSION_RANGE`] (ib_async
/// and ib_insync offer `v157..178` and speak only the older text protocol).
///
/// A real TWS would negotiate down and talk to such a client; the simulator speaks only the
/// protobuf versions, so it refuses at once rather than closing the socket and leaving the
/// client to wait for its own timeout. The refusal is an error message in the text framing — the
/// only framing such a client decodes — as a pre-error-time server sends it:
/// `4\0 2\0 -1\0 506\0 <text>\0` (message id 4, version 2, no request id, code, text) behind a
/// `u32` length, with no handshake reply before it. IB's own decoders (ibapi's `processErrorMsg`
/// with no server version yet, ib_insync's and ib_async's `error` wrapper) read it as error 506
/// for request −1; the socket is closed right after.
pub fn version_refusal(client: (i32, i32)) -> Vec<u8> {
    let (lo, hi) = SERVER_VERSION_RANGE;
    let text = format!(
        "Unsupported version: this gateway (twslake sim) speaks TWS API versions {lo}..{hi}, whose \
         messages are protobuf; the client offered v{}..{}. Connect with a client that offers \
         version {lo} or later (IB's ibapi 10.x, or the Rust ibapi crate).",
        client.0, client.1
    );
    text_message(&["4", "2", "-1", &UNSUPPORTED_VERSION.to_string(), &text])
}

/// A text-protocol message: NUL-terminated fields behind a `u32` length.
pub fn text_message(fields: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in fields {
        body.extend(f.bytes().filter(|b| *b != 0));
        body.push(0);
    }
    with_length(&body)
}

/// The handshake reply: a length-prefixed text body `"<version>\0<time>\0"`.
pub fn handshake_reply(version: i32, time: &str) -> Vec<u8> {
    let body = format!("{version}\0{time}\0");
    with_length(body.as_bytes())
}

/// A complete protobuf frame for message `msg_id`.
pub fn frame(msg_id: i32, msg: &impl prost::Message) -> Vec<u8> {
    let len = 4 + msg.encoded_len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&(msg_id + PROTOBUF_OFFSET).to_be_bytes());
    // Encoding into a Vec cannot run out of space.
    let _ = msg.encode(&mut out);
    out
}

/// Prefixes `body` with its big-endian `u32` length.
pub fn with_length(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a request body into its message id (offset removed, `None` for text framing) and payload.
pub fn split_id(body: &[u8]) -> Option<(Option<i32>, &[u8])> {
    let (head, payload) = body.split_first_chunk::<4>()?;
    let id = i32::from_be_bytes(*head);
    Some(((id > PROTOBUF_OFFSET).then(|| id - PROTOBUF_OFFSET), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        assert_eq!(parse_version_range("v213..226"), Some((213, 226)));
        assert_eq!(parse_version_range("v220"), Some((220, 220)));
        assert_eq!(parse_version_range("x1..2"), None);
        assert_eq!(parse_version_range("v9..1"), None);
        assert_eq!(negotiate((213, 226)), Some(226));
        assert_eq!(negotiate((213, 214)), None);
        assert_eq!(negotiate((100, 220)), Some(220));
    }

    #[test]
    fn the_version_refusal_is_a_text_error_message() {
        let frame = version_refusal((157, 178));
        let (len, body) = frame.split_at(4);
        assert_eq!(u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize, body.len());
        let text = String::from_utf8_lossy(body);
        let fields: Vec<&str> = text.trim_end_matches('\0').split('\0').collect();
        assert_eq!(fields[..4], ["4", "2", "-1", "506"]);
        assert!(fields[4].contains("v157..178") && fields[4].contains("215..226"), "{}", fields[4]);
        assert!(body.is_ascii() && body.ends_with(&[0]));
        assert_eq!(text_message(&["a\0b", ""]), with_length(b"ab\0\0"));
    }

    #[tokio::test]
    async fn oversized_and_short_frames_are_refused() {
        let big = (MAX_REQUEST_FRAME as u32 + 1).to_be_bytes();
        let mut r: &[u8] = &big;
        assert!(matches!(read_body(&mut r, 4, MAX_REQUEST_FRAME).await, Err(FrameError::TooLarge(_))));
        let short = [0u8, 0, 0, 2, 1, 2];
        let mut r: &[u8] = &short;
        assert!(matches!(read_body(&mut r, 4, MAX_REQUEST_FRAME).await, Err(FrameError::TooShort(2))));
        let trunc = [0u8, 0, 0, 9, 1];
        let mut r: &[u8] = &trunc;
        assert!(matches!(read_body(&mut r, 4, MAX_REQUEST_FRAME).await, Err(FrameError::Eof)));
    }
}
