//! The frame decoder on arbitrary bytes: check-then-parse over a buffer of
//! back-to-back frames, and the blocking reader the clients use. Never a
//! panic, never an allocation beyond the cap, never a claim of more bytes
//! than a frame may have.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniftp::limits::{FRAME_HEADER_LEN, MAX_REQUEST_FRAME};
use miniftp::proto::frame::{check, payload, read_frame, Check};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    loop {
        match check(buf, MAX_REQUEST_FRAME) {
            Ok(Check::Complete { end }) => {
                assert!(end > FRAME_HEADER_LEN && end <= FRAME_HEADER_LEN + MAX_REQUEST_FRAME);
                let _ = payload(&buf[..end]);
                buf = &buf[end..];
            }
            Ok(Check::Incomplete { needed }) => {
                assert!(needed == 0 || (needed > buf.len() && needed <= FRAME_HEADER_LEN + MAX_REQUEST_FRAME));
                break;
            }
            Err(_) => break,
        }
    }
    let mut reader = data;
    while let Ok(text) = read_frame(&mut reader, MAX_REQUEST_FRAME) {
        assert!(text.len() <= MAX_REQUEST_FRAME);
    }
});
