//! `miniftp useradd`: offline user management. It edits the users file
//! under the same lock the server takes, and the running server picks the
//! change up within a second; it works the same with the server stopped.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use crate::cli::UseraddArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::size::{human, parse_size};
use crate::storage::Backend;
use crate::users::{
    default_home, default_home_taken, hash_password, home_path, validate_new_name,
    validate_password, PendingDb, User, UserDb, UsersLock,
};

pub fn run(args: UseraddArgs) -> Result<()> {
    let mut config = Config::load(args.root.config.as_deref())?;
    if let Some(root) = &args.root.root {
        config.root = root.clone();
    }
    if args.list {
        return list(&config);
    }
    if args.pending {
        return pending(&config);
    }
    change(&config, &args)?;
    // Root wrote into a directory the server's user owns: say what became
    // of the files (see crate::owner).
    if let Some(note) = crate::owner::note_for(&config.root) {
        println!("{note}");
    }
    Ok(())
}

/// The actions that write the users or pending file.
fn change(config: &Config, args: &UseraddArgs) -> Result<()> {
    let name = args.name.as_deref();
    let need_name = || name.ok_or_else(|| Error::Usage("a user NAME is needed".into()));
    if args.passwd {
        let name = need_name()?;
        let password = read_password(args.password_stdin, name, &config.auth)?;
        let hash = hash_password(&password, &config.auth);
        return modify(config, name, |u| {
            u.password = hash;
            println!("password of {name} changed");
        });
    }
    if let Some(size) = &args.set_quota {
        let name = need_name()?;
        let quota = parse_size(size).map_err(Error::Usage)?;
        return modify(config, name, |u| {
            u.quota = quota;
            println!("quota of {name} is now {}", human(quota));
        });
    }
    if let Some(n) = args.set_max_entries {
        let name = need_name()?;
        return modify(config, name, |u| {
            u.max_entries = Some(n);
            println!("{name} may now hold {n} files and directories");
        });
    }
    if args.disable || args.enable {
        let name = need_name()?;
        let disable = args.disable;
        return modify(config, name, |u| {
            u.disabled = disable;
            if disable {
                println!("{name} is disabled: no new logins, open sessions end");
            } else {
                println!("{name} is enabled again");
            }
        });
    }
    if args.remove {
        return remove(config, need_name()?, args.delete_home);
    }
    if args.approve || args.reject {
        return decide(config, need_name()?, args);
    }
    let name = need_name()?;
    let only_rates = args.quota.is_none() && args.home.is_none() && !args.password_stdin;
    if (args.rate_up.is_some() || args.rate_down.is_some())
        && only_rates
        && UserDb::load(&config.users_file())?.get(name).is_some()
    {
        return set_rates(config, name, args);
    }
    add(config, name, args)
}

/// `--rate-up` / `--rate-down` as bytes per second, where given.
fn rate_args(args: &UseraddArgs) -> Result<(Option<u64>, Option<u64>)> {
    let parse = |r: &Option<String>| {
        r.as_deref()
            .map(|t| parse_size(t).map_err(|e| Error::Usage(format!("rate: {e}"))))
            .transpose()
    };
    Ok((parse(&args.rate_up)?, parse(&args.rate_down)?))
}

/// Sets the given rates on `user`.
fn apply_rates(user: &mut User, rates: (Option<u64>, Option<u64>)) {
    if let Some(up) = rates.0 {
        user.rate_up = up;
    }
    if let Some(down) = rates.1 {
        user.rate_down = down;
    }
}

/// `5 MiB/s`, or `unlimited` for 0.
fn rate(bytes_per_sec: u64) -> String {
    match bytes_per_sec {
        0 => "unlimited".into(),
        n => format!("{}/s", human(n)),
    }
}

/// `useradd NAME --rate-up RATE` on an existing user.
fn set_rates(config: &Config, name: &str, args: &UseraddArgs) -> Result<()> {
    let rates = rate_args(args)?;
    modify(config, name, |u| {
        apply_rates(u, rates);
        println!(
            "rates of {name}: up {}, down {}",
            rate(u.rate_up),
            rate(u.rate_down)
        );
    })
}

