//! The one framed protocol socle's processes speak over pipes: `socle serve` and its
//! child processes (`socle task-attempt`, `socle query-worker`, `socle catalog-snapshot`).
//!
//! A frame is a header, one line of JSON (a serialized message, never containing a raw
//! newline: JSON escapes them), optionally followed by a body of raw bytes whose length
//! the header states (the query process's answers). So the stream stays readable with
//! `cat`, a body costs no escaping, and either side can tell a frame from stray output: a
//! line that is not a message is [`Incoming::Text`], handed to the caller (the task
//! process's log takes it, the query protocol treats it as an error).
//!
//! Reading is bounded: a header longer than the reader's limit is skipped up to its end
//! and reported as [`FrameError::TooLong`], so a runaway peer cannot make the other side
//! buffer without limit, and the stream is still in step afterwards. Writing puts each
//! frame in one buffer so that frames from concurrent writers never interleave when they
//! share one writer task.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Default longest header line: 16 MiB (a task attempt's request or one query).
pub const MAX_HEADER: usize = 16 << 20;

/// What a reader got from its peer.
#[derive(Debug, PartialEq)]
pub enum Incoming<T> {
    /// A message.
    Frame(T),
    /// A line that is not one (a library printing to stdout, a panic message), without
    /// its line end, and why it is not a message.
    Text { line: String, error: String },
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot read from the {peer}: {source}")]
    Io {
        peer: &'static str,
        #[source]
        source: io::Error,
    },
    /// The line was skipped; reading may go on.
    #[error("a line from the {peer} is longer than {max} bytes (skipped)")]
    TooLong { peer: &'static str, max: usize },
    #[error("the {peer} stopped in the middle of a frame")]
    Truncated { peer: &'static str },
}

/// Reads frames from one peer (a child's stdout, or stdin in the child).
pub struct Reader<R> {
    inner: BufReader<R>,
    /// Who writes to it, for error messages: "query process", "server".
    peer: &'static str,
    max: usize,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A reader of `peer`'s frames whose headers are at most [`MAX_HEADER`] bytes.
    pub fn new(inner: R, peer: &'static str) -> Self {
        Self::with_max(inner, peer, MAX_HEADER)
    }

    /// A reader whose headers are at most `max` bytes.
    pub fn with_max(inner: R, peer: &'static str, max: usize) -> Self {
        Self {
            inner: BufReader::new(inner),
            peer,
            max,
            line: Vec::new(),
        }
    }

    /// The next frame's header, or `None` once the peer closed the stream between frames.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<Incoming<T>>, FrameError> {
        if !self.read_line().await? {
            return Ok(None);
        }
        let line = trim_end(&self.line);
        Ok(Some(match serde_json::from_slice(line) {
            Ok(message) => Incoming::Frame(message),
            Err(e) => Incoming::Text {
                line: String::from_utf8_lossy(line).into_owned(),
                error: e.to_string(),
            },
        }))
    }

    /// The body of `len` bytes that follows the last header.
    pub async fn body(&mut self, len: usize) -> Result<Vec<u8>, FrameError> {
        let mut body = vec![0; len];
        match self.inner.read_exact(&mut body).await {
            Ok(_) => Ok(body),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(FrameError::Truncated { peer: self.peer })
            }
            Err(source) => Err(FrameError::Io {
                peer: self.peer,
                source,
            }),
        }
    }

