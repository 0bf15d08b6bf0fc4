//! The FTP front-end on arbitrary bytes: the line splitter, the command
//! parser and the control-session state machine, with events from the loop
//! and the core mixed in (see `miniftp::server::front::ftp::replay`). No
//! panic; replies are well-formed lines; nothing is asked of the core
//! before login but the login; one core call at a time; and an upload is
//! never committed unless its data connection ended cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniftp::server::front::ftp::replay::replay;

fuzz_target!(|data: &[u8]| {
    replay(data);
});