fn quota_arg(config: &Config, quota: Option<&str>) -> Result<u64> {
    match quota {
        Some(q) => parse_size(q).map_err(Error::Usage),
        None => Ok(config.default_quota),
    }
}

fn add(config: &Config, name: &str, args: &UseraddArgs) -> Result<()> {
    validate_new_name(name).map_err(|m| Error::Usage(format!("{name:?}: {m}")))?;
    let quota = quota_arg(config, args.quota.as_deref())?;
    let rates = rate_args(args)?;
    let home = args.home.clone().unwrap_or_else(|| default_home(name));
    let password = read_password(args.password_stdin, name, &config.auth)?;
    let hash = hash_password(&password, &config.auth);
    let _lock = UsersLock::acquire(&config.root)?;
    let mut db = UserDb::load(&config.users_file())?;
    if db.get(name).is_some() {
        return Err(Error::Usage(format!(
            "user {name:?} already exists (use --passwd or --set-quota to change it)"
        )));
    }
    let mut user = User {
        name: name.to_string(),
        password: hash,
        quota,
        home,
        rate_up: 0,
        rate_down: 0,
        max_entries: args.max_entries,
        disabled: false,
    };
    apply_rates(&mut user, rates);
    let home_dir = home_path(&config.root, &user);
    let limits = rates_note(&user);
    let reused = home_dir.exists();
    db.users.push(user);
    db.save(&config.users_file())?;
    println!(
        "added user {name} with quota {}{limits} (home {})",
        human(quota),
        home_dir.display()
    );
    if reused {
        // The operator's choice, unlike a registration: say so.
        println!(
            "note: {} already exists; its files now belong to {name}",
            home_dir.display()
        );
    }
    Ok(())
}

fn modify(config: &Config, name: &str, change: impl FnOnce(&mut User)) -> Result<()> {
    let _lock = UsersLock::acquire(&config.root)?;
    let mut db = UserDb::load(&config.users_file())?;
    let user = db
        .get_mut(name)
        .ok_or_else(|| Error::Usage(format!("no user {name:?}")))?;
    change(user);
    db.save(&config.users_file())?;
    Ok(())
}

fn remove(config: &Config, name: &str, delete_home: bool) -> Result<()> {
    let _lock = UsersLock::acquire(&config.root)?;
    let mut db = UserDb::load(&config.users_file())?;
    let user = db
        .remove(name)
        .ok_or_else(|| Error::Usage(format!("no user {name:?}")))?;
    db.save(&config.users_file())?;
    let home = home_path(&config.root, &user);
    if delete_home && home.exists() {
        std::fs::remove_dir_all(&home).map_err(|e| Error::local(&home, e))?;
        println!("removed user {name} and deleted {}", home.display());
    } else {
        println!("removed user {name} (home {} kept)", home.display());
    }
    Ok(())
}

fn list(config: &Config) -> Result<()> {
    let db = UserDb::load(&config.users_file())?;
    if db.users.is_empty() {
        println!("no users in {}", config.users_file().display());
        return Ok(());
    }
    println!(
        "{:<20} {:>12} {:>12} {:>6}  HOME",
        "NAME", "QUOTA", "USED", "USE%"
    );
    let backend = crate::storage::open(config).map_err(|e| Error::Other(e.to_string()))?;
    for u in &db.users {
        let home = home_path(&config.root, u);
        let used = used_space(backend.as_ref(), &u.home);
        let pct = (used.unwrap_or(0) * 100)
            .checked_div(u.quota)
            .map_or("-".into(), |p| format!("{p}%"));
        println!(
            "{:<20} {:>12} {:>12} {:>6}  {}",
            u.name,
            human(u.quota),
            used.map_or("-".into(), human),
            pct,
            home.display()
        );
    }
    Ok(())
}

