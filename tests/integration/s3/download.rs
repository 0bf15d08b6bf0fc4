//! Reading an object for a download (src/storage/s3/download.rs) against a
//! real Garage cluster: sequential and scattered reads, the stored digest,
//! and an object replaced while it is read.

use std::sync::Arc;

use miniftp::storage::s3::download::ObjectRead;
use sha2::{Digest, Sha256};

use super::garage::{unique_prefix, Garage};
use crate::util::data;

#[test]
fn reads_in_order_and_out_of_order() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let key = format!("{}/f", unique_prefix("read"));
    let body = data(3 << 20, 21);
    let d: [u8; 32] = Sha256::digest(&body).into();
    c.put(&key, &body, Some(&d), &[("sha256", &hex::encode(d))])
        .unwrap();
    let mut r = ObjectRead::open(Arc::clone(&c), key.clone()).unwrap();
    assert_eq!(r.size(), body.len() as u64);
    assert_eq!(r.digest(), Some(d));

    let mut got = Vec::new();
    let mut buf = vec![0u8; 100_000];
    loop {
        let n = r.read_at(&mut buf, got.len() as u64).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, body);

    for offset in [2_000_000u64, 17, 3_000_000, 17] {
        let n = r.read_at(&mut buf[..1000], offset).unwrap();
        assert!(n > 0);
        let o = offset as usize;
        assert_eq!(&buf[..n], &body[o..o + n], "at {offset}");
    }
    assert_eq!(r.read_at(&mut buf, body.len() as u64).unwrap(), 0);

    // An object without a stored digest has none.
    c.put(&key, b"plain", None, &[]).unwrap();
    assert_eq!(
        ObjectRead::open(Arc::clone(&c), key).unwrap().digest(),
        None
    );
}

#[test]
fn a_file_replaced_while_read_is_an_error_not_a_mix() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let key = format!("{}/f", unique_prefix("replaced"));
    let old = data(1 << 20, 22);
    c.put(&key, &old, None, &[]).unwrap();
    let mut r = ObjectRead::open(Arc::clone(&c), key.clone()).unwrap();
    let mut buf = vec![0u8; 1000];
    assert!(r.read_at(&mut buf, 0).unwrap() > 0);
    c.put(&key, &data(1 << 20, 23), None, &[]).unwrap();
    // A jump makes it open a new stream: pinned to the old version.
    let e = r.read_at(&mut buf, 500_000).unwrap_err();
    assert!(e.to_string().contains("replaced"), "{e}");
}
