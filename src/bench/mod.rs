//! `miniftp bench ...` (hidden): the Rust half of `make bench`. The load
//! generator speaks the shared protocol module; the ceilings measure what
//! this machine can do at all (a plain loopback TCP copy, SHA-256 speed),
//! so the table's ratios mean something. bench/run.sh drives it all.

pub mod load;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Many clients at once (see bench/run.sh).
    Load(load::LoadArgs),
    /// Ceiling: copy FILE over a loopback TCP connection with 128 KiB
    /// buffers; prints seconds.
    Tcpcopy { file: PathBuf },
    /// Ceiling: SHA-256 of FILE (read in 1 MiB chunks); prints seconds.
    Sha256 { file: PathBuf },
}

pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchCommand::Load(a) => load::run(a),
        BenchCommand::Tcpcopy { file } => tcpcopy(&file),
        BenchCommand::Sha256 { file } => sha256(&file),
    }
}

const BUF: usize = 128 * 1024;

fn tcpcopy(file: &PathBuf) -> Result<()> {
    let io = |e| Error::local(file, e);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; BUF];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let start = Instant::now();
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut s = std::net::TcpStream::connect(addr).map_err(io)?;
    let mut buf = vec![0u8; BUF];
    let mut sent = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).map_err(io)?;
        sent += n as u64;
    }
    drop(s);
    let got = receiver
        .join()
        .map_err(|_| Error::Other("receiver panicked".into()))?
        .map_err(io)?;
    if got != sent {
        return Err(Error::Other(format!("sent {sent}, received {got}")));
    }
    println!("{:.4}", start.elapsed().as_secs_f64());
    Ok(())
}

fn sha256(file: &PathBuf) -> Result<()> {
    let mut f = std::fs::File::open(file).map_err(|e| Error::local(file, e))?;
    let start = Instant::now();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::local(file, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let d = h.finalize();
    println!("{:.4} {}", start.elapsed().as_secs_f64(), hex::encode(d));
    Ok(())
}
