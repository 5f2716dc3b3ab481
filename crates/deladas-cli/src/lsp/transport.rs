//! JSON-RPC over stdin and stdout, framed with `Content-Length` headers.
//!
//! lsp-server's own stdio transport stops reading at the first payload that
//! is not a JSON-RPC message; this one answers such a payload with the
//! JSON-RPC error it calls for (`-32700` parse error, `-32600` invalid
//! request) and goes on reading, so a client's bad message never takes the
//! server down. Only the end of input (or a frame whose length cannot be
//! read) stops the reader.

use std::io::{BufRead, Read, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use lsp_server::{Connection, ErrorCode, Message, RequestId, Response};

/// The largest message accepted (a whole document fits many times over).
const MAX_MESSAGE: usize = 256 << 20;

/// Threads that move messages between the channels and stdio.
pub struct IoThreads {
    writer: JoinHandle<()>,
}

impl IoThreads {
    /// Waits until every message sent has been written.
    pub fn join(self) {
        let _ = self.writer.join();
    }
}

/// A connection over the process's stdin and stdout.
pub fn stdio() -> (Connection, IoThreads) {
    let (to_writer, from_server) = bounded::<Message>(64);
    let (to_server, from_reader) = bounded::<Message>(64);
    let writer = std::thread::spawn(move || {
        for msg in from_server {
            let mut out = std::io::stdout().lock();
            if msg.write(&mut out).is_err() {
                break;
            }
        }
    });
    let replies = to_writer.clone();
    std::thread::spawn(move || reader(to_server, replies));
    (Connection { sender: to_writer, receiver: from_reader }, IoThreads { writer })
}

fn reader(to_server: Sender<Message>, replies: Sender<Message>) {
    let stdin = std::io::stdin();
    let mut frames = FrameReader::new(stdin.lock());
    loop {
        let body = match frames.frame() {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(Frame::Fatal(why)) => {
                eprintln!("deladas lsp: cannot read from stdin: {why}");
                return;
            }
            Err(Frame::Bad(why)) => {
                raw_error(ErrorCode::ParseError, &why);
                continue;
            }
        };
        let Ok(text) = String::from_utf8(body) else {
            raw_error(ErrorCode::ParseError, "the message is not UTF-8");
            continue;
        };
        match serde_json::from_str::<Message>(&text) {
            Ok(msg) => {
                let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
                if to_server.send(msg).is_err() || exit {
                    return;
                }
            }
            Err(e) => match serde_json::from_str::<serde_json::Value>(&text) {
                Err(_) => raw_error(ErrorCode::ParseError, &format!("the message is not JSON: {e}")),
                Ok(v) => {
                    // Valid JSON but not a message: answer by id when it has one.
                    let id = match v.get("id") {
                        Some(serde_json::Value::Number(n)) => {
                            n.as_i64().and_then(|n| i32::try_from(n).ok()).map(RequestId::from)
                        }
                        Some(serde_json::Value::String(s)) => Some(RequestId::from(s.clone())),
                        _ => None,
                    };
                    let why = format!("not a JSON-RPC request, response or notification: {e}");
                    match id {
                        Some(id) if v.get("method").is_some() => {
                            let _ = replies.send(Response::new_err(id, ErrorCode::InvalidRequest as i32, why).into());
                        }
                        // A malformed response from the client, or no id: nothing to answer by id.
                        _ if v.get("method").is_none() && v.get("id").is_some() => {}
                        _ => raw_error(ErrorCode::InvalidRequest, &why),
                    }
                }
            },
        }
    }
}

/// Why a frame could not be read.
enum Frame {
    /// The frame was skipped; reading can go on.
    Bad(String),
    /// Input ended or broke mid-frame.
    Fatal(String),
}

/// The longest header line read; a longer one is garbage.
const MAX_HEADER_LINE: u64 = 8 << 10;

/// Where a `Content-Length` header starts in a line of garbage (a body
/// longer than announced runs into the next frame's header), if it does.
fn resync(line: &[u8]) -> Option<usize> {
    line.windows(15).position(|w| w.eq_ignore_ascii_case(b"content-length:"))
}

/// Reads `Content-Length`-framed messages. A frame that cannot be read (bad,
/// negative, huge, missing or conflicting `Content-Length`, a header line
/// that is not one) is reported once and skipped up to the next line that
/// starts with — or contains — a `Content-Length` header, so that one bad
/// frame costs only itself; the rest of a body longer than announced is
/// skipped the same way.
struct FrameReader<R> {
    input: R,
    /// A line to read again (a header found inside garbage).
    pending: Option<Vec<u8>>,
    /// Skipping the rest of a bad frame: garbage is not reported again.
    skipping: bool,
}

impl<R: BufRead> FrameReader<R> {
    fn new(input: R) -> Self {
        FrameReader { input, pending: None, skipping: false }
    }

    /// One line (at most `MAX_HEADER_LINE` bytes are kept: of a longer line,
    /// the start and the end); `None` at the end of input.
    fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(l) = self.pending.take() {
            return Ok(Some(l));
        }
        let mut line = vec![];
        let n = (&mut self.input).take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") && n as u64 >= MAX_HEADER_LINE {
            // Skip the rest of the line in bounded pieces, keeping the last
            // piece (a header may start there).
            let mut rest = vec![];
            loop {
                rest.clear();
                let m = (&mut self.input).take(MAX_HEADER_LINE).read_until(b'\n', &mut rest)?;
                if m == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            line.truncate(64);
            line.extend_from_slice(&rest);
        }
        Ok(Some(line))
    }

    /// The next message body; `None` at the end of input.
    fn frame(&mut self) -> Result<Option<Vec<u8>>, Frame> {
        let r = self.read_frame();
        self.skipping = matches!(r, Err(Frame::Bad(_)));
        r
    }

    fn read_frame(&mut self) -> Result<Option<Vec<u8>>, Frame> {
        let mut length: Option<usize> = None;
        let mut bad: Option<String> = None;
        let mut in_header = false;
        loop {
            let line = match self.line() {
                Ok(Some(l)) => l,
                Ok(None) => {
                    return match (in_header, bad) {
                        (_, Some(why)) if !self.skipping || in_header => Err(Frame::Bad(why)),
                        (false, _) => Ok(None),
                        (true, _) => Err(Frame::Fatal("input ended inside a header".into())),
                    }
                }
                Err(e) => return Err(Frame::Fatal(e.to_string())),
            };
            let text = String::from_utf8_lossy(&line);
            let l = text.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if !in_header {
                    continue; // a blank line between messages
                }
                break;
            }
            let header = l
                .split_once(':')
                .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            match header {
                Some((k, v)) if k.eq_ignore_ascii_case("content-length") => {
                    in_header = true;
                    match v.trim().parse::<usize>() {
                        Ok(n) if n > MAX_MESSAGE => {
                            bad = Some(format!("a message of {n} bytes is larger than the {MAX_MESSAGE} accepted"))
                        }
                        Ok(n) => match length {
                            Some(m) if m != n => {
                                bad = Some(format!("two different Content-Length headers ({m} and {n})"))
                            }
                            _ => length = Some(n),
                        },
                        Err(_) => bad = Some(format!("bad Content-Length `{}`", v.trim())),
                    }
                }
                // Another header (`Content-Type`), in a frame.
                Some(_) if in_header => {}
                _ => {
                    // Garbage: the rest of a bad frame's body, or of a body
                    // longer than announced. A header may start inside it.
                    if let Some(at) = resync(&line).filter(|&at| at > 0) {
                        self.pending = Some(line[at..].to_vec());
                        if in_header || !self.skipping {
                            return Err(Frame::Bad(bad.unwrap_or_else(|| "bytes outside of any message".into())));
                        }
                        continue;
                    }
                    if in_header {
                        // A frame whose header broke off: drop it.
                        return Err(Frame::Bad(bad.unwrap_or_else(|| "a malformed header".into())));
                    }
                    if !self.skipping {
                        let shown: String = l.chars().take(60).collect();
                        return Err(Frame::Bad(format!("not a message header: `{shown}`")));
                    }
                }
            }
        }
        if let Some(why) = bad {
            return Err(Frame::Bad(why));
        }
        let Some(n) = length else {
            return Err(Frame::Bad("a message without Content-Length".into()));
        };
        let mut body = vec![0; n];
        self.input.read_exact(&mut body).map_err(|e| Frame::Fatal(e.to_string()))?;
        Ok(Some(body))
    }
}

