//! A small plain-FTP client for the tests that need to do what no real
//! client does on purpose (cut a data connection, connect it from another
//! address, send a command at a chosen moment): control lines and replies
//! (multi-line aware), PASV data connections, whole transfers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use crate::util::tcp_from;

pub struct Ftp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One reply: its code and all its text.
#[derive(Debug)]
pub struct FtpReply {
    pub code: u16,
    pub text: String,
}

impl Ftp {
    /// Connects from `src` (127.0.0.1 unless a test needs another) and
    /// reads the greeting.
    pub fn connect_from(src: Ipv4Addr, addr: &str) -> Ftp {
        let stream = tcp_from(src, addr).expect("connect to the FTP listener");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut f = Ftp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let g = f.reply();
        assert_eq!(g.code, 220, "greeting: {g:?}");
        f
    }

    pub fn connect(addr: &str) -> Ftp {
        Ftp::connect_from(Ipv4Addr::LOCALHOST, addr)
    }

    /// Connected and logged in (plain FTP).
    pub fn login(addr: &str, user: &str, pw: &str) -> Ftp {
        let mut f = Ftp::connect(addr);
        f.expect(&format!("USER {user}"), 331);
        f.expect(&format!("PASS {pw}"), 230);
        f
    }

    /// Reads one reply (all lines of a multi-line one).
    pub fn reply(&mut self) -> FtpReply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply line");
        assert!(line.len() >= 4, "short reply line {line:?}");
        let code: u16 = line[..3].parse().expect("a reply code");
        let mut text = line.clone();
        if line.as_bytes()[3] == b'-' {
            let end = format!("{code} ");
            loop {
                let mut next = String::new();
                self.reader.read_line(&mut next).expect("a reply line");
                assert!(!next.is_empty(), "connection closed mid-reply");
                text.push_str(&next);
                if next.starts_with(&end) {
                    break;
                }
            }
        }
        FtpReply { code, text }
    }

    /// Sends a command line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> FtpReply {
        self.send(line);
        self.reply()
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Sends a command and checks its reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> FtpReply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "{line}: {r:?}");
        r
    }

    /// PASV: the data port's address.
    pub fn pasv(&mut self) -> String {
        let r = self.expect("PASV", 227);
        let inner = r.text.split(['(', ')']).nth(1).expect("(h,h,h,h,p,p)");
        let n: Vec<u16> = inner
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect();
        format!("{}.{}.{}.{}:{}", n[0], n[1], n[2], n[3], n[4] * 256 + n[5])
    }

    /// A data connection to `addr`, from `src`.
    pub fn data_from(src: Ipv4Addr, addr: &str) -> TcpStream {
        let s = tcp_from(src, addr).expect("connect to the data port");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// STOR of `data`, closed cleanly; the final reply.
    pub fn stor(&mut self, path: &str, data: &[u8]) -> FtpReply {
        let port = self.pasv();
        let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
        let r = self.cmd(&format!("STOR {path}"));
        if r.code != 150 {
            return r;
        }
        // The server may stop reading (552): what it did not take is lost.
        let _ = d.write_all(data);
        let _ = d.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = d.read_to_end(&mut sink);
        self.reply()
    }

    /// RETR: the bytes, or the refusal.
    pub fn retr(&mut self, path: &str) -> Result<Vec<u8>, FtpReply> {
        let port = self.pasv();
        let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
        let r = self.cmd(&format!("RETR {path}"));
        if r.code != 150 {
            return Err(r);
        }
        let mut body = Vec::new();
        d.read_to_end(&mut body).expect("the file");
        let end = self.reply();
        assert_eq!(end.code, 226, "after RETR {path}: {end:?}");
        Ok(body)
    }
}
