//! TLS for the FTP listener: the native listener's certificate, TLS 1.2
//! and 1.3 (FTP clients in the field still need 1.2; the native listener
//! stays 1.3-only), and TLS session resumption as RFC 4217 §10.2 wants it:
//! a data connection proves where it comes from by resuming a TLS session
//! the server issued on a control connection.
//!
//! Each control connection has a random token. Its TLS sessions carry it
//! twice: rustls embeds it (`set_resumption_data`; a TLS 1.3 resumption
//! brings it back, `received_resumption_data`), and the server tags each
//! session it issues with it, which works for TLS 1.2 too: a session
//! ticket (TLS 1.3, and TLS 1.2 for clients that use tickets, such as
//! Go's) is encrypted with the token inside ([`TaggingTickets`]), a TLS
//! 1.2 session id is stored with it ([`Tagging`]). When a data
//! connection's handshake was a resumption (`handshake_kind() ==
//! Resumed`), the tag says whose session it resumed ([`Resuming`],
//! [`ResumingTickets`]), and the data connection is accepted only if that
//! session belongs to this control connection, or to another control
//! connection of the same user from the same address ([`FtpTls::owns`]).
//! The second case is for clients that keep a pool of control connections
//! and one TLS session cache for all of them (rclone's Go TLS: a data
//! connection resumes whichever ticket came last).
//!
//! The store keeps an entry when a TLS 1.3 resumption takes it (rustls' own
//! cache removes it): FileZilla and curl resume every data connection of a
//! control session from the one ticket it got (libunftp had to do the
//! same). Sessions and owners are kept in bounded tables, oldest out first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::ServerConfig;

use crate::limits::{MAX_TLS_OWNERS, MAX_TLS_SESSIONS};

/// The per-control-connection value its TLS sessions carry.
pub type SessionToken = [u8; 16];

/// A fresh random token.
pub fn new_token() -> SessionToken {
    rand::random()
}

/// The control connection a token belongs to: its client's address, and
/// who logged in on it (None: not yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub ip: IpAddr,
    pub user: Option<String>,
}

/// Whether a data connection resumed a session it may use.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// The session's control connection, from the same address, has not
    /// logged in yet: ask again later.
    Wait,
    Reject(&'static str),
}

/// The FTP listener's TLS: TLS 1.2 and 1.3 with the native certificate,
/// the session store and the owners of the tokens in it.
pub struct FtpTls {
    base: ServerConfig,
    sessions: Arc<SessionStore>,
    /// Encrypts session tickets (keys rotated by rustls).
    tickets: Arc<dyn ProducesTickets>,
    owners: Mutex<Bounded<SessionToken, Owner>>,
}

/// One control connection's TLS configs: the control connection's own
/// (its sessions tagged with its token) and its data connections' (which
/// resume sessions and store none), and which token the last resumption
/// on a data connection brought back.
pub struct SessionTls {
    pub control: Arc<ServerConfig>,
    pub data: Arc<ServerConfig>,
    resumed: Arc<Mutex<Option<SessionToken>>>,
}

impl FtpTls {
    /// Builds the FTP config from the native listener's (same certificate).
    pub fn new(native: &ServerConfig) -> Result<FtpTls, rustls::Error> {
        let base = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&native.cert_resolver));
        Ok(FtpTls {
            base,
            tickets: rustls::crypto::ring::Ticketer::new()?,
            sessions: Arc::new(SessionStore::default()),
            owners: Mutex::new(Bounded::new(MAX_TLS_OWNERS)),
        })
    }

    /// The configs for the control connection holding `token`.
    pub fn session(&self, token: SessionToken) -> SessionTls {
        let mut control = self.base.clone();
        control.session_storage = Arc::new(Tagging {
            store: Arc::clone(&self.sessions),
            token,
        });
        control.ticketer = Arc::new(TaggingTickets {
            inner: Arc::clone(&self.tickets),
            token,
        });
        // One ticket is all a client needs: every data connection resumes
        // from it (the store keeps it).
        control.send_tls13_tickets = 1;
        let resumed = Arc::new(Mutex::new(None));
        let mut data = self.base.clone();
        data.session_storage = Arc::new(Resuming {
            store: Arc::clone(&self.sessions),
            found: Arc::clone(&resumed),
        });
        data.ticketer = Arc::new(ResumingTickets {
            inner: Arc::clone(&self.tickets),
            token,
            found: Arc::clone(&resumed),
        });
        data.send_tls13_tickets = 0;
        SessionTls {
            control: Arc::new(control),
            data: Arc::new(data),
            resumed,
        }
    }

    /// Records who is on the control connection holding `token` (at its
    /// TLS handshake, and again at its login).
    pub fn set_owner(&self, token: SessionToken, owner: Owner) {
        lock(&self.owners).insert(token, owner);
    }

    /// Whose session a data connection's finished handshake resumed: the
    /// token of its control connection, or None after a full handshake.
    pub fn resumed(
        &self,
        session: &SessionTls,
        tls: &rustls::ServerConnection,
    ) -> Option<SessionToken> {
        let found = lock(&session.resumed).take();
        if tls.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return None;
        }
        let token = found?;
        // TLS 1.3 says it too, under rustls' integrity check.
        match tls.received_resumption_data() {
            Some(data) if data != &token[..] => None,
            _ => Some(token),
        }
    }

    /// May a data connection whose handshake resumed `resumed` serve the
    /// control connection holding `own`, where `owner` is logged in?
    pub fn verdict(
        &self,
        resumed: Option<SessionToken>,
        own: &SessionToken,
        owner: &Owner,
    ) -> Verdict {
        let Some(token) = resumed else {
            return Verdict::Reject("no resumed session");
        };
        if token == *own {
            return Verdict::Accept;
        }
        match lock(&self.owners).get(&token) {
            Some(o) if o.ip != owner.ip => Verdict::Reject("a session of another address"),
            Some(o) if o.user.is_none() => Verdict::Wait,
            Some(o) if o.user == owner.user => Verdict::Accept,
            Some(_) => Verdict::Reject("another user's session"),
            None => Verdict::Reject("a session the server no longer knows"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A map that keeps its newest `cap` entries.
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    /// Keys in the order they were first stored.
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
}

/// Session ids to (encoded session, the token of the control connection
/// that made it).
type Sessions = Bounded<Vec<u8>, (Vec<u8>, SessionToken)>;

/// Every FTP control connection's TLS sessions, each with the token of
/// the connection that made it.
#[derive(Debug)]
struct SessionStore {
    entries: Mutex<Sessions>,
}

impl Default for SessionStore {
    fn default() -> Self {
        SessionStore {
            entries: Mutex::new(Bounded::new(MAX_TLS_SESSIONS)),
        }
    }
}

impl SessionStore {
    fn get(&self, key: &[u8]) -> Option<(Vec<u8>, SessionToken)> {
        lock(&self.entries).get(&key.to_vec()).cloned()
    }
}

/// A control connection's view of the store: what it stores is tagged
/// with its token.
#[derive(Debug)]
struct Tagging {
    store: Arc<SessionStore>,
    token: SessionToken,
}

impl StoresServerSessions for Tagging {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        lock(&self.store.entries).insert(key, (value, self.token));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.store.get(key).map(|(v, _)| v)
    }

    /// Keeps the entry: see the module doc.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// A data connection's view of the store: it may resume a session (and
/// notes whose), never add one.
#[derive(Debug)]
struct Resuming {
    store: Arc<SessionStore>,
    found: Arc<Mutex<Option<SessionToken>>>,
}

impl StoresServerSessions for Resuming {
    fn put(&self, _key: Vec<u8>, _value: Vec<u8>) -> bool {
        false
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (value, token) = self.store.get(key)?;
        *lock(&self.found) = Some(token);
        Some(value)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        false
    }
}

/// A control connection's session tickets: the token, then the session,
/// encrypted together.
#[derive(Debug)]
struct TaggingTickets {
    inner: Arc<dyn ProducesTickets>,
    token: SessionToken,
}

impl ProducesTickets for TaggingTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&[&self.token[..], plain].concat())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        untag(&self.inner.decrypt(cipher)?).map(|(_, plain)| plain.to_vec())
    }
}