/// Writes an error response with a null id (JSON-RPC's answer to a message
/// whose id cannot be read).
fn raw_error(code: ErrorCode, message: &str) {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code as i32, "message": message },
    })
    .to_string();
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Result<Vec<u8>, bool>> {
        let mut r = FrameReader::new(input);
        let mut out = vec![];
        for _ in 0..20 {
            match r.frame() {
                Ok(Some(b)) => out.push(Ok(b)),
                Ok(None) => return out,
                Err(Frame::Bad(_)) => out.push(Err(false)),
                Err(Frame::Fatal(_)) => {
                    out.push(Err(true));
                    return out;
                }
            }
        }
        panic!("the reader does not end");
    }

    #[test]
    fn good_frames() {
        let got = frames(b"Content-Length: 2\r\n\r\n{}\r\ncontent-length:3\r\nX-Other: y\r\n\r\nabc");
        assert_eq!(got, vec![Ok(b"{}".to_vec()), Ok(b"abc".to_vec())]);
        assert_eq!(frames(b"Content-Length: 10\r\n\r\nabc"), vec![Err(true)]);
    }

    #[test]
    fn a_bad_frame_costs_only_itself() {
        let ok = b"Content-Length: 2\r\n\r\n{}";
        for bad in [
            &b"Content-Length: abc\r\n\r\n{\"x\":1}"[..],
            b"Content-Length: -5\r\n\r\n{\"x\":1}",
            b"Content-Length: 99999999999999999999999\r\n\r\n{\"x\":1}",
            b"Content-Length: 1000000000000\r\n\r\n{\"x\":1}",
            b"Content-Type: x\r\n\r\n{\"x\":1}",
            b"Content-Length: 7\r\nContent-Length: 3\r\n\r\n{\"x\":1}",
            b"Content-Length: 3\r\n\r\n{\"x\":1}",
            b"garbage\r\n",
        ] {
            let mut input = bad.to_vec();
            input.extend_from_slice(ok);
            input.extend_from_slice(ok);
            let got = frames(&input);
            let good: Vec<_> = got.iter().filter(|f| f.as_ref().is_ok_and(|b| b == b"{}")).collect();
            assert_eq!(good.len(), 2, "{}: {got:?}", String::from_utf8_lossy(bad));
            assert!(got.iter().all(|f| f != &Err(true)), "{}: {got:?}", String::from_utf8_lossy(bad));
        }
        // Equal duplicates are fine.
        let got = frames(b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(got, vec![Ok(b"{}".to_vec())]);
    }
}
