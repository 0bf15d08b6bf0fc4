//! TLS for the FTP listener: the native listener's certificate, TLS 1.2
//! and 1.3 (FTP clients in the field still need 1.2; the native listener
//! stays 1.3-only), and TLS session resumption as RFC 4217 §10.2 wants it:
//! a data connection proves where it comes from by resuming a TLS session
//! the server issued on a control connection.
//!
//! Each control connection has a random token. Its TLS sessions carry it
//! twice: rustls embeds it (`set_resumption_data`; a TLS 1.3 resumption
//! brings it back, `received_resumption_data`), and the server's session
//! store tags each session it keeps with it ([`Tagging`]), which works for
//! TLS 1.2 too. When a data connection's handshake was a resumption
//! (`handshake_kind() == Resumed`), the store says whose session it
//! resumed ([`Resuming`]), and the data connection is accepted only if that
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

use rustls::server::StoresServerSessions;
use rustls::ServerConfig;

use crate::limits::{MAX_TLS_OWNERS, MAX_TLS_SESSIONS};

/// The per-control-connection value its TLS sessions carry.
pub type SessionToken = [u8; 16];

/// A fresh random token.
pub fn new_token() -> SessionToken {
    rand::random()
}

/// Who logged in on the control connection a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub ip: IpAddr,
}

/// The FTP listener's TLS: TLS 1.2 and 1.3 with the native certificate,
/// the session store and the owners of the tokens in it.
pub struct FtpTls {
    base: ServerConfig,
    sessions: Arc<SessionStore>,
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
        // One ticket is all a client needs: every data connection resumes
        // from it (the store keeps it).
        control.send_tls13_tickets = 1;
        let resumed = Arc::new(Mutex::new(None));
        let mut data = self.base.clone();
        data.session_storage = Arc::new(Resuming {
            store: Arc::clone(&self.sessions),
            found: Arc::clone(&resumed),
        });
        data.send_tls13_tickets = 0;
        SessionTls {
            control: Arc::new(control),
            data: Arc::new(data),
            resumed,
        }
    }

    /// Records who logged in on the control connection holding `token`.
    pub fn logged_in(&self, token: SessionToken, owner: Owner) {
        lock(&self.owners).insert(token, owner);
    }

    /// Whether a data connection's finished handshake resumed a session
    /// of `own` (the token of its control connection, where `owner` is
    /// logged in) or of another control connection of the same owner.
    pub fn owns(
        &self,
        session: &SessionTls,
        tls: &rustls::ServerConnection,
        own: &SessionToken,
        owner: &Owner,
    ) -> bool {
        let found = lock(&session.resumed).take();
        if tls.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return false;
        }
        let Some(token) = found else {
            return false;
        };
        // TLS 1.3 says it too, under rustls' integrity check.
        if let Some(data) = tls.received_resumption_data() {
            if data != &token[..] {
                return false;
            }
        }
        token == *own || lock(&self.owners).get(&token) == Some(owner)
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

/// Every FTP control connection's TLS sessions, each with the token of
/// the connection that made it.
#[derive(Debug)]
struct SessionStore {
    entries: Mutex<Bounded<Vec<u8>, (Vec<u8>, SessionToken)>>,
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
