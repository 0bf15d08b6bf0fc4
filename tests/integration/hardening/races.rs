//! Several sessions of one user racing on the same names: uploads, copies
//! and moves replacing each other, removals in between. Whatever order the
//! server picks, every reply is one of the documented ones, the surviving
//! file is one whole version, and the quota books stay exact: "`used` …
//! then kept exact by the server; all sessions of a user share it"
//! (docs/PROTOCOL.md 9.3). (The random barrage found the books drifting
//! under this kind of traffic.)

use std::time::Duration;

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::{data, Wire};

/// Each version of "x" or "y" has its own length, so a wrongly
/// subtracted replaced file shows in the books.
fn version(t: usize, k: usize) -> Vec<u8> {
    data(
        1 + (t * 7_919 + k * 104_729) % 60_000,
        (t * 100_000 + k) as u64,
    )
}

fn racer(w: &mut Wire, t: usize, rounds: usize) -> Result<(), String> {
    let mut rng = Rng::new(t as u64 + 77);
    for k in 0..rounds {
        let (req, ok): (serde_json::Value, &[u64]) = match rng.below(6) {
            0 | 1 => {
                let name = if rng.chance(50) { "x" } else { "y" };
                let r = w.put(name, &version(t, k));
                if r["code"] != 226 {
                    return Err(format!("put {name}: {r}"));
                }
                continue;
            }
            2 => (
                json!({"op": "cp", "from": "y", "to": "x"}),
                &[200, 550, 450],
            ),
            3 => (
                json!({"op": "mv", "from": "y", "to": "x"}),
                &[200, 550, 450],
            ),
            4 => (json!({"op": "rm", "path": "x"}), &[200, 550, 450]),
            _ => (
                json!({"op": "cp", "from": "x", "to": "y"}),
                &[200, 550, 450],
            ),
        };
        let r = w.call(req.clone());
        if !ok.contains(&code(&r)) {
            return Err(format!("{req}: {r}"));
        }
    }
    Ok(())
}

/// Six sessions of alice, 100 operations each (3 × 2000 under STRESS=1)
/// on the names "x" and "y": puts of different sizes, cp and mv onto each
/// other, rm. Afterwards `used` equals the bytes on disk (and no partial is
/// left). Puts alone are enough to break it: two uploads committing over
/// the same name on two io workers each subtract the size of the file they
/// saw there before their rename (src/storage/local.rs `commit_upload`,
/// likewise `rename`, `copy`, `remove`), and only one of them replaced it.
/// With `[workers] io_threads = 1` the books stay exact. (Serialising the
/// stat-and-rename per home is not enough: the quota is then updated
/// after the lock is released, in two steps — `+received`, `−replaced` —
/// and a `−replaced` applied before the `+received` of the file it
/// replaced can saturate `used` at 0 (`Account::sub_used`), which loses
/// those bytes for good: `used` ends above the disk.)
#[test]
fn racing_replacements_of_one_name_keep_the_books_exact() {
    let rounds = scaled(100, 2000);
    let s = server("");
    let home = s.home("alice");
    let by = Bystander::start(&s);
    // Keeps alice's account (and its running figures) open throughout: a
    // login with no session live would walk the home afresh.
    let mut w = s.login("alice", "alice-pw");
    let mut drift = Vec::new();
    for attempt in 0..scaled(1, 3) {
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..6)
                .map(|t| {
                    let addr = s.addr.clone();
                    sc.spawn(move || {
                        let mut w =
                            login_from(std::net::Ipv4Addr::LOCALHOST, &addr, "alice", "alice-pw");
                        racer(&mut w, t + 10 * attempt, rounds)
                    })
                })
                .collect();
            for h in handles {
                if let Err(e) = h.join().expect("racer") {
                    panic!("a racer got an undocumented reply: {e}");
                }
            }
        });
        let mut last = (0, 0);
        let exact = eventually(Duration::from_secs(5), || {
            last = (quota(&mut w).0, disk_usage(&home));
            last.0 == last.1
        });
        if !exact {
            drift.push(format!(
                "after round {attempt}: used {} but {} bytes on disk ({:+})",
                last.0,
                last.1,
                last.0 as i64 - last.1 as i64
            ));
        }
        assert!(
            partials_on_disk(&home).is_empty(),
            "{:?}",
            partials_on_disk(&home)
        );
    }
    by.finish();
    assert!(
        drift.is_empty(),
        "the quota drifted from the disk:\n{}",
        drift.join("\n")
    );
}
