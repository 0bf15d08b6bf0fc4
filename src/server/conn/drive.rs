//! Moving a connection on without blocking: write what is queued, read and
//! decode requests while the state takes them, hand transfers to pump jobs,
//! and close gracefully.

use std::time::Instant;

use super::{Action, Conn, Env, PoolKind, State};
use crate::limits::{LINGER, MAX_PENDING_REPLY_BYTES};
use crate::proto::{Reply, Status};
use crate::server::front::Decoded;
use crate::server::io::Fill;
use crate::server::throttle::Direction;
use crate::server::transfer::pump::{DownloadPump, Route, UploadPump};

impl Conn {
    /// Makes all the progress the connection can make without blocking.
    pub(super) fn drive(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        loop {
            let Some(io) = self.io.as_mut() else {
                return;
            };
            if io.has_output() && self.writable {
                match io.flush() {
                    Ok(true) => {}
                    Ok(false) => self.writable = false,
                    Err(_) => return out.push(Action::Close("connection lost")),
                }
            }
            match &self.state {
                State::Ready => {}
                State::Closing(why) => {
                    let why = *why;
                    if self.drive_closing(why, out) {
                        continue;
                    }
                    return;
                }
                State::Lingering { why, .. } => return self.linger(why, out),
                State::Working { .. }
                | State::Held(_)
                | State::LoginWait(_)
                | State::Pumping { .. } => return,
                State::Upload(_) => return self.start_upload_pump(env, out),
                State::Download(_) => return self.start_download_pump(env, out),
            }
            // An FTP transfer's reply goes on this connection: it stays up
            // while the transfer finishes.
            if env.shutting_down && !self.ftp.as_ref().is_some_and(|f| f.transferring()) {
                io.send(&Reply::new(
                    Status::Unavailable,
                    "server shutting down, closing",
                ));
                self.state = State::Closing("server shutting down");
                continue;
            }
            // Backpressure: a client that doesn't read its replies gets no
            // more requests served.
            if io.wbuf.len() > MAX_PENDING_REPLY_BYTES
                || !self.ftp_may_read(env, out)
                || !self.next_request(env, out)
            {
                return;
            }
        }
    }

    /// Decodes and handles one request; false when there is none to have.
    fn next_request(&mut self, env: &mut Env, out: &mut Vec<Action>) -> bool {
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        let (decoded, fill) = match io.decode(self.readable) {
            Ok(x) => x,
            Err(_) => {
                out.push(Action::Close("connection lost"));
                return false;
            }
        };
        match fill {
            Some(Fill::Data | Fill::WouldBlock) => self.readable = false,
            Some(Fill::Eof) => {
                self.readable = false;
                self.peer_closed = true;
            }
            Some(Fill::Full) | None => {}
        }
        match decoded {
            // The peer half-closed: what it sent is answered, then the
            // connection ends.
            Decoded::Incomplete if self.peer_closed => self.state = State::Closing("closed"),
            Decoded::Incomplete => return false,
            other => {
                self.last_active = env.now;
                self.handle(other, env, out);
            }
        }
        true
    }

    /// Handles a decoded request, or answers what could not be decoded.
    pub(super) fn handle(&mut self, decoded: Decoded, env: &mut Env, out: &mut Vec<Action>) {
        match decoded {
            Decoded::Request(req) => {
                if let Some(io) = self.io.as_mut() {
                    io.asked = Some(env.now);
                }
                self.on_request(req, env, out)
            }
            Decoded::Invalid { reply, fatal, .. } => {
                let Some(io) = self.io.as_mut() else {
                    return;
                };
                if fatal {
                    log::warn!("{}: {}; disconnecting", self.peer, reply.msg);
                    io.rbuf.clear();
                    self.state = State::Closing("bad frame");
                }
                io.send(&reply);
            }
            Decoded::Ftp(input) => self.ftp_input(input, env, out),
            Decoded::Incomplete => {}
        }
    }

    /// Closing: once the replies are out, shut our side and linger. True
    /// when it made progress worth another turn.
    fn drive_closing(&mut self, why: &'static str, out: &mut Vec<Action>) -> bool {
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        if !io.has_output() {
            io.transport.shutdown_write();
            self.state = State::Lingering {
                why,
                until: Instant::now() + LINGER,
            };
            return true;
        }
        if !io.transport.is_handshaking() {
            return false;
        }
        if self.peer_closed {
            // The peer stopped before the handshake ended: nothing can be
            // said to it any more.
            out.push(Action::Close("closed"));
            return false;
        }
        if !self.readable {
            return false;
        }
        // A refused TLS connection: its 421 waits for the keys, so the
        // handshake must go on (input is dropped).
        let mut sink = [0u8; 4096];
        match io.transport.read(&mut sink) {
            Ok(0) | Err(_) if !io.transport.is_handshaking() => {}
            Ok(0) => {
                out.push(Action::Close("closed"));
                return false;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.readable = false,
            Err(_) => {
                out.push(Action::Close("closed"));
                return false;
            }
        }
        self.writable = true;
        true
    }

    /// Reads and drops input until the peer closes (then the connection
    /// is removed) or the socket is drained.
    fn linger(&mut self, why: &'static str, out: &mut Vec<Action>) {
        let Some(io) = self.io.as_mut() else {
            return;
        };
        let mut sink = [0u8; 16 * 1024];
        loop {
            match io.transport.read(&mut sink) {
                Ok(0) => return out.push(Action::Close(why)),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return out.push(Action::Close(why)),
            }
        }
    }

    /// Hands the socket and the upload to a pump job, when there is input
    /// (and bandwidth: see `grant`).
    fn start_upload_pump(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let has_input = self.readable || self.io.as_ref().is_some_and(|io| !io.rbuf.is_empty());
        if !has_input {
            return;
        }
        let Some(limit) = self.grant(Direction::Up, env, out) else {
            return;
        };
        let (Some(io), Some(session)) = (self.io.take(), self.session.as_ref()) else {
            return;
        };
        let State::Upload(up) = std::mem::replace(&mut self.state, State::Pumping { close: None })
        else {
            unreachable!("checked by the caller")
        };
        self.readable = false;
        let pump = UploadPump {
            io,
            up,
            ctx: session.ctx(self.peer),
            gate: session.gate(env.shared, self.peer),
            fsync: env.shared.config.storage.fsync,
            cancel: std::sync::Arc::clone(&self.cancel),
            logs: Vec::new(),
            files: 0,
            moved: false,
            route: Route::Inline,
            said: Vec::new(),
            limit,
            spent: 0,
            watch: self.watch.clone(),
        };
        out.push(Action::Submit(PoolKind::Io, Box::new(move || pump.run())));
    }

    /// Hands the socket and the download to a pump job, when it can write
    /// (and bandwidth: see `grant`).
    fn start_download_pump(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        if !self.writable {
            return;
        }
        let Some(limit) = self.grant(Direction::Down, env, out) else {
            return;
        };
        let Some(io) = self.io.take() else {
            return;
        };
        let State::Download(down) =
            std::mem::replace(&mut self.state, State::Pumping { close: None })
        else {
            unreachable!("checked by the caller")
        };
        self.writable = false;
        let pump = DownloadPump {
            io,
            down,
            cancel: std::sync::Arc::clone(&self.cancel),
            moved: false,
            route: Route::Inline,
            limit,
            spent: 0,
        };
        out.push(Action::Submit(PoolKind::Io, Box::new(move || pump.run())));
    }
}