    /// Reads one line into `self.line`, at most `max` bytes kept; false at the end.
    async fn read_line(&mut self) -> Result<bool, FrameError> {
        self.line.clear();
        let mut too_long = false;
        loop {
            let io = |source| FrameError::Io {
                peer: self.peer,
                source,
            };
            let available = self.inner.fill_buf().await.map_err(io)?;
            if available.is_empty() {
                // The end: a last line without its newline still counts.
                if too_long {
                    return Err(FrameError::TooLong {
                        peer: self.peer,
                        max: self.max,
                    });
                }
                return Ok(!self.line.is_empty());
            }
            let (chunk, done) = match memchr(available) {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let used = chunk.len();
            let content = used - usize::from(done);
            if !too_long && self.line.len() + content <= self.max {
                self.line.extend_from_slice(chunk);
            } else {
                too_long = true;
                self.line.clear();
            }
            self.inner.consume(used);
            if done {
                if too_long {
                    return Err(FrameError::TooLong {
                        peer: self.peer,
                        max: self.max,
                    });
                }
                return Ok(true);
            }
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn trim_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `header` as a frame without a body: one line of JSON.
pub fn encode<T: Serialize>(header: &T) -> Vec<u8> {
    encode_with_body(header, &[])
}

/// `header` followed by `body` as one frame (the header states the body's length).
pub fn encode_with_body<T: Serialize>(header: &T, body: &[u8]) -> Vec<u8> {
    // Serializing socle's own message types cannot fail (string keys, no custom errors).
    let mut out = serde_json::to_vec(header).expect("a message serializes");
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Writes `header` as one frame to a blocking writer and flushes it (a child process's
/// stdout, when it answers once).
pub fn write_sync<W: io::Write, T: Serialize>(out: &mut W, header: &T) -> io::Result<()> {
    out.write_all(&encode(header))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Message {
        id: u64,
        #[serde(default)]
        len: usize,
        text: String,
    }

    fn message(id: u64, text: &str) -> Message {
        Message {
            id,
            len: 0,
            text: text.into(),
        }
    }

    #[tokio::test]
    async fn frames_bodies_and_stray_text_come_back_in_order() {
        let mut wire = encode(&message(1, "a\nb"));
        wire.extend(b"warning: a library printed this\n");
        let body = b"raw \n bytes\n";
        wire.extend(encode_with_body(
            &Message {
                id: 2,
                len: body.len(),
                text: String::new(),
            },
            body,
        ));
        wire.extend(encode(&message(3, "last")));
        let mut r = Reader::new(&wire[..], "test peer");
        assert_eq!(
            r.next::<Message>().await.unwrap(),
            Some(Incoming::Frame(message(1, "a\nb")))
        );
        match r.next::<Message>().await.unwrap() {
            Some(Incoming::Text { line, .. }) => {
                assert_eq!(line, "warning: a library printed this")
            }
            other => panic!("expected text, got {other:?}"),
        }
        let Some(Incoming::Frame(m)) = r.next::<Message>().await.unwrap() else {
            panic!("expected a frame");
        };
        assert_eq!(r.body(m.len).await.unwrap(), body);
        assert_eq!(
            r.next::<Message>().await.unwrap(),
            Some(Incoming::Frame(message(3, "last")))
        );
        assert_eq!(r.next::<Message>().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_line_past_the_limit_is_skipped_and_reading_goes_on() {
        let mut wire = vec![b'x'; 100];
        wire.push(b'\n');
        wire.extend(encode(&message(7, "after")));
        // A pipe that hands over 8 bytes at a time: the long line spans many reads.
        let (mut tx, rx) = tokio::io::duplex(8);
        tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut tx, &wire).await });
        let mut r = Reader::with_max(rx, "test peer", 50);
        let err = r.next::<Message>().await.unwrap_err();
        assert!(matches!(err, FrameError::TooLong { max: 50, .. }), "{err}");
        assert!(err.to_string().contains("test peer"), "{err}");
        assert_eq!(
            r.next::<Message>().await.unwrap(),
            Some(Incoming::Frame(message(7, "after")))
        );
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_is_read() {
        let m = message(1, "fits");
        let line = encode(&m);
        let max = line.len() - 1; // without its newline
        let mut r = Reader::with_max(&line[..], "test peer", max);
        assert_eq!(r.next::<Message>().await.unwrap(), Some(Incoming::Frame(m)));
        let mut r = Reader::with_max(&line[..], "test peer", max - 1);
        assert!(matches!(
            r.next::<Message>().await,
            Err(FrameError::TooLong { .. })
        ));
    }

    #[tokio::test]
    async fn a_short_body_or_a_last_line_without_newline() {
        let mut r = Reader::new(&b"{\"id\":1,\"text\":\"x\"}"[..], "test peer");
        assert_eq!(
            r.next::<Message>().await.unwrap(),
            Some(Incoming::Frame(message(1, "x")))
        );
        let mut r = Reader::new(&b"abc"[..], "query process");
        let err = r.body(10).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the query process stopped in the middle of a frame"
        );
    }

    #[test]
    fn a_blocking_writer_writes_one_line() {
        let mut out = Vec::new();
        write_sync(&mut out, &message(4, "x")).unwrap();
        assert_eq!(out, b"{\"id\":4,\"len\":0,\"text\":\"x\"}\n");
    }
}
