//! A background thread, off the loop: picks up edits to the users file
//! (made by `miniftp useradd` while the server runs) and to the pending
//! registrations (for the metrics), and removes partial uploads older than
//! `limits.partial_max_age_secs`.
//!
//! A users file that fails to parse is logged and ignored: the server keeps
//! serving with the last good copy.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::limits::RELOAD_EVERY;
use crate::users::UserDb;

/// How often partial uploads are swept: a quarter of their maximum age,
/// between a second and an hour.
fn sweep_every(max_age_secs: u64) -> Duration {
    Duration::from_secs((max_age_secs / 4).clamp(1, 3600))
}

/// (mtime ns, size, inode): changes whenever the file is rewritten.
pub fn fingerprint(path: &Path) -> Option<(i128, u64, u64)> {
    let md = std::fs::metadata(path).ok()?;
    Some((
        md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        md.size(),
        md.ino(),
    ))
}

/// `seen`: the users file's fingerprint when the server loaded it.
pub fn spawn(shared: Arc<Shared>, seen: Option<(i128, u64, u64)>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let path = shared.config.users_file();
            let pending = shared.config.pending_file();
            let mut seen = seen;
            let mut pending_seen = fingerprint(&pending);
            let mut next_sweep = Instant::now();
            loop {
                // `useradd --approve/--reject` change the count offline.
                let now = fingerprint(&pending);
                if now != pending_seen {
                    pending_seen = now;
                    let n = crate::serve::pending_count(&pending);
                    super::metrics::global().set_pending_registrations(n);
                }
                let now = fingerprint(&path);
                if now != seen {
                    seen = now;
                    match UserDb::load(&path) {
                        Ok(db) => {
                            log::info!("reloaded {} ({} users)", path.display(), db.users.len());
                            shared.set_users(Arc::new(db));
                        }
                        Err(e) => log::error!("{e}; keeping the last good users list"),
                    }
                }
                if Instant::now() >= next_sweep {
                    sweep(&shared);
                    next_sweep =
                        Instant::now() + sweep_every(shared.config.limits.partial_max_age_secs);
                }
                std::thread::sleep(RELOAD_EVERY);
            }
        })?;
    Ok(())
}

/// Removes stale partial uploads in every home. A live account's used
/// space is corrected; others are walked afresh at their next login.
pub fn sweep(shared: &Shared) {
    let max_age = Duration::from_secs(shared.config.limits.partial_max_age_secs);
    for user in &shared.users().users {
        let result = shared.accounts.with_account(&user.name, |live| match live {
            Some(account) => account
                .storage
                .sweep_partials(max_age, &|p| account.upload_in_progress(p))
                .map(|freed| account.sub_used(freed)),
            None => match shared.backend.existing_home(&user.home) {
                Ok(Some(s)) => s.sweep_partials(max_age, &|_| false).map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => {
                    log::warn!("sweep: cannot open {}'s home: {e}", user.name);
                    Ok(())
                }
            },
        });
        if let Err(e) = result {
            log::warn!("sweep of {}'s home: {e}", user.name);
        }
    }
}
