//! `registration.notify_command`: the operator hears of a registration
//! request filed under the approval policy, and a command that hangs is
//! killed after its timeout without holding anything up.

use std::time::Duration;

use crate::server_core::common::{opts, register_req};
use crate::util::eventually;
use crate::util::TestServer;

#[test]
fn a_filed_registration_runs_the_notify_command() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("notified");
    // The message on stdin, then the variables; renamed into place whole.
    let command = format!(
        "{{ cat; printf '%s|%s|%s\\n' \"$MINIFTP_REGISTRATION_USER\" \
         \"$MINIFTP_REGISTRATION_PEER\" \"$MINIFTP_PENDING_COUNT\"; }} > {0}.tmp && mv {0}.tmp {0}",
        file.display()
    );
    let toml = format!(
        "[registration]\npolicy = \"approval\"\nnotify_command = {command:?}\n\
         [limits]\nfailed_login_delay_ms = 0\n"
    );
    let s = TestServer::with(opts(&toml));
    let mut w = s.connect();
    let r = w.call(register_req("carol", "carol-pw"));
    assert_eq!(r["code"], 202, "{r}");
    assert!(
        eventually(Duration::from_secs(10), || file.exists()),
        "the command did not run:\n{}",
        s.log()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"carol\" asks for an account"), "{text}");
    assert!(text.contains("miniftp useradd 'carol' --approve"), "{text}");
    assert!(text.ends_with("carol|127.0.0.1|1\n"), "{text}");
    assert!(
        eventually(Duration::from_secs(5), || s
            .log()
            .contains("notify_command done for the registration of \"carol\"")),
        "{}",
        s.log()
    );
}

#[test]
fn a_hanging_notify_command_is_killed_and_registration_goes_on() {
    let toml = "[registration]\npolicy = \"approval\"\nnotify_command = \"sleep 60\"\n\
                notify_timeout_secs = 1\n[limits]\nfailed_login_delay_ms = 0\n";
    let s = TestServer::with(opts(toml));
    let mut w = s.connect();
    assert_eq!(w.call(register_req("carol", "carol-pw"))["code"], 202);
    // The worker did not wait for the command: the next request is
    // answered at once.
    assert_eq!(w.call(register_req("dave", "dave-pw"))["code"], 202);
    assert!(
        eventually(Duration::from_secs(10), || s
            .log()
            .matches("killed after 1s")
            .count()
            == 2),
        "{}",
        s.log()
    );
}
