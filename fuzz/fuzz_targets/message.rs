//! The message parser and the path resolver on arbitrary text: a decoded
//! request re-encodes to itself, replies parse or fail cleanly, and no
//! client path resolves to anything but plain names below the home.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniftp::proto::message::decode_request;
use miniftp::proto::Reply;
use miniftp::storage::VPath;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(req) = decode_request(text) {
        let again = decode_request(&req.to_json()).expect("a decoded request re-encodes");
        assert_eq!(req, again);
    }
    let _ = Reply::from_json(text);
    let cwd = VPath::resolve(&VPath::root(), "/a/b").unwrap();
    if let Ok(p) = VPath::resolve(&cwd, text) {
        for c in p.components() {
            assert!(!c.is_empty() && c != "." && c != ".." && !c.contains('/') && !c.contains('\0'));
        }
    }
});
