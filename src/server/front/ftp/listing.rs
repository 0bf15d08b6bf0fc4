//! What FTP shows of a [`proto::Entry`](crate::proto::Entry): `LIST` lines
//! as vsftpd writes them (`ls -l` style, owner and group hidden), `NLST`
//! names, `MLSD`/`MLST` fact lines (RFC 3659 §7), and the `YYYYMMDDHHMMSS`
//! times of `MDTM`, `MFMT` and the `modify` fact. All times are UTC, as
//! RFC 3659 requires for MDTM and vsftpd does by default for LIST.

use crate::proto::{Entry, EntryKind};

/// The MLST facts this server knows (RFC 3659 §7.5), in the order they are
/// written. FEAT lists them with `*` for those currently shown.
pub const FACTS: [&str; 5] = ["type", "size", "modify", "perm", "unique"];

/// Which facts MLSD and MLST show; `OPTS MLST` picks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts([bool; FACTS.len()]);

impl Default for Facts {
    fn default() -> Facts {
        Facts([true; FACTS.len()])
    }
}

impl Facts {
    /// `OPTS MLST type;size;` → those facts; unknown names are ignored, as
    /// RFC 3659 §7.9 asks. Returns the facts and the list to echo back.
    pub fn select(list: &str) -> (Facts, String) {
        let mut on = [false; FACTS.len()];
        for name in list.split(';') {
            if let Some(i) = FACTS.iter().position(|f| f.eq_ignore_ascii_case(name)) {
                on[i] = true;
            }
        }
        let facts = Facts(on);
        let echo = facts.names().map(|f| format!("{f};")).collect();
        (facts, echo)
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        FACTS
            .into_iter()
            .zip(self.0)
            .filter_map(|(f, on)| on.then_some(f))
    }

    /// The FEAT line: `MLST type*;size*;modify*;perm*;unique*;`. lftp uses
    /// MLSD only when this line starts with `MLST ` and lists facts.
    pub fn feat_line(self) -> String {
        let mut line = String::from("MLST ");
        for (f, on) in FACTS.into_iter().zip(self.0) {
            line.push_str(f);
            if on {
                line.push('*');
            }
            line.push(';');
        }
        line
    }
}

/// A name FTP can show: a CR or LF would end the line early, and a listing
/// has no way to escape it (RFC 959's `CR NUL` is for the control
/// connection only). Such entries are left out of listings.
pub fn listable(name: &str) -> bool {
    !name.contains(['\r', '\n'])
}

/// One `LIST` line, as vsftpd formats it (with `hide_ids`):
/// `-rw-r--r--    1 ftp      ftp          1234 Nov 29 10:00 name`.
/// Files older than about six months (or in the future) show the year
/// instead of the time, as `ls -l` does. `now` is seconds since the epoch.
pub fn list_line(e: &Entry, now: i64) -> String {
    let mode = match e.kind {
        EntryKind::File => "-rw-r--r--",
        EntryKind::Dir => "drwxr-xr-x",
        EntryKind::Symlink => "lrwxrwxrwx",
        EntryKind::Other => "?---------",
    };
    format!(
        "{mode} {:>4} {:<8} {:<8} {:>8} {} {}\r\n",
        1,
        "ftp",
        "ftp",
        e.size,
        ls_date(e.mtime, now),
        e.name
    )
}

/// vsftpd's `%b %d %H:%M`, or `%b %d  %Y` beyond 182 days or in the future.
fn ls_date(mtime: i64, now: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Civil::from_secs(mtime);
    let month = MONTHS[(t.month - 1) as usize];
    if mtime > now || now - mtime > 182 * 86_400 {
        format!("{month} {:02}  {}", t.day, t.year)
    } else {
        format!("{month} {:02} {:02}:{:02}", t.day, t.hour, t.minute)
    }
}

/// One `NLST` line: the bare name.
pub fn nlst_line(e: &Entry) -> String {
    format!("{}\r\n", e.name)
}

/// The MLSD/MLST facts of an entry followed by a space and `name`
/// (RFC 3659 §7.2): `type=file;size=5;modify=20261129100000;perm=adfrw;
/// unique=1f2e3d4c5b6a7988; name`. `path` is the entry's full path below
/// the home: `unique` is derived from it (storage keeps no inode number
/// for us), so it tells different paths apart but not hard links.
pub fn mlsx_line(e: &Entry, name: &str, path: &str, facts: Facts) -> String {
    let mut line = String::new();
    let [kind, size, modify, perm, unique] = facts.0;
    if kind {
        let t = match e.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "OS.unix=symlink",
            EntryKind::Other => "OS.unix=special",
        };
        line.push_str(&format!("type={t};"));
    }
    if size && e.kind != EntryKind::Dir {
        line.push_str(&format!("size={};", e.size));
    }
    if modify {
        line.push_str(&format!("modify={};", format_time(e.mtime)));
    }
    if perm {
        // RFC 3659 §7.5.5: files can be appended, deleted, renamed, read
        // and written; directories created in, deleted, entered, renamed,
        // listed, made in and purged. The jail and quota decide the rest.
        let p = if e.kind == EntryKind::Dir {
            "cdeflmp"
        } else {
            "adfrw"
        };
        line.push_str(&format!("perm={p};"));
    }
    if unique {
        line.push_str(&format!("unique={:016x};", fnv1a(path.as_bytes())));
    }
    line.push(' ');
    line.push_str(name);
    line
}

