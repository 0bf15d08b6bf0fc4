//! The backend's own state in the bucket against a real Garage cluster:
//! usage counters (src/storage/s3/usage.rs) and the sweep of abandoned
//! uploads (src/storage/s3/sweep.rs).

use std::sync::Arc;

use miniftp::limits::s3::MIN_PART_SIZE;
use miniftp::storage::s3::budget::BufferBudget;
use miniftp::storage::s3::keys::{HomeKeys, Layout};
use miniftp::storage::s3::sweep::{sweep, Swept};
use miniftp::storage::s3::usage::{self, Counters, Loaded};
use miniftp::storage::s3::writer::{PartWriter, Target};
use miniftp::storage::VPath;

use super::garage::{unique_prefix, Garage};
use crate::util::data;

fn home(name: &str) -> HomeKeys {
    Layout::new(&unique_prefix(name))
        .unwrap()
        .home("alice")
        .unwrap()
}

fn vp(s: &str) -> VPath {
    VPath::resolve(&VPath::root(), s).unwrap()
}

#[test]
fn usage_counters_survive_and_a_change_under_way_asks_for_a_recount() {
    let g = Garage::shared();
    let c = g.client();
    let h = home("usage");
    assert_eq!(usage::load(&c, &h).unwrap(), Loaded::NeedsRecount);

    c.put(h.root(), b"", None, &[]).unwrap();
    c.put(&h.dir(&vp("/d")).unwrap(), b"", None, &[]).unwrap();
    c.put(&h.file(&vp("/d/a")).unwrap(), &data(1000, 1), None, &[])
        .unwrap();
    c.put(&h.file(&vp("/b")).unwrap(), &data(234, 2), None, &[])
        .unwrap();
    // Another user's files and our own records do not count.
    let other = Layout::new("x").unwrap().home("alice2").unwrap();
    c.put(&other.file(&vp("/z")).unwrap(), b"zzz", None, &[])
        .unwrap();
    c.put(&h.usage(), b"{}", None, &[]).unwrap();
    let counted = usage::recount(&c, &h).unwrap();
    assert_eq!((counted.bytes, counted.entries), (1234, 3));

    usage::save(&c, &h, &counted).unwrap();
    assert_eq!(usage::load(&c, &h).unwrap(), Loaded::Clean(counted.clone()));
    let under_way = Counters {
        pending: Some("rm /d/a".into()),
        ..counted
    };
    usage::save(&c, &h, &under_way).unwrap();
    assert_eq!(usage::load(&c, &h).unwrap(), Loaded::NeedsRecount);
    c.put(&h.usage(), b"garbage", None, &[]).unwrap();
    assert_eq!(usage::load(&c, &h).unwrap(), Loaded::NeedsRecount);
}

/// An abandoned resumable upload: its multipart upload, record, and a
/// staging object left by a crash between Complete and the copy.
fn abandon_an_upload(c: &Arc<miniftp::storage::s3::Client>, h: &HomeKeys) -> Target {
    let t = Target {
        path: "/f".into(),
        staging: h.staging(&vp("/f"), "n1"),
        record: Some(h.upload_record(&vp("/f"))),
    };
    let budget = BufferBudget::new(64 << 20);
    let mut w = PartWriter::new(Arc::clone(c), budget, t.clone(), MIN_PART_SIZE, None);
    w.write(&data(MIN_PART_SIZE as usize + 10, 3)).unwrap();
    assert_eq!(w.abandon(true), MIN_PART_SIZE);
    c.put(&h.staging(&vp("/g"), "n2"), &data(500, 4), None, &[])
        .unwrap();
    t
}

#[test]
fn the_sweep_aborts_old_uploads_not_in_use() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let h = home("sweep");
    let t = abandon_an_upload(&c, &h);
    let now = jiff::Timestamp::now().as_second();

    // Young, or in use: kept.
    assert_eq!(
        sweep(&c, &h, now - 3600, &|_| false).unwrap(),
        Swept::default()
    );
    assert_eq!(
        sweep(&c, &h, now + 10, &|_| true).unwrap(),
        Swept::default()
    );
    assert!(c.get_small(t.record.as_ref().unwrap()).is_ok());

    let swept = sweep(&c, &h, now + 10, &|_| false).unwrap();
    assert_eq!(
        swept,
        Swept {
            uploads: 1,
            freed: MIN_PART_SIZE + 500,
            objects: 2,
            records: 1,
            counted: MIN_PART_SIZE,
        }
    );
    assert!(c
        .list_uploads(&h.stagings(), None)
        .unwrap()
        .uploads
        .is_empty());
    assert!(c
        .get_small(t.record.as_ref().unwrap())
        .unwrap_err()
        .is_not_found());
    assert!(c
        .list(&h.stagings(), None, None, 10)
        .unwrap()
        .objects
        .is_empty());
    // Nothing more to do.
    assert_eq!(
        sweep(&c, &h, now + 10, &|_| false).unwrap(),
        Swept::default()
    );
}