/// A data connection's view of the tickets: it resumes from one (and
/// notes whose). A TLS 1.2 resumption is answered with a fresh ticket,
/// tagged as its control connection's: an empty one (rustls' answer when
/// none can be made) would replace the good one in a client's cache (Go's
/// does that), and its next data connection could not resume.
#[derive(Debug)]
struct ResumingTickets {
    inner: Arc<dyn ProducesTickets>,
    token: SessionToken,
    found: Arc<Mutex<Option<SessionToken>>>,
}

impl ProducesTickets for ResumingTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&[&self.token[..], plain].concat())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let tagged = self.inner.decrypt(cipher)?;
        let (token, plain) = untag(&tagged)?;
        *lock(&self.found) = Some(token);
        Some(plain.to_vec())
    }
}

/// A decrypted ticket's token and session.
fn untag(tagged: &[u8]) -> Option<(SessionToken, &[u8])> {
    let token = tagged.get(..16)?.try_into().ok()?;
    Some((token, &tagged[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_on_take_and_tags_sessions() {
        let store = Arc::new(SessionStore::default());
        let a = Tagging {
            store: Arc::clone(&store),
            token: [1; 16],
        };
        let found = Arc::new(Mutex::new(None));
        let data = Resuming {
            store: Arc::clone(&store),
            found: Arc::clone(&found),
        };
        a.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(data.take(b"k"), Some(b"v".to_vec()));
        assert_eq!(data.take(b"k"), Some(b"v".to_vec()), "take keeps the entry");
        assert_eq!(*found.lock().unwrap(), Some([1; 16]));
        assert!(!data.put(b"x".to_vec(), b"y".to_vec()));
        assert_eq!(data.get(b"x"), None);
    }

    #[test]
    fn tickets_carry_their_token() {
        let inner = rustls::crypto::ring::Ticketer::new().unwrap();
        let control = TaggingTickets {
            inner: Arc::clone(&inner),
            token: [7; 16],
        };
        let found = Arc::new(Mutex::new(None));
        let data = ResumingTickets {
            inner,
            token: [8; 16],
            found: Arc::clone(&found),
        };
        let ticket = control.encrypt(b"session").unwrap();
        assert_eq!(control.decrypt(&ticket), Some(b"session".to_vec()));
        assert_eq!(data.decrypt(&ticket), Some(b"session".to_vec()));
        assert_eq!(*found.lock().unwrap(), Some([7; 16]));
        let again = data.encrypt(b"x").unwrap();
        assert_eq!(control.decrypt(&again), Some(b"x".to_vec()));
        assert_eq!(*found.lock().unwrap(), Some([7; 16]));
        data.decrypt(&again);
        assert_eq!(*found.lock().unwrap(), Some([8; 16]), "tagged as its own");
    }

    #[test]
    fn tables_are_bounded_oldest_out() {
        let mut b = Bounded::new(3);
        for i in 0..5 {
            b.insert(i, i);
        }
        assert_eq!(b.get(&0), None);
        assert_eq!(b.get(&4), Some(&4));
        assert_eq!(b.map.len(), 3);
        assert_eq!(b.order.len(), 3);
    }
}