/// FNV-1a, 64 bits: a stable value per path for the `unique` fact.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `YYYYMMDDHHMMSS` in UTC (RFC 3659 §2.3), for MDTM and `modify`. Times
/// before 1970 or after 9999 are clamped into what four digits can show.
pub fn format_time(secs: i64) -> String {
    let t = Civil::from_secs(secs.clamp(0, LAST_SECOND));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `YYYYMMDDHHMMSS` with an optional `.fraction` (ignored) to seconds
/// since the epoch; `None` for anything else or an impossible date. A leap
/// second (`60`) counts as `59`.
pub fn parse_time(s: &str) -> Option<i64> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| whole[r].parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?.min(59));
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// 9999-12-31 23:59:59 UTC.
const LAST_SECOND: i64 = 253_402_300_799;

/// A UTC calendar time.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    fn from_secs(secs: i64) -> Civil {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind, size: u64, mtime: i64) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size,
            mtime,
            escaped: false,
        }
    }

    // 2026-11-29 10:00:00 UTC
    const NOW: i64 = 1_795_946_400;

    #[test]
    fn time_round_trips_and_known_values() {
        assert_eq!(format_time(0), "19700101000000");
        assert_eq!(format_time(NOW), "20261129100000");
        assert_eq!(parse_time("20261129100000"), Some(NOW));
        assert_eq!(parse_time("20261129100000.123"), Some(NOW));
        assert_eq!(format_time(951_782_400), "20000229000000");
        assert_eq!(parse_time("20000229000000"), Some(951_782_400));
        for t in [0, 1, 59, 86_399, 86_400, 951_868_799, NOW, LAST_SECOND] {
            assert_eq!(parse_time(&format_time(t)), Some(t), "{t}");
        }
        assert_eq!(format_time(-5), "19700101000000");
        assert_eq!(format_time(i64::MAX), "99991231235959");
    }

    #[test]
    fn impossible_times_are_refused() {
        for bad in [
            "",
            "2026112910000",
            "202611291000000",
            "20261329100000",
            "20260230100000",
            "21000229000000",
            "20261129240000",
            "20261129106000",
            "2026112910000x",
            "+2026112910000",
            "20261129100000.",
            "20261129100000.x",
        ] {
            let want = if bad == "20261129100000." {
                Some(NOW)
            } else {
                None
            };
            assert_eq!(parse_time(bad), want, "{bad:?}");
        }
        assert_eq!(parse_time("20261129100060"), Some(NOW + 59));
    }

    #[test]
    fn list_lines_like_vsftpd() {
        let f = entry("notes.txt", EntryKind::File, 1234, NOW - 3600);
        assert_eq!(
            list_line(&f, NOW),
            "-rw-r--r--    1 ftp      ftp          1234 Nov 29 09:00 notes.txt\r\n"
        );
        let d = entry("a dir", EntryKind::Dir, 4096, 0);
        assert_eq!(
            list_line(&d, NOW),
            "drwxr-xr-x    1 ftp      ftp          4096 Jan 01  1970 a dir\r\n"
        );
        let future = entry("f", EntryKind::File, 5 << 32, NOW + 86_400);
        assert_eq!(
            list_line(&future, NOW),
            "-rw-r--r--    1 ftp      ftp      21474836480 Nov 30  2026 f\r\n"
        );
    }

    #[test]
    fn mlsx_facts() {
        let f = entry("a b", EntryKind::File, 5, NOW);
        let line = mlsx_line(&f, "a b", "/d/a b", Facts::default());
        assert!(
            line.starts_with("type=file;size=5;modify=20261129100000;perm=adfrw;unique="),
            "{line}"
        );
        assert!(line.ends_with("; a b"));
        let d = entry("d", EntryKind::Dir, 4096, NOW);
        let line = mlsx_line(&d, "d", "/d", Facts::default());
        assert!(line.starts_with("type=dir;modify=20261129100000;perm=cdeflmp;unique="));
        // The same path gives the same unique value; another path another.
        let again = mlsx_line(&d, "d", "/d", Facts::default());
        assert_eq!(line, again);
        assert_ne!(line, mlsx_line(&d, "d", "/e", Facts::default()));
    }

    #[test]
    fn opts_mlst_selects_facts() {
        let (facts, echo) = Facts::select("size;Type;bogus;");
        assert_eq!(echo, "type;size;");
        let f = entry("x", EntryKind::File, 7, NOW);
        assert_eq!(mlsx_line(&f, "x", "/x", facts), "type=file;size=7; x");
        assert_eq!(facts.feat_line(), "MLST type*;size*;modify;perm;unique;");
        let (none, echo) = Facts::select("");
        assert_eq!(echo, "");
        assert_eq!(mlsx_line(&f, "x", "/x", none), " x");
        assert_eq!(
            Facts::default().feat_line(),
            "MLST type*;size*;modify*;perm*;unique*;"
        );
    }

    #[test]
    fn names_with_line_ends_are_not_listable() {
        assert!(listable("a b"));
        assert!(!listable("a\nb"));
        assert!(!listable("a\rb"));
    }
}
