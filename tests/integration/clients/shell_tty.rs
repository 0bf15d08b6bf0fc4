//! The interactive shell under a pseudo-terminal: the menu, logging in
//! with a password prompt that does not echo, the `USER:CWD>>> ` prompt,
//! history (Up arrow, ~/.miniftp_history), tab completion of commands and
//! remote names, registration, and leaving with quit, Ctrl-D or Ctrl-C at
//! the menu; Ctrl-C during a transfer and at the prompt, type-ahead,
//! history after a crash, strict flags, `put -r` and globs.

use crate::clients::fx::*;
use crate::clients::pty::Pty;
use crate::util::*;

/// `miniftp shell ARGS` on a new terminal, with no password in the
/// environment (unless `env` brings one).
fn shell_env(srv: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Pty {
    let mut cmd = client(srv);
    cmd.arg("shell")
        .args(args)
        .env("TERM", "xterm")
        .current_dir(srv.dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Pty::spawn(cmd)
}

fn shell(srv: &TestServer, args: &[&str]) -> Pty {
    shell_env(srv, args, &[])
}

/// Waits for a line-editor prompt and for the editor to read keys.
#[track_caller]
fn at_prompt(t: &mut Pty, prompt: &str) -> String {
    let seen = t.expect(prompt);
    t.wait_raw();
    seen
}

/// Menu choice 1 with the user typed and the password at the prompt.
#[track_caller]
fn log_in(t: &mut Pty, user: &str, pw: &str) {
    at_prompt(t, "choice: ");
    t.send("1\r");
    at_prompt(t, "user: ");
    t.send(&format!("{user}\r"));
    t.expect("password: ");
    t.wait_echo_off();
    t.send(&format!("{pw}\r"));
    t.expect(&format!("welcome, {user}"));
    t.expect("type `help` for the commands");
    at_prompt(t, &format!("{user}:/>>> "));
}

/// Types a command at the prompt and returns what it printed up to the
/// next prompt `next`.
#[track_caller]
fn run(t: &mut Pty, line: &str, next: &str) -> String {
    t.send(&format!("{line}\r"));
    let out = at_prompt(t, next);
    out[..out.len() - next.len()].to_string()
}

#[test]
fn menu_login_commands_and_quit() {
    let srv = TestServer::start();
    let mut t = shell(&srv, &[]);
    let banner = t.expect("choice: ");
    for item in [
        &format!("miniftp {} - {}", env!("CARGO_PKG_VERSION"), srv.addr),
        "1) log in",
        "2) register",
        "q) quit",
    ] {
        assert!(banner.contains(item), "menu lacks {item:?}:\n{banner}");
    }
    t.wait_raw();
    t.send("1\r");
    at_prompt(&mut t, "user: ");
    t.send("alice\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("alice-pw\r");
    t.expect("welcome, alice");
    t.expect("type `help` for the commands");
    at_prompt(&mut t, "alice:/>>> ");

    let out = run(&mut t, "mkdir -p tty-made/inner", "alice:/>>> ");
    assert!(out.contains("\r\n/tty-made/inner: directory"), "{out:?}");
    run(&mut t, "cd tty-made", "alice:/tty-made>>> ");
    let out = run(&mut t, "pwd", "alice:/tty-made>>> ");
    assert!(out.contains("\r\n/tty-made\r\n"), "pwd printed {out:?}");
    let out = run(&mut t, "ls", "alice:/tty-made>>> ");
    assert!(out.contains("\r\ninner/\r\n"), "ls printed {out:?}");
    // A failed command prints one line and the session goes on.
    let out = run(&mut t, "cd nowhere", "alice:/tty-made>>> ");
    assert!(out.contains("error: "), "{out:?}");
    t.send("quit\r");
    let st = t.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", t.transcript());
    assert!(srv.home("alice").join("tty-made/inner").is_dir());
    let all = t.transcript();
    assert!(!all.contains("alice-pw"), "password echoed:\n{all}");
}

#[test]
fn default_user_refused_login_and_password_from_environment() {
    let srv = TestServer::start();
    let mut t = shell(&srv, &["--user", "alice"]);
    at_prompt(&mut t, "choice: ");
    t.send("1\r");
    // An empty answer takes the default user.
    at_prompt(&mut t, "user [alice]: ");
    t.send("\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("Wrong-Guess-77\r");
    // A refused login prints error: and the menu comes back.
    let out = t.expect("choice: ");
    assert!(out.contains("error: "), "{out:?}");
    t.wait_raw();
    t.send("1\r");
    at_prompt(&mut t, "user [alice]: ");
    t.send("\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("alice-pw\r");
    at_prompt(&mut t, "alice:/>>> ");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    let all = t.transcript();
    assert!(!all.contains("alice-pw"), "password echoed:\n{all}");
    assert!(!all.contains("Wrong-Guess-77"), "password echoed:\n{all}");

    // With MINIFTP_PASSWORD set, choice 1 asks only the user name.
    let mut t = shell_env(&srv, &[], &[("MINIFTP_PASSWORD", "alice-pw")]);
    at_prompt(&mut t, "choice: ");
    t.send("1\r");
    at_prompt(&mut t, "user: ");
    t.send("alice\r");
    let out = at_prompt(&mut t, "alice:/>>> ");
    assert!(!out.contains("password"), "asked for a password: {out:?}");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    assert!(!t.transcript().contains("alice-pw"));
}

#[test]
fn history_up_arrow_and_history_file() {
    let srv = TestServer::start();
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    let out = run(&mut t, "pwd", "alice:/>>> ");
    assert!(out.contains("\r\n/\r\n"), "{out:?}");
    run(&mut t, "mkdir hist-dir", "alice:/>>> ");
    // Up shows the previous command, Up again the one before.
    t.send("\x1b[A");
    t.expect("alice:/>>> mkdir hist-dir");
    t.send("\x1b[A");
    t.expect("alice:/>>> pwd");
    let out = run(&mut t, "", "alice:/>>> ");
    assert!(
        out.contains("\r\n/\r\n"),
        "the recalled pwd printed {out:?}"
    );
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));

    let hist = std::fs::read_to_string(srv.dir.path().join(".miniftp_history"))
        .expect("$HOME/.miniftp_history written on quit");
    let entries: Vec<&str> = hist.lines().collect();
    for cmd in ["pwd", "mkdir hist-dir"] {
        assert!(entries.contains(&cmd), "history lacks {cmd:?}: {hist:?}");
    }
    assert!(
        !hist.contains("alice-pw"),
        "the password is in the history: {hist:?}"
    );

    // A new session starts with that history.
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    t.send("\x1b[A");
    t.expect("alice:/>>> quit");
    t.send("\x1b[A");
    t.expect("alice:/>>> pwd");
    t.send("\r");
    t.expect("\r\n/\r\n");
    at_prompt(&mut t, "alice:/>>> ");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn tab_completes_commands_and_remote_names() {
    let srv = TestServer::start();
    seed(
        &srv,
        &[
            ("report-2026.txt", b"hello"),
            ("my report.txt", b"spaces"),
            ("docs/a.txt", b"a"),
        ],
    );
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);

    // A command name.
    t.send("pw\t");
    t.expect("alice:/>>> pwd");
    let out = run(&mut t, "", "alice:/>>> ");
    assert!(out.contains("\r\n/\r\n"), "{out:?}");

    // A remote file name (unique prefix).
    t.send("stat rep\t");
    t.expect("alice:/>>> stat report-2026.txt");
    let out = run(&mut t, "", "alice:/>>> ");
    let line = out
        .lines()
        .find(|l| l.ends_with("report-2026.txt\r") || l.ends_with("report-2026.txt"))
        .unwrap_or_else(|| panic!("no stat line in {out:?}"));
    assert!(line.starts_with("-        5 B  "), "{line:?}");

    // A name with a space is completed quoted, and works.
    t.send("stat my\t");
    t.expect("alice:/>>> stat 'my report.txt'");
    let out = run(&mut t, "", "alice:/>>> ");
    assert!(
        out.contains("6 B  ") && out.contains("my report.txt"),
        "{out:?}"
    );

    // A directory name, then cd into it.
    t.send("cd do\t");
    t.expect("alice:/>>> cd docs/");
    run(&mut t, "", "alice:/docs>>> ");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn register_under_open_policy_then_log_in() {
    let srv = TestServer::with(Opts {
        toml: "registration = \"open\"\n".into(),
        ..Opts::default()
    });
    let mut t = shell(&srv, &[]);
    at_prompt(&mut t, "choice: ");
    t.send("2\r");
    at_prompt(&mut t, "user: ");
    t.send("carol\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("Carol-New-Pw1\r");
    t.expect("again: ");
    t.wait_echo_off();
    t.send("Carol-New-Pw1\r");
    let out = t.expect("choice: ");
    assert!(out.contains("\"carol\" created"), "{out:?}");
    t.wait_raw();
    // The menu came back: log in with the new account.
    t.send("1\r");
    at_prompt(&mut t, "user: ");
    t.send("carol\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("Carol-New-Pw1\r");
    t.expect("welcome, carol");
    at_prompt(&mut t, "carol:/>>> ");
    let out = run(&mut t, "quota", "carol:/>>> ");
    assert!(out.contains("used 0 B of 1 GiB"), "{out:?}");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    assert!(srv.home("carol").is_dir());
    let all = t.transcript();
    assert!(!all.contains("Carol-New-Pw1"), "password echoed:\n{all}");
    assert!(!srv.log().contains("Carol-New-Pw1"), "password in the log");
}

#[test]
fn ctrl_d_at_the_prompt_and_ctrl_c_at_the_menu_leave() {
    let srv = TestServer::start();
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    t.send("\x04");
    assert_eq!(t.wait_exit().code(), Some(0));

    let mut t = shell(&srv, &[]);
    at_prompt(&mut t, "choice: ");
    t.send("\x03");
    assert_eq!(t.wait_exit().code(), Some(0));

    let mut t = shell(&srv, &[]);
    at_prompt(&mut t, "choice: ");
    t.send("q\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn cannot_connect_exits_3() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let srv = TestServer::start();
    let addr = format!("127.0.0.1:{port}");
    let mut t = shell(
        &srv,
        &[
            "--server",
            &addr,
            "--retries",
            "0",
            "--connect-timeout",
            "2",
        ],
    );
    let st = t.wait_exit();
    assert_eq!(st.code(), Some(3), "{}", t.transcript());
    assert!(t.transcript().contains(&addr), "{}", t.transcript());
}

#[test]
fn a_transfer_shows_a_progress_bar_on_the_terminal() {
    let srv = TestServer::start();
    let body = data(20 << 20, 90);
    let f = write(&srv.dir.path().join("l/big"), &body);
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    let out = run(&mut t, &format!("put {}", s(&f)), "alice:/>>> ");
    assert!(
        out.contains("big                  [") && out.contains("/20.00 MiB"),
        "no progress bar: {out:?}"
    );
    assert!(
        out.contains(&format!("put {} -> big: 20 MiB in ", s(&f))),
        "{out:?}"
    );
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    same(&srv.home("alice").join("big"), &body);
}

/// `miniftp ARGS` as a one-shot on a terminal, with the user but no
/// password in the environment.
fn one_shot(srv: &TestServer, args: &[&str]) -> Pty {
    let mut cmd = client(srv);
    cmd.args(args)
        .env("MINIFTP_USER", "alice")
        .env("TERM", "xterm");
    Pty::spawn(cmd)
}

#[test]
fn one_shot_prompts_for_the_password_on_a_terminal() {
    let srv = TestServer::start();
    let body = data(20 << 20, 91);
    let f = write(&srv.dir.path().join("l/big"), &body);
    // put: the prompt, no echo, a progress bar on the terminal.
    let mut t = one_shot(&srv, &["put", s(&f), "big"]);
    t.expect(&format!("Password for alice@{}: ", srv.addr));
    t.wait_echo_off();
    t.send("alice-pw\r");
    let st = t.wait_exit();
    let all = t.transcript();
    assert_eq!(st.code(), Some(0), "{all}");
    assert!(!all.contains("alice-pw"), "password echoed: {all:?}");
    assert!(all.contains("/20.00 MiB"), "no progress bar: {all:?}");
    same(&srv.home("alice").join("big"), &body);

    // -q: nothing but the prompt.
    let mut t = one_shot(&srv, &["get", "-q", "big", s(&srv.dir.path().join("back"))]);
    t.expect("Password for alice@");
    t.wait_echo_off();
    t.send("alice-pw\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    let all = t.transcript();
    let after = all.split_once(": ").unwrap().1;
    assert!(
        !after.contains('[') && !after.contains("MiB"),
        "output with -q: {all:?}"
    );
    same(&srv.dir.path().join("back"), &body);

    // A wrong password typed at the prompt: exit 4.
    let mut t = one_shot(&srv, &["get", "big", "-"]);
    t.expect("Password for alice@");
    t.wait_echo_off();
    t.send("not-the-password\r");
    assert_eq!(t.wait_exit().code(), Some(4), "{}", t.transcript());
}

#[test]
fn registration_waiting_for_approval_and_refused() {
    for (policy, answer) in [
        ("approval", "the operator must approve it"),
        ("closed", "registration is closed"),
    ] {
        let srv = TestServer::with(Opts {
            toml: format!("registration = \"{policy}\"\n"),
            ..Opts::default()
        });
        let mut t = shell(&srv, &[]);
        at_prompt(&mut t, "choice: ");
        t.send("2\r");
        // Under "closed" the greeting said so: refused before any question.
        if policy != "closed" {
            at_prompt(&mut t, "user: ");
            t.send("erin\r");
            t.expect("password: ");
            t.wait_echo_off();
            t.send("erin-pw-1\r");
            t.expect("again: ");
            t.wait_echo_off();
            t.send("erin-pw-1\r");
        }
        let out = t.expect("choice: ");
        assert!(out.contains(answer), "{policy}: {out:?}");
        t.wait_raw();
        // Not an account (yet): logging in is refused, the menu comes back.
        t.send("1\r");
        at_prompt(&mut t, "user: ");
        t.send("erin\r");
        t.expect("password: ");
        t.wait_echo_off();
        t.send("erin-pw-1\r");
        let out = t.expect("choice: ");
        assert!(out.contains("error: "), "{policy}: {out:?}");
        t.wait_raw();
        t.send("q\r");
        assert_eq!(t.wait_exit().code(), Some(0));
        assert!(!t.transcript().contains("erin-pw-1"));
    }
}

#[test]
fn registration_passwords_that_differ() {
    let srv = TestServer::with(Opts {
        toml: "registration = \"open\"\n".into(),
        ..Opts::default()
    });
    let mut t = shell(&srv, &[]);
    at_prompt(&mut t, "choice: ");
    t.send("2\r");
    at_prompt(&mut t, "user: ");
    t.send("frank\r");
    t.expect("password: ");
    t.wait_echo_off();
    t.send("one-password\r");
    t.expect("again: ");
    t.wait_echo_off();
    t.send("another-one\r");
    let out = t.expect("choice: ");
    assert!(out.contains("the passwords differ"), "{out:?}");
    t.wait_raw();
    t.send("q\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    assert!(!srv.home("frank").exists());
    let users = std::fs::read_to_string(srv.root().join("users.toml")).unwrap();
    assert!(!users.contains("frank"), "{users}");
}

#[test]
fn a_lost_connection_offers_to_reconnect() {
    let srv = TestServer::with(Opts {
        toml: "[limits]\nidle_timeout_secs = 1\n".into(),
        ..Opts::default()
    });
    seed(&srv, &[("docs/a.txt", b"a")]);
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    run(&mut t, "cd docs", "alice:/docs>>> ");
    // The server closes the idle session.
    let idle_closes = || {
        srv.log()
            .lines()
            .filter(|l| l.contains("session end user=alice") && l.contains("(idle timeout)"))
            .count()
    };
    assert!(
        eventually(std::time::Duration::from_secs_f64(10.0), || idle_closes()
            == 1),
        "no idle timeout: {}",
        srv.log()
    );
    t.send("pwd\r");
    let out = at_prompt(&mut t, "connection lost; reconnect? [Y/n] ");
    assert!(out.contains("error: "), "{out:?}");
    t.send("\r");
    t.expect("reconnected");
    // Logged in again, back in the same directory.
    at_prompt(&mut t, "alice:/docs>>> ");
    let out = run(&mut t, "ls", "alice:/docs>>> ");
    assert!(out.contains("\r\na.txt\r\n"), "{out:?}");

    // Answering n leaves the shell.
    assert!(
        eventually(std::time::Duration::from_secs_f64(10.0), || idle_closes()
            == 2),
        "{}",
        srv.log()
    );
    t.send("pwd\r");
    at_prompt(&mut t, "connection lost; reconnect? [Y/n] ");
    t.send("n\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn an_unknown_tls_certificate_is_offered_for_trust_once() {
    let srv = TestServer::with(Opts {
        toml: "[tls]\nenabled = true\n".into(),
        ..Opts::default()
    });
    let fp = srv
        .fingerprint
        .clone()
        .expect("a TLS server prints its fingerprint");
    let known = srv.dir.path().join(".config/miniftp/known_servers");
    let unpinned = |args: &[&str], xdg: Option<&std::path::Path>| {
        let mut cmd = client(&srv);
        cmd.arg("shell")
            .args(args)
            .env("TERM", "xterm")
            .env_remove("MINIFTP_FINGERPRINT")
            .env_remove("MINIFTP_PLAINTEXT");
        if let Some(x) = xdg {
            cmd.env("XDG_CONFIG_HOME", x);
        }
        Pty::spawn(cmd)
    };

    // Refused: nothing remembered, exit 3.
    let elsewhere = srv.dir.path().join("elsewhere");
    let mut t = unpinned(&[], Some(&elsewhere));
    t.expect(&format!("Its fingerprint is {fp}"));
    t.expect("Trust it and remember it in ");
    t.send("n\r");
    assert_eq!(t.wait_exit().code(), Some(3), "{}", t.transcript());
    assert!(!elsewhere.join("miniftp/known_servers").exists());

    // Accepted: remembered in $HOME/.config/miniftp/known_servers.
    let mut t = unpinned(&[], None);
    t.expect(&format!("Its fingerprint is {fp}"));
    t.expect("Trust it and remember it in ");
    t.send("y\r");
    log_in(&mut t, "alice", PW);
    run(&mut t, "mkdir over-tls", "alice:/>>> ");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0), "{}", t.transcript());
    assert!(srv.home("alice").join("over-tls").is_dir());
    let text = std::fs::read_to_string(&known).expect("known_servers written");
    assert!(
        text.lines().any(|l| l == format!("{} {fp}", srv.addr)),
        "{text:?}"
    );

    // Asked once: the next session goes straight to the menu, and a
    // one-shot without a terminal trusts it too.
    let mut t = unpinned(&[], None);
    let seen = at_prompt(&mut t, "choice: ");
    assert!(!seen.contains("Trust it"), "{seen:?}");
    t.send("q\r");
    assert_eq!(t.wait_exit().code(), Some(0));
    let o = client(&srv)
        .args(["get", "over-tls", "-"])
        .env_remove("MINIFTP_FINGERPRINT")
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .output()
        .unwrap();
    exit_is(&o, 2); // a directory to standard output: reached the server
    let o = client(&srv)
        .args(["shell"])
        .env_remove("MINIFTP_FINGERPRINT")
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    exit_is(&o, 0);
}

/// A sparse file of `mib` MiB in alice's home: a download of it takes a
/// while (hashed and written on both ends) without using disk on the
/// server.
fn big_remote(srv: &TestServer, name: &str, mib: u64) {
    let f = std::fs::File::create(srv.home("alice").join(name)).unwrap();
    f.set_len(mib << 20).unwrap();
}

/// Waits until a partial download of `name` appears in `dir`.
#[track_caller]
fn wait_partial_download(dir: &std::path::Path, name: &str) {
    let part = dir.join(format!(".{name}.miniftp-part"));
    assert!(
        eventually(std::time::Duration::from_secs_f64(10.0), || {
            std::fs::metadata(&part).is_ok_and(|m| m.len() > 0)
        }),
        "the download of {name} never started"
    );
}

#[test]
fn ctrl_c_stops_a_transfer_and_clears_the_prompt() {
    let srv = TestServer::start();
    log_in_home(&srv);
    big_remote(&srv, "big.img", 2048);
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    // At the prompt: the line is dropped, the shell stays.
    t.send("stat big.img");
    t.send("\x03");
    at_prompt(&mut t, "alice:/>>> ");
    t.send("get big.img\r");
    wait_partial_download(srv.dir.path(), "big.img");
    t.send("\x03");
    t.expect("interrupted (a partial file is kept: resume with -c)");
    at_prompt(&mut t, "alice:/>>> ");
    let out = run(&mut t, "pwd", "alice:/>>> ");
    assert!(
        out.contains("\r\n/\r\n"),
        "the session is not usable: {out:?}"
    );
    assert!(
        !srv.dir.path().join("big.img").exists(),
        "an unverified file appeared"
    );
    assert!(
        srv.dir.path().join(".big.img.miniftp-part").exists(),
        "the partial is gone"
    );
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn commands_typed_during_a_transfer_run_after_it() {
    let srv = TestServer::start();
    log_in_home(&srv);
    big_remote(&srv, "big.img", 64);
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    t.send("get big.img\r");
    wait_partial_download(srv.dir.path(), "big.img");
    t.send("mkdir typed-ahead\r");
    // Typed while the download ran (its partial is still there).
    assert!(srv.dir.path().join(".big.img.miniftp-part").exists());
    t.expect("get big.img -> big.img");
    t.expect("alice:/>>> mkdir typed-ahead");
    t.expect("/typed-ahead: directory");
    at_prompt(&mut t, "alice:/>>> ");
    assert!(srv.home("alice").join("typed-ahead").is_dir());
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn history_survives_a_crash_of_the_shell() {
    let srv = TestServer::start();
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    run(&mut t, "mkdir remembered-dir", "alice:/>>> ");
    signal(&t.child, "KILL");
    let _ = t.wait_exit();
    let history =
        std::fs::read_to_string(srv.dir.path().join(".miniftp_history")).unwrap_or_default();
    assert!(
        history.contains("mkdir remembered-dir"),
        "history: {history:?}"
    );
}

#[test]
fn flags_are_strict_and_double_dash_ends_them() {
    let srv = TestServer::start();
    seed(&srv, &[("-notes.txt", b"n"), ("x.txt", b"x")]);
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    let out = run(&mut t, "rm -Z x.txt", "alice:/>>> ");
    assert!(out.contains("error: rm: unknown flag -Z"), "{out:?}");
    let out = run(&mut t, "ls --zap", "alice:/>>> ");
    assert!(out.contains("unknown flag --zap"), "{out:?}");
    assert!(srv.home("alice").join("x.txt").exists());
    let out = run(&mut t, "rm -notes.txt", "alice:/>>> ");
    assert!(out.contains("unknown flag -n"), "{out:?}");
    run(&mut t, "rm -- -notes.txt", "alice:/>>> ");
    assert!(!srv.home("alice").join("-notes.txt").exists());
    let out = run(&mut t, "rm -f not-there.txt", "alice:/>>> ");
    assert!(!out.contains("error"), "{out:?}");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

#[test]
fn put_r_local_globs_and_remote_globs() {
    let srv = TestServer::start();
    let d = srv.dir.path();
    write(&d.join("tree/a.txt"), b"a");
    write(&d.join("tree/sub/b.txt"), b"b");
    write(&d.join("one.note"), b"1");
    write(&d.join("two.note"), b"2");
    let mut t = shell(&srv, &[]);
    log_in(&mut t, "alice", PW);
    let out = run(&mut t, "put tree", "alice:/>>> ");
    assert!(out.contains("is a directory (use put -r)"), "{out:?}");
    run(&mut t, "put -r tree", "alice:/>>> ");
    same(&srv.home("alice").join("tree/sub/b.txt"), b"b");
    run(&mut t, "put *.note", "alice:/>>> ");
    same(&srv.home("alice").join("two.note"), b"2");
    run(&mut t, "mput one.note two.note", "alice:/>>> ");
    std::fs::create_dir_all(d.join("back")).unwrap();
    run(
        &mut t,
        &format!("lcd {}", s(&d.join("back"))),
        "alice:/>>> ",
    );
    run(&mut t, "get *.note", "alice:/>>> ");
    assert_eq!(names(&d.join("back")), ["one.note", "two.note"]);
    run(&mut t, "get -r tree copy", "alice:/>>> ");
    same(&d.join("back/copy/tree/sub/b.txt"), b"b");
    run(&mut t, "mget one.note tree/a.txt", "alice:/>>> ");
    same(&d.join("back/a.txt"), b"a");
    t.send("quit\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}

/// Logs alice in once over the protocol, so her home exists.
fn log_in_home(srv: &TestServer) {
    let mut w = srv.login("alice", PW);
    let _ = w.call(serde_json::json!({"op": "quit"}));
}

#[test]
fn the_menu_offers_register_only_when_the_server_takes_it() {
    let srv = TestServer::with(Opts {
        toml: "registration = \"closed\"\n".into(),
        ..Opts::default()
    });
    let mut t = shell(&srv, &[]);
    let banner = t.expect("choice: ");
    assert!(!banner.contains("register"), "{banner}");
    t.wait_raw();
    t.send("2\r");
    t.expect("registration is closed on this server");
    at_prompt(&mut t, "choice: ");
    t.send("q\r");
    assert_eq!(t.wait_exit().code(), Some(0));
}
