#!/usr/bin/env bash
# Starts miniftp's FTP listener as a peer of the FTP peer harness
# (../shared/bench/peers.sh, its generic `cmd` plugin), the way that harness
# starts vsftpd and pure-ftpd: plain FTP on HOST:PORT, passive ports
# LOW-HIGH, one user with write access whose home is the harness's home.
# Writes RUN/miniftp.toml, adds the user, then execs the server in the
# foreground (so the PID the harness holds and measures is the server's).
#
#   bench/ftp-peer.sh BIN HOST PORT PASV_LO PASV_HI USER PASS HOME RUN
#
# Started by bench/ftp-peers.sh (make bench-ftp); not meant to be run by hand.
set -euo pipefail
(($# == 9)) || { echo "usage: $0 BIN HOST PORT PASV_LO PASV_HI USER PASS HOME RUN" >&2; exit 2; }
BIN=$1 HOST=$2 PORT=$3 LO=$4 HI=$5 USER_NAME=$6 PASS=$7 HOME_DIR=$8 RUN=$9
mkdir -p "$RUN/data" "$HOME_DIR"
# Plaintext like the peers (they run without TLS in the harness); limits as
# pure-ftpd's -c/-C 4096; the server's defaults otherwise (argon2id m=12 MiB
# t=3, fsync on, a SHA-256 of every upload).
cat >"$RUN/miniftp.toml" <<CONF
listen = "127.0.0.1:0"
root = "$RUN/data"
[limits]
max_connections = 4096
max_connections_per_ip = 4096
max_failed_logins = 1000
[tls]
enabled = false
[ftp]
listen = "$HOST:$PORT"
passive_ports = "$LO-$HI"
require_tls = false
CONF
echo "$PASS" | "$BIN" useradd "$USER_NAME" --config "$RUN/miniftp.toml" --password-stdin \
  --quota 1T --max-entries 10000000 --home "$HOME_DIR" >/dev/null
exec "$BIN" serve --config "$RUN/miniftp.toml"
