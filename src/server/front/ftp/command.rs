//! FTP command lines: find one in a byte buffer ([`split_line`]), then turn
//! it into a [`Command`] ([`parse`]). As with the native frames, *checking*
//! whether a whole line is buffered is apart from *parsing* it, and the cap
//! ([`MAX_FTP_LINE`]) is checked on the buffered bytes before anything is
//! copied. Nothing here knows about sessions or replies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::listing::parse_time;
use crate::limits::MAX_FTP_LINE;
use crate::proto::Password;

/// What [`split_line`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// No line end yet, and the buffer is still under the cap.
    Incomplete,
    /// A whole line: its text is `buf[..text_end]` (without CR LF or LF);
    /// the line with its end takes `buf[..consumed]`.
    Line { text_end: usize, consumed: usize },
    /// [`MAX_FTP_LINE`] bytes arrived without a line end.
    TooLong,
}

/// Is a whole command line at the start of `buf`? Accepts CR LF and a bare
/// LF (some clients send LF alone). Looks at no more than the cap.
pub fn split_line(buf: &[u8]) -> Split {
    let window = &buf[..buf.len().min(MAX_FTP_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let text_end = if lf > 0 && buf[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            Split::Line {
                text_end,
                consumed: lf + 1,
            }
        }
        None if buf.len() >= MAX_FTP_LINE => Split::TooLong,
        None => Split::Incomplete,
    }
}

/// Data representation (TYPE, RFC 959 §3.1.1). Only the answer differs:
/// every transfer is binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataType {
    /// `TYPE A` (optionally `A N`): accepted, transfers stay binary.
    Ascii,
    /// `TYPE I` or `TYPE L 8`.
    Image,
    /// Anything else (EBCDIC, other byte sizes): refused.
    Other(String),
}

/// `OPTS` arguments (RFC 2389).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    /// `OPTS UTF8 ON|OFF` (RFC 2640; FileZilla, lftp, rclone send ON).
    Utf8(bool),
    /// `OPTS MLST type;size;...` (RFC 3659 §7.9): the facts wanted.
    Mlst(String),
    /// `OPTS HASH SHA-256` (draft-bryan-ftpext-hash): pick the algorithm.
    Hash(String),
    /// Any other option: `501`.
    Other(String),
}

/// `SITE` subcommands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// `SITE CHMOD mode path` (lftp's `mirror -R`, FileZilla): no effect.
    Chmod(String),
    /// `SITE HELP`.
    Help,
    /// Any other: `504`.
    Other(String),
}

/// One parsed command line. Paths are kept exactly as sent (spaces too);
/// the core's jail resolves them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(Password),
    /// `AUTH TLS` (also `TLS-C`, `SSL`, `TLS-P`: one mechanism, RFC 4217
    /// §4 and MS-FTPS); `Err` holds any other mechanism.
    Auth(Result<(), String>),
    Pbsz(u64),
    /// The protection level letter, upper-cased (C, S, E, P or other).
    Prot(String),
    Feat,
    Opts(Opt),
    Syst,
    Clnt(String),
    Pwd,
    Cwd(String),
    Cdup,
    Type(DataType),
    Mode(String),
    Stru(String),
    /// `EPSV`, `EPSV 1|2` or `EPSV ALL` (RFC 2428 §3).
    Epsv(Option<String>),
    Pasv,
    Eprt(SocketAddr),
    Port(SocketAddr),
    /// LIST with its `-la`-style flags dropped.
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    /// `MFMT YYYYMMDDHHMMSS path`: the time in seconds since the epoch.
    Mfmt {
        mtime: i64,
        path: String,
    },
    Rest(u64),
    Stor(String),
    Appe(String),
    Retr(String),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Rnfr(String),
    Rnto(String),
    Noop,
    Abor,
    Stat(Option<String>),
    Help(Option<String>),
    Quit,
    Site(Site),
    Hash(String),
    Xsha256(String),
    /// A verb this server doesn't implement (`502`); upper-cased, at most
    /// [`MAX_VERB_SHOWN`] characters of it.
    Unknown(String),
}

/// How much of an unknown verb is echoed back in the `502`.
pub const MAX_VERB_SHOWN: usize = 16;