/// Used space of a home, computed the way the server computes it.
fn used_space(backend: &dyn Backend, home: &Path) -> Option<u64> {
    match backend.existing_home(home).ok()? {
        Some(s) => s.usage().ok().map(|u| u.bytes),
        None => Some(0),
    }
}

fn pending(config: &Config) -> Result<()> {
    let db = PendingDb::load(&config.pending_file())?;
    if db.requests.is_empty() {
        println!("no registration requests waiting");
        return Ok(());
    }
    println!("{:<20} {:<20} FROM", "NAME", "REQUESTED (UTC)");
    for r in &db.requests {
        println!(
            "{:<20} {:<20} {}",
            r.name,
            format_time(r.requested_at),
            r.peer
        );
    }
    Ok(())
}

/// `, rates up X, down Y` when the user has a limit, else nothing.
fn rates_note(user: &User) -> String {
    if user.rate_up == 0 && user.rate_down == 0 {
        return String::new();
    }
    format!(
        ", rates up {}, down {}",
        rate(user.rate_up),
        rate(user.rate_down)
    )
}

fn decide(config: &Config, name: &str, args: &UseraddArgs) -> Result<()> {
    let approve = args.approve;
    let quota = quota_arg(config, args.quota.as_deref())?;
    let rates = rate_args(args)?;
    let _lock = UsersLock::acquire(&config.root)?;
    let mut pending = PendingDb::load(&config.pending_file())?;
    let i = pending
        .requests
        .iter()
        .position(|r| r.name == name)
        .ok_or_else(|| Error::Usage(format!("no registration request for {name:?}")))?;
    let request = pending.requests.remove(i);
    if approve {
        let mut db = UserDb::load(&config.users_file())?;
        if db.get(name).is_some() {
            return Err(Error::Usage(format!("user {name:?} already exists")));
        }
        // A request filed before the safe set (see validate_new_name).
        validate_new_name(name).map_err(|m| Error::Usage(format!("{name:?}: {m}")))?;
        // The requester chose the name, not the files already under it.
        if let Some(home) = default_home_taken(&config.root, &db, name) {
            return Err(Error::Usage(format!(
                "not approving {name:?}: its home {} already exists (the files of an \
                 earlier user of that name?) or belongs to another user; delete it or move \
                 it away first, or reject the request",
                home.display()
            )));
        }
        let mut user = User {
            name: request.name.clone(),
            password: request.password,
            quota,
            home: default_home(name),
            rate_up: 0,
            rate_down: 0,
            max_entries: args.max_entries,
            disabled: false,
        };
        apply_rates(&mut user, rates);
        let limits = rates_note(&user);
        db.users.push(user);
        // Users first: a crash between the two saves leaves a request that
        // can be rejected, never an approval that vanished.
        db.save(&config.users_file())?;
        pending.save(&config.pending_file())?;
        println!("approved {name} with quota {}{limits}", human(quota));
    } else {
        pending.save(&config.pending_file())?;
        println!("rejected the registration request of {name}");
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` (UTC) from Unix seconds.
pub fn format_time(secs: u64) -> String {
    crate::ls::utc_minute(secs as i64)
}

/// The new password: from stdin's first line with `--password-stdin`, else
/// a prompt without echo (asked twice).
fn read_password(from_stdin: bool, name: &str, auth: &crate::config::Auth) -> Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::local(PathBuf::from("standard input"), e))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "no terminal to ask for the password: use --password-stdin".into(),
            ));
        }
        let tty = |e| Error::local(PathBuf::from("terminal"), e);
        let first =
            rpassword::prompt_password(format!("New password for {name}: ")).map_err(tty)?;
        let second = rpassword::prompt_password("Again: ").map_err(tty)?;
        if first != second {
            return Err(Error::Usage("the passwords differ".into()));
        }
        first
    };
    validate_password(&password).map_err(Error::Usage)?;
    crate::users::check_password_len(&password, auth).map_err(Error::Usage)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_764_000_000), "2025-11-24 16:00");
    }
}
