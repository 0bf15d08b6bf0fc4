//! The adversarial ("hardening") suite: malformed input in every protocol
//! state, slow clients, connection floods, password guessing in parallel,
//! faults (disk full, a vanished home), SIGKILL during uploads, load, the
//! bounded tables, and a random-bytes barrage. Every test drives the real
//! binary over loopback sockets while a *bystander* client checks that the
//! server keeps serving others. The default run is bounded (about a minute
//! or two); `STRESS=1` scales the tests up and `--ignored` runs the long
//! ones: see docs/STRESS.md and `make stress`.

mod hx;

mod accounts;
mod barrage;
mod bounded;
mod closing;
mod crash;
mod depth;
mod fairness;
mod faults;
mod floods;
mod guessing;
mod load;
mod malformed;
mod modes;
mod planted;
mod races;
mod slow;