/// Why a line is not a command. Each is answered and the session goes on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// An empty line (`500`).
    #[error("empty command line")]
    Empty,
    /// A known verb with a missing or malformed argument (`501`).
    #[error("{verb}: {reason}")]
    BadArgument { verb: &'static str, reason: String },
}

impl CommandError {
    fn bad(verb: &'static str, reason: impl Into<String>) -> CommandError {
        CommandError::BadArgument {
            verb,
            reason: reason.into(),
        }
    }
}

/// Parses one line (without its CR LF, as [`split_line`] delimits it).
/// Verbs are case-insensitive; Telnet IAC sequences (sent around `ABOR` by
/// some clients, RFC 959 §4.1.3) are dropped.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let cleaned;
    let mut line = line;
    if line.contains(&0xff) {
        cleaned = strip_telnet(line);
        line = &cleaned;
    }
    // A Telnet "data mark" left after the urgent IAC was taken out of band,
    // or any other stray byte before the verb.
    let start = line
        .iter()
        .position(|b| b.is_ascii_graphic())
        .unwrap_or(line.len());
    let line = &line[start..];
    if line.is_empty() {
        return Err(CommandError::Empty);
    }
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
        None => (line, None),
    };
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    parse_verb(&verb, arg)
}

/// Removes Telnet commands: `IAC x` pairs go, `IAC IAC` stands for 0xFF.
fn strip_telnet(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut bytes = line.iter();
    while let Some(&b) = bytes.next() {
        if b != 0xff {
            out.push(b);
        } else if bytes.next() == Some(&0xff) {
            out.push(0xff);
        }
    }
    out
}

/// Dispatches on the upper-cased verb.
fn parse_verb(verb: &str, arg: Option<&[u8]>) -> Result<Command, CommandError> {
    let text = |name: &'static str| text_arg(name, arg);
    let path = |name: &'static str| required(name, text_arg(name, arg)?);
    let optional =
        |name: &'static str| Ok::<_, CommandError>(text_arg(name, arg)?.filter(|s| !s.is_empty()));
    Ok(match verb {
        "USER" => Command::User(path("USER")?),
        "PASS" => Command::Pass(Password(text("PASS")?.unwrap_or_default())),
        "AUTH" => Command::Auth(auth_mechanism(&path("AUTH")?)),
        "PBSZ" => Command::Pbsz(number("PBSZ", &path("PBSZ")?)?),
        "PROT" => Command::Prot(path("PROT")?.to_ascii_uppercase()),
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(option(&path("OPTS")?)),
        "SYST" => Command::Syst,
        "CLNT" => Command::Clnt(text("CLNT")?.unwrap_or_default()),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(path("CWD")?),
        "CDUP" => Command::Cdup,
        "TYPE" => Command::Type(data_type(&path("TYPE")?)),
        "MODE" => Command::Mode(path("MODE")?.to_ascii_uppercase()),
        "STRU" => Command::Stru(path("STRU")?.to_ascii_uppercase()),
        "EPSV" => Command::Epsv(optional("EPSV")?),
        "PASV" => Command::Pasv,
        "EPRT" => Command::Eprt(parse_eprt(&path("EPRT")?)?),
        "PORT" => Command::Port(parse_port(&path("PORT")?)?),
        "LIST" => Command::List(without_flags(optional("LIST")?)),
        "NLST" => Command::Nlst(without_flags(optional("NLST")?)),
        "MLSD" => Command::Mlsd(optional("MLSD")?),
        "MLST" => Command::Mlst(optional("MLST")?),
        "SIZE" => Command::Size(path("SIZE")?),
        "MDTM" => Command::Mdtm(path("MDTM")?),
        "MFMT" => parse_mfmt(&path("MFMT")?)?,
        "REST" => Command::Rest(number("REST", &path("REST")?)?),
        "STOR" => Command::Stor(path("STOR")?),
        "APPE" => Command::Appe(path("APPE")?),
        "RETR" => Command::Retr(path("RETR")?),
        "DELE" => Command::Dele(path("DELE")?),
        "MKD" | "XMKD" => Command::Mkd(path("MKD")?),
        "RMD" | "XRMD" => Command::Rmd(path("RMD")?),
        "RNFR" => Command::Rnfr(path("RNFR")?),
        "RNTO" => Command::Rnto(path("RNTO")?),
        "NOOP" => Command::Noop,
        "ABOR" => Command::Abor,
        "STAT" => Command::Stat(without_flags(optional("STAT")?)),
        "HELP" => Command::Help(optional("HELP")?),
        "QUIT" => Command::Quit,
        "SITE" => Command::Site(site(&path("SITE")?)),
        "HASH" => Command::Hash(path("HASH")?),
        "XSHA256" => Command::Xsha256(path("XSHA256")?),
        other => Command::Unknown(other.chars().take(MAX_VERB_SHOWN).collect()),
    })
}

