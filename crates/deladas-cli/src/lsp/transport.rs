//! JSON-RPC over stdin and stdout, framed with `Content-Length` headers.
//!
//! lsp-server's own stdio transport stops reading at the first payload that
//! is not a JSON-RPC message; this one answers such a payload with the
//! JSON-RPC error it calls for (`-32700` parse error, `-32600` invalid
//! request) and goes on reading, so a client's bad message never takes the
//! server down. Only the end of input (or a frame whose length cannot be
//! read) stops the reader.

use std::io::{BufRead, Write};
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
    let mut input = stdin.lock();
    loop {
        let body = match read_frame(&mut input) {
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

/// Reads one `Content-Length`-framed message body; `None` at the end of input.
fn read_frame(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, Frame> {
    let mut length: Option<usize> = None;
    let mut bad_header: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => {
                return if length.is_none() && bad_header.is_none() {
                    Ok(None)
                } else {
                    Err(Frame::Fatal("input ended inside a header".into()))
                }
            }
            Ok(_) => {}
            Err(e) => return Err(Frame::Fatal(e.to_string())),
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if length.is_none() && bad_header.is_none() {
                continue; // stray blank line between messages
            }
            break;
        }
        match l.split_once(':') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("content-length") => match v.trim().parse::<usize>() {
                Ok(n) => length = Some(n),
                Err(_) => bad_header = Some(format!("bad Content-Length `{}`", v.trim())),
            },
            Some(_) => {}
            None => bad_header = Some(format!("malformed header line `{l}`")),
        }
    }
    let Some(n) = length else {
        return Err(Frame::Bad(bad_header.unwrap_or_else(|| "a message without Content-Length".into())));
    };
    if n > MAX_MESSAGE {
        return Err(Frame::Fatal(format!("a message of {n} bytes is larger than the {MAX_MESSAGE} accepted")));
    }
    let mut body = vec![0; n];
    input.read_exact(&mut body).map_err(|e| Frame::Fatal(e.to_string()))?;
    match bad_header {
        Some(why) => Err(Frame::Bad(why)),
        None => Ok(Some(body)),
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

    #[test]
    fn frames() {
        let mut input: &[u8] =
            b"Content-Length: 2\r\n\r\n{}\r\ncontent-length:3\r\nX-Other: y\r\n\r\nabcContent-Length: x\r\n\r\n";
        assert_eq!(read_frame(&mut input).ok().flatten().as_deref(), Some(&b"{}"[..]));
        assert_eq!(read_frame(&mut input).ok().flatten().as_deref(), Some(&b"abc"[..]));
        assert!(matches!(read_frame(&mut input), Err(Frame::Bad(_))));
        assert!(matches!(read_frame(&mut input), Ok(None)));
        let mut short: &[u8] = b"Content-Length: 10\r\n\r\nabc";
        assert!(matches!(read_frame(&mut short), Err(Frame::Fatal(_))));
    }
}