/// The argument as text; a path must be UTF-8 (RFC 2640).
fn text_arg(verb: &'static str, arg: Option<&[u8]>) -> Result<Option<String>, CommandError> {
    match arg {
        None => Ok(None),
        Some(bytes) => std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| CommandError::bad(verb, "the argument is not valid UTF-8")),
    }
}

fn required(verb: &'static str, arg: Option<String>) -> Result<String, CommandError> {
    match arg {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(CommandError::bad(verb, "an argument is required")),
    }
}

/// A decimal u64; an overflow is an error, never a wrap (LightFTP #80).
fn number(verb: &'static str, s: &str) -> Result<u64, CommandError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::bad(verb, format!("{s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| CommandError::bad(verb, format!("{s} is too large")))
}

fn auth_mechanism(arg: &str) -> Result<(), String> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "TLS" | "TLS-C" | "SSL" | "TLS-P" => Ok(()),
        other => Err(other.chars().take(MAX_VERB_SHOWN).collect()),
    }
}

fn option(arg: &str) -> Opt {
    let (name, value) = arg.split_once(' ').unwrap_or((arg, ""));
    let value = value.trim();
    match name.to_ascii_uppercase().as_str() {
        "UTF8" | "UTF-8" => match value.to_ascii_uppercase().as_str() {
            "" | "ON" => Opt::Utf8(true),
            "OFF" => Opt::Utf8(false),
            _ => Opt::Other(arg.to_owned()),
        },
        "MLST" => Opt::Mlst(value.to_owned()),
        "HASH" => Opt::Hash(value.to_owned()),
        _ => Opt::Other(arg.to_owned()),
    }
}

fn data_type(arg: &str) -> DataType {
    let mut words = arg.split_ascii_whitespace();
    let code = words.next().unwrap_or("").to_ascii_uppercase();
    let param = words.next().map(str::to_ascii_uppercase);
    match (code.as_str(), param.as_deref(), words.next()) {
        ("A", None | Some("N"), None) => DataType::Ascii,
        ("I", None, None) | ("L", Some("8"), None) => DataType::Image,
        _ => DataType::Other(arg.chars().take(MAX_VERB_SHOWN).collect()),
    }
}

fn site(arg: &str) -> Site {
    let (name, rest) = arg.split_once(' ').unwrap_or((arg, ""));
    match name.to_ascii_uppercase().as_str() {
        "CHMOD" => Site::Chmod(rest.to_owned()),
        "HELP" => Site::Help,
        other => Site::Other(other.chars().take(MAX_VERB_SHOWN).collect()),
    }
}

/// Drops `ls`-style flags the way clients send them: `LIST -la`, `LIST -a
/// dir`, `LIST -l -a dir`. A path that itself starts with `-` can still be
/// listed as `./-name`.
fn without_flags(arg: Option<String>) -> Option<String> {
    let mut rest = arg?;
    while rest.starts_with('-') {
        rest = match rest.split_once(' ') {
            Some((_, after)) => after.trim_start().to_owned(),
            None => String::new(),
        };
    }
    (!rest.is_empty()).then_some(rest)
}

/// `MFMT YYYYMMDDHHMMSS[.sss] path` (draft-somers-ftp-mfxx).
fn parse_mfmt(arg: &str) -> Result<Command, CommandError> {
    let (time, path) = arg
        .split_once(' ')
        .ok_or_else(|| CommandError::bad("MFMT", "expected a time and a path"))?;
    let mtime = parse_time(time)
        .ok_or_else(|| CommandError::bad("MFMT", format!("{time:?} is not YYYYMMDDHHMMSS")))?;
    if path.is_empty() {
        return Err(CommandError::bad("MFMT", "a path is required"));
    }
    Ok(Command::Mfmt {
        mtime,
        path: path.to_owned(),
    })
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2).
pub fn parse_port(arg: &str) -> Result<SocketAddr, CommandError> {
    let fields: Vec<&str> = arg.trim().split(',').collect();
    let bytes: Option<Vec<u8>> = fields.iter().map(|f| f.trim().parse().ok()).collect();
    match bytes.as_deref() {
        Some(&[a, b, c, d, hi, lo]) => Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            u16::from_be_bytes([hi, lo]),
        )),
        _ => Err(CommandError::bad("PORT", "expected h1,h2,h3,h4,p1,p2")),
    }
}

/// `EPRT |1|132.235.1.2|6275|` or `|2|::1|6275|` (RFC 2428 §2); any
/// printable delimiter.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, CommandError> {
    let bad = || CommandError::bad("EPRT", "expected |1|ADDRESS|PORT| or |2|ADDRESS|PORT|");
    let arg = arg.trim();
    let delim = arg.chars().next().ok_or_else(bad)?;
    let parts: Vec<&str> = arg.split(delim).collect();
    let [_, proto, addr, port, ""] = parts[..] else {
        return Err(bad());
    };
    let ip = match proto {
        "1" => IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| bad())?),
        "2" => IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Command {
        parse(line.as_bytes()).unwrap()
    }

    #[test]
    fn split_crlf_lf_incomplete() {
        assert_eq!(
            split_line(b"NOOP\r\nPWD\r\n"),
            Split::Line {
                text_end: 4,
                consumed: 6
            }
        );
        assert_eq!(
            split_line(b"NOOP\nPWD"),
            Split::Line {
                text_end: 4,
                consumed: 5
            }
        );
        assert_eq!(split_line(b"NOOP\r"), Split::Incomplete);
        assert_eq!(split_line(b""), Split::Incomplete);
        assert_eq!(
            split_line(b"\n"),
            Split::Line {
                text_end: 0,
                consumed: 1
            }
        );
    }

    #[test]
    fn split_caps_before_the_line_end() {
        let mut long = vec![b'a'; MAX_FTP_LINE - 2];
        long.extend_from_slice(b"\r\n");
        assert!(matches!(split_line(&long), Split::Line { .. }));
        let long = vec![b'a'; MAX_FTP_LINE];
        assert_eq!(split_line(&long), Split::TooLong);
        assert_eq!(split_line(&long[..MAX_FTP_LINE - 1]), Split::Incomplete);
        // A line end just past the cap is not looked for.
        let mut over = vec![b'a'; MAX_FTP_LINE];
        over.push(b'\n');
        assert_eq!(split_line(&over), Split::TooLong);
    }

    #[test]
    fn verbs_are_case_insensitive_and_args_keep_spaces() {
        assert_eq!(p("stor my file .txt"), Command::Stor("my file .txt".into()));
        assert_eq!(p("Cwd  lead"), Command::Cwd(" lead".into()));
        assert_eq!(p("xpwd"), Command::Pwd);
        assert_eq!(p("XMKD d"), Command::Mkd("d".into()));
        assert_eq!(p("PASS"), Command::Pass(Password(String::new())));
    }

    #[test]
    fn list_flags_as_clients_send_them() {
        assert_eq!(p("LIST"), Command::List(None));
        assert_eq!(p("LIST -la"), Command::List(None));
        assert_eq!(p("LIST -a"), Command::List(None));
        assert_eq!(p("LIST -l -a my dir"), Command::List(Some("my dir".into())));
        assert_eq!(p("LIST dir"), Command::List(Some("dir".into())));
        assert_eq!(p("NLST -l"), Command::Nlst(None));
        assert_eq!(p("MLSD"), Command::Mlsd(None));
        assert_eq!(p("MLSD /a b"), Command::Mlsd(Some("/a b".into())));
    }

    #[test]
    fn missing_or_bad_arguments() {
        for line in ["STOR", "STOR ", "CWD", "RETR", "REST x", "REST -1", "USER"] {
            assert!(
                matches!(
                    parse(line.as_bytes()),
                    Err(CommandError::BadArgument { .. })
                ),
                "{line}"
            );
        }
        assert_eq!(parse(b""), Err(CommandError::Empty));
        assert_eq!(parse(b"   "), Err(CommandError::Empty));
        assert!(parse(b"REST 18446744073709551616").is_err());
        assert_eq!(p("REST 18446744073709551615"), Command::Rest(u64::MAX));
        assert!(parse(b"STOR \xff\xfe").is_err());
    }

    #[test]
    fn unknown_verbs() {
        assert_eq!(p("ALLO 5"), Command::Unknown("ALLO".into()));
        let long = "X".repeat(100);
        assert_eq!(p(&long), Command::Unknown("X".repeat(MAX_VERB_SHOWN)));
    }

    #[test]
    fn telnet_abort_sequences() {
        assert_eq!(parse(b"\xff\xf4\xff\xf2ABOR").unwrap(), Command::Abor);
        // The urgent IAC consumed out of band leaves IP, then DM.
        assert_eq!(parse(b"\xff\xf4\xf2ABOR").unwrap(), Command::Abor);
        // IAC NOP inside a line is dropped; IAC IAC is a 0xFF byte, and so
        // not UTF-8.
        assert_eq!(
            parse(b"STOR a\xff\xf1b").unwrap(),
            Command::Stor("ab".into())
        );
        assert!(parse(b"STOR a\xff\xffb").is_err());
    }

    #[test]
    fn auth_pbsz_prot_opts() {
        assert_eq!(p("AUTH TLS"), Command::Auth(Ok(())));
        assert_eq!(p("auth ssl"), Command::Auth(Ok(())));
        assert_eq!(p("AUTH KERBEROS"), Command::Auth(Err("KERBEROS".into())));
        assert_eq!(p("PBSZ 0"), Command::Pbsz(0));
        assert_eq!(p("PROT p"), Command::Prot("P".into()));
        assert_eq!(p("OPTS UTF8 ON"), Command::Opts(Opt::Utf8(true)));
        assert_eq!(p("opts utf8 off"), Command::Opts(Opt::Utf8(false)));
        assert_eq!(
            p("OPTS MLST type;size;modify;"),
            Command::Opts(Opt::Mlst("type;size;modify;".into()))
        );
        assert_eq!(p("OPTS FOO"), Command::Opts(Opt::Other("FOO".into())));
    }

    #[test]
    fn types_modes_structures() {
        assert_eq!(p("TYPE A"), Command::Type(DataType::Ascii));
        assert_eq!(p("TYPE A N"), Command::Type(DataType::Ascii));
        assert_eq!(p("TYPE I"), Command::Type(DataType::Image));
        assert_eq!(p("TYPE L 8"), Command::Type(DataType::Image));
        assert_eq!(p("TYPE E"), Command::Type(DataType::Other("E".into())));
        assert_eq!(p("MODE s"), Command::Mode("S".into()));
        assert_eq!(p("STRU F"), Command::Stru("F".into()));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(
            p("PORT 127,0,0,1,4,1"),
            Command::Port("127.0.0.1:1025".parse().unwrap())
        );
        assert!(parse(b"PORT 127,0,0,1,4").is_err());
        assert!(parse(b"PORT 256,0,0,1,4,1").is_err());
        assert_eq!(
            p("EPRT |1|132.235.1.2|6275|"),
            Command::Eprt("132.235.1.2:6275".parse().unwrap())
        );
        assert_eq!(
            p("EPRT !2!::1!21!"),
            Command::Eprt("[::1]:21".parse().unwrap())
        );
        assert!(parse(b"EPRT |3|x|1|").is_err());
        assert!(parse(b"EPRT |1|1.2.3.4|99999|").is_err());
        assert!(parse(b"EPRT |1|::1|5|").is_err());
    }

    #[test]
    fn mfmt_site_hash() {
        assert_eq!(
            p("MFMT 20260101120000 dir/a b"),
            Command::Mfmt {
                mtime: 1_767_268_800,
                path: "dir/a b".into()
            }
        );
        assert!(parse(b"MFMT 2026 x").is_err());
        assert!(parse(b"MFMT 20260101120000").is_err());
        assert_eq!(
            p("SITE CHMOD 644 f"),
            Command::Site(Site::Chmod("644 f".into()))
        );
        assert_eq!(p("site help"), Command::Site(Site::Help));
        assert_eq!(p("SITE EXEC x"), Command::Site(Site::Other("EXEC".into())));
        assert_eq!(p("XSHA256 f"), Command::Xsha256("f".into()));
        assert_eq!(p("HASH f"), Command::Hash("f".into()));
    }
}
