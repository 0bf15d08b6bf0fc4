#!/usr/bin/env bash
# make bench: miniftp's benchmark table, side by side with vsftpd when it is
# installed (make bench-peers), written to docs/BENCHMARKS.md.
#
#   bench/run.sh            full run (~5-10 min), writes docs/BENCHMARKS.md
#   bench/run.sh --smoke    seconds-long version for `make test`: tiny sizes,
#                           checks digests and counts, never a time
#   bench/run.sh --sync-only  only the sync rows (needs root for its sshd)
#
# Every figure is the median of several runs with [min-max]. Files live on
# tmpfs (/dev/shm) so the disk is not what is measured; one row repeats the
# 1 GiB upload on the real disk. Settings can be overridden from the
# environment (RUNS, BIG_MB, CLIENTS, CSIZE, SMALL_N, SMALL_BYTES, MANY_IDLE).
set -euo pipefail

SMOKE=0
[[ ${1:-} == --smoke ]] && SMOKE=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${MINIFTP_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/miniftp}
PEER_BENCH=${PEER_BENCH:-$ROOT/../shared/bench}
if ((SMOKE)); then
  : "${RUNS:=1}" "${BIG_MB:=4}" "${CLIENTS:=8}" "${CSIZE:=262144}" "${SMALL_N:=40}"
  : "${SMALL_BYTES:=4096}" "${MANY_IDLE:=50}" "${GRP_RUNS:=1}" "${SYNC_N:=200}" "${SYNC_MB:=4}"
  DIR=$(mktemp -d /dev/shm/miniftp-smoke.XXXXXX 2>/dev/null || mktemp -d)
  DISK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/miniftp-smoke-disk.XXXXXX")
  OUT=$DIR/BENCHMARKS.md
else
  : "${RUNS:=5}" "${BIG_MB:=1024}" "${CLIENTS:=200}" "${CSIZE:=10485760}" "${SMALL_N:=1000}"
  : "${SMALL_BYTES:=4096}" "${MANY_IDLE:=10000}" "${GRP_RUNS:=3}" "${SYNC_N:=10000}" "${SYNC_MB:=1024}"
  DIR=${BENCH_DIR:-/dev/shm/miniftp-bench}
  DISK_DIR=${BENCH_DISK_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/bench-disk}
  OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
fi
PASSWORD=bench-password-$RANDOM$RANDOM
export MINIFTP_PASSWORD=$PASSWORD MINIFTP_USER=bench

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[[ -x $BIN ]] || die "no binary at $BIN (make build)"

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((SMOKE)); then rm -rf "$DIR" "$DISK_DIR"; else rm -rf "$DIR/data" "$DIR/tls-data" "$DIR/got" "$DISK_DIR"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
# secs CMD... : run CMD, print its wall time in seconds; fail on non-zero exit
secs() {
  local t0 t1
  t0=$(now)
  "$@" || die "command failed ($?): $*"
  t1=$(now)
  awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.4f\n", a-b}'
}
# stats V... : "median [min-max]" of the values
stats() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
    printf "%.3f [%.3f-%.3f]", m, v[1], v[NR] }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.3f", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
json() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" <<<"$2" | awk '{printf "%.2f", $1}'; }
sha() { "$BIN" bench sha256 "$1" | awk '{print $2}'; }
pss_kib() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || awk '/VmRSS/{print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# ---------------------------------------------------------------- fixtures
mkdir -p "$DIR" "$DISK_DIR"
log "fixtures in $DIR (big file $BIG_MB MiB, $SMALL_N x $SMALL_BYTES B, $CLIENTS clients x $CSIZE B)"
BIG=$DIR/big.bin
[[ -f $BIG && $(stat -c %s "$BIG") == $((BIG_MB << 20)) ]] || head -c $((BIG_MB << 20)) /dev/urandom >"$BIG"
CFILE=$DIR/c.bin
head -c "$CSIZE" /dev/urandom >"$CFILE"
rm -rf "$DIR/small" && mkdir -p "$DIR/small"
for ((i = 0; i < SMALL_N; i++)); do head -c "$SMALL_BYTES" /dev/urandom >"$DIR/small/f$i"; done
BIG_SHA=$(sha "$BIG")

# ----------------------------------------------------------------- servers
# start_server NAME DATA_ROOT [tls] : sets PORT_<NAME>, PID_<NAME> and, with
# tls, FP_<NAME> (the fingerprint the server prints)
start_server() {
  local name=$1 data=$2 tls=false
  [[ ${3:-} == tls ]] && tls=true
  rm -rf "$data" && mkdir -p "$data"
  cat >"$DIR/$name.toml" <<EOF
listen = "127.0.0.1:0"
root = "$data"
[limits]
max_connections = $((MANY_IDLE + CLIENTS + 100))
max_connections_per_ip = $((MANY_IDLE + CLIENTS + 100))
idle_timeout_secs = 3600
login_timeout_secs = 3600
max_failed_logins = 1000
[tls]
enabled = $tls
EOF
  echo "$PASSWORD" | "$BIN" useradd bench --quota 1T --password-stdin --config "$DIR/$name.toml" >/dev/null
  # Made before the server starts: the loop below may read it first.
  : >"$DIR/$name.out"
  "$BIN" serve --config "$DIR/$name.toml" >"$DIR/$name.out" 2>"$DIR/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  local i port=
  for ((i = 0; i < 100; i++)); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$DIR/$name.out")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || die "server $name did not start: $(cat "$DIR/$name.log")"
  printf -v "PORT_$name" %s "$port"
  printf -v "PID_$name" %s "$pid"
  printf -v "FP_$name" %s "$(sed -n 's/^fingerprint //p' "$DIR/$name.out")"
}

# `bench/run.sh --sync-only`: just the sync rows, printed (the table in
# docs/BENCHMARKS.md is left alone).
ratio() { # ratio OURS THEIRS -> "x.xx" or "-"
  if [[ -z ${2:-} ]]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; fi
}
# shellcheck source=bench/sync.sh
source "$ROOT/bench/sync.sh"
if [[ ${1:-} == --sync-only ]]; then
  sync_rows
  printf '%s\n' "${SYNC_ROWS[@]}"
  exit 0
fi

# The main rows run in plaintext, like the FTP peers; the TLS rows below
# repeat the big transfers over TLS.
export MINIFTP_PLAINTEXT=1
start_server mem "$DIR/data"
export MINIFTP_SERVER=127.0.0.1:$PORT_mem
sleep 0.2
IDLE_PSS=$(pss_kib "$PID_mem")
log "server on $MINIFTP_SERVER, pid $PID_mem, idle PSS $(mib "$IDLE_PSS") MiB"

# ---------------------------------------------------------------- ceilings
TCP=() SHA=()
for ((r = 0; r < RUNS; r++)); do
  TCP+=("$("$BIN" bench tcpcopy "$BIG")")
  SHA+=("$("$BIN" bench sha256 "$BIG" | awk '{print $1}')")
done
rate() { awk -v mb="$BIG_MB" -v s="$1" 'BEGIN{printf "%.0f", mb/s}'; }
TCP_RATE=$(rate "$(median "${TCP[@]}")")
SHA_RATE=$(rate "$(median "${SHA[@]}")")
log "ceilings: loopback copy $TCP_RATE MiB/s, SHA-256 $SHA_RATE MiB/s"

# ---------------------------------------------------------- rows 1, 2, 7
put_big() { "$BIN" put -q "$BIG" /up.bin; }
get_big() { "$BIN" get -q /up.bin "$DIR/got"; }
check_big() {
  [[ $(sha "$DIR/data/home/bench/up.bin") == "$BIG_SHA" ]] || die "stored upload differs"
  [[ $(sha "$DIR/got") == "$BIG_SHA" ]] || die "downloaded copy differs"
}
one_shots() { # sets PUT_T GET_T arrays; $1 = runs
  PUT_T=() GET_T=()
  put_big && get_big # warm-up
  for ((r = 0; r < $1; r++)); do PUT_T+=("$(secs put_big)"); done
  for ((r = 0; r < $1; r++)); do GET_T+=("$(secs get_big)"); done
  check_big
}
one_shots "$RUNS"
ROW1=("${PUT_T[@]}") ROW2=("${GET_T[@]}")
log "row 1 put: $(stats "${ROW1[@]}") s; row 2 get: $(stats "${ROW2[@]}") s"

mput() { "$BIN" put -q -p "$DIR"/small/* "/m$1/"; }
ROW7=()
mput warm
for ((r = 0; r < RUNS; r++)); do ROW7+=("$(secs mput "$r")"); done
n=$(find "$DIR/data/home/bench/m0" -type f | wc -l)
((n == SMALL_N)) || die "mput stored $n of $SMALL_N files"
cmp -s "$DIR/small/f1" "$DIR/data/home/bench/m0/f1" || die "mput content differs"
log "row 7 mput: $(stats "${ROW7[@]}") s"

# ------------------------------------------------------- rows 3, 4, 5, 9
load() { "$BIN" bench load "$@" --server "$MINIFTP_SERVER" --user bench --clients "$CLIENTS" --probe; }
ROW3=() P3=() ROW4=() P4=() ROW5=() P5=()
"$BIN" put -q "$CFILE" /load.bin
for ((r = 0; r < GRP_RUNS; r++)); do
  j=$(load logins) || die "logins: $j"
  ROW3+=("$(json wall_secs "$j")") P3+=("$(json probe_p99_ms "$j")")
  j=$(load get --path /load.bin) || die "get load: $j"
  ROW4+=("$(json wall_secs "$j")") P4+=("$(json probe_p99_ms "$j")") P4_50=$(json probe_p50_ms "$j")
  j=$(load put --file "$CFILE") || die "put load: $j"
  ROW5+=("$(json wall_secs "$j")") P5+=("$(json probe_p99_ms "$j")") P5_50=$(json probe_p50_ms "$j")
  [[ $(sha "$DIR/data/home/bench/load/c0") == "$(sha "$CFILE")" ]] || die "put load content differs"
done
log "row 3 logins: $(stats "${ROW3[@]}") s (pwd p99 $(median "${P3[@]}") ms)"
log "row 4 get x$CLIENTS: $(stats "${ROW4[@]}") s; row 5 put x$CLIENTS: $(stats "${ROW5[@]}") s"

# ----------------------------------------------------------- rows 6 and 8
# hold N connections open (logged in or not) until the fifo closes
hold() { # hold N [--login] ; sets HOLD_PID
  local fifo=$DIR/hold.fifo
  rm -f "$fifo" && mkfifo "$fifo"
  "$BIN" bench load idle --server "$MINIFTP_SERVER" --user bench --clients "$1" ${2:-} <"$fifo" >"$DIR/hold.out" &
  HOLD_PID=$!
  PIDS+=("$HOLD_PID")
  exec 9>"$fifo"
  local i
  for ((i = 0; i < 1200; i++)); do
    grep -q ready "$DIR/hold.out" 2>/dev/null && return 0
    kill -0 "$HOLD_PID" 2>/dev/null || die "idle holder died"
    sleep 0.05
  done
  die "idle holder never got ready"
}
release() { exec 9>&-; wait "$HOLD_PID" 2>/dev/null || true; }

hold "$CLIENTS" --login
sleep 0.3
LOGGED_PSS=$(pss_kib "$PID_mem")
one_shots "$GRP_RUNS"
ROW6P=("${PUT_T[@]}") ROW6G=("${GET_T[@]}")
release
log "row 6 with $CLIENTS idle: put $(stats "${ROW6P[@]}") s, get $(stats "${ROW6G[@]}") s; PSS $(mib "$LOGGED_PSS") MiB"

hold "$MANY_IDLE"
sleep 0.3
MANY_PSS=$(pss_kib "$PID_mem")
release
log "row 8: PSS idle $(mib "$IDLE_PSS"), $CLIENTS logged in $(mib "$LOGGED_PSS"), $MANY_IDLE idle conns $(mib "$MANY_PSS") MiB"

# ------------------------------------------------------------ disk row
start_server disk "$DISK_DIR/data"
DISK_T=()
"$BIN" put -q -s "127.0.0.1:$PORT_disk" "$BIG" /up.bin
for ((r = 0; r < GRP_RUNS; r++)); do DISK_T+=("$(secs "$BIN" put -q -s "127.0.0.1:$PORT_disk" "$BIG" /up.bin)"); done
[[ $(sha "$DISK_DIR/data/home/bench/up.bin") == "$BIG_SHA" ]] || die "disk upload differs"
log "disk row: put $(stats "${DISK_T[@]}") s"

# ------------------------------------------------------------- TLS rows
start_server tls "$DIR/tls-data" tls
TLS_PUT=() TLS_GET=()
tls_cli() { MINIFTP_PLAINTEXT=0 MINIFTP_FINGERPRINT=$FP_tls "$BIN" "$@" -s "127.0.0.1:$PORT_tls"; }
tls_cli put -q "$BIG" /up.bin && tls_cli get -q /up.bin "$DIR/got"
for ((r = 0; r < GRP_RUNS; r++)); do TLS_PUT+=("$(secs tls_cli put -q "$BIG" /up.bin)"); done
for ((r = 0; r < GRP_RUNS; r++)); do TLS_GET+=("$(secs tls_cli get -q /up.bin "$DIR/got")"); done
[[ $(sha "$DIR/tls-data/home/bench/up.bin") == "$BIG_SHA" && $(sha "$DIR/got") == "$BIG_SHA" ]] || die "TLS copies differ"
kill "$PID_tls" 2>/dev/null || true
log "TLS: put $(stats "${TLS_PUT[@]}") s, get $(stats "${TLS_GET[@]}") s"

# ------------------------------------------------------------- sync rows
if [[ ${SKIP_SYNC:-0} != 1 ]]; then sync_rows; else SYNC_ROWS=(); fi

# ---------------------------------------------------------------- peers
PEER=none
PEER_PUT=() PEER_GET=() PEER_MPUT=()
peer_note="vsftpd, curl or lftp not installed (\`make bench-peers\` installs them)"
if ((!SMOKE)) && command -v vsftpd >/dev/null && command -v curl >/dev/null && command -v lftp >/dev/null \
  && id benchuser >/dev/null 2>&1 && [[ -f $PEER_BENCH/conf/vsftpd.conf.in ]]; then
  PEER=vsftpd
  VPORT=${VSFTPD_PORT:-2131}
  VHOME=$(getent passwd benchuser | cut -d: -f6)
  mkdir -p "$VHOME" "$DIR/vsftpd-empty" && chown benchuser "$VHOME"
  sed -e "s/@PORT@/$VPORT/" -e "s/@PASV_LO@/21000/" -e "s/@PASV_HI@/21999/" -e "s/@CLIENTS@/$CLIENTS/" \
    -e "s#@RUN@#$DIR#" -e "s/@VSFTPD_SECCOMP@/NO/" -e "s/@VSFTPD_ISOLATE@/YES/" \
    -e "s#secure_chroot_dir=.*#secure_chroot_dir=$DIR/vsftpd-empty#" \
    "$PEER_BENCH/conf/vsftpd.conf.in" >"$DIR/vsftpd.conf"
  vsftpd "$DIR/vsftpd.conf" >"$DIR/vsftpd.stdout" 2>&1 &
  PIDS+=($!)
  sleep 0.5
  URL=ftp://benchuser:benchpw@127.0.0.1:$VPORT
  cp "$BIG" "$VHOME/down.bin" && chown benchuser "$VHOME/down.bin"
  curl -sS -T "$BIG" "$URL/up.bin" && curl -sS -o "$DIR/got" "$URL/down.bin" # warm-up
  for ((r = 0; r < RUNS; r++)); do PEER_PUT+=("$(secs curl -sS -T "$BIG" "$URL/up.bin")"); done
  for ((r = 0; r < RUNS; r++)); do PEER_GET+=("$(secs curl -sS -o "$DIR/got" "$URL/down.bin")"); done
  [[ $(sha "$VHOME/up.bin") == "$BIG_SHA" && $(sha "$DIR/got") == "$BIG_SHA" ]] || die "vsftpd copies differ"
  lftp_mput() {
    lftp -u benchuser,benchpw -p "$VPORT" \
      -e "set cmd:fail-exit yes; set ftp:ssl-allow no; mkdir -p m$1; cd m$1; mput $DIR/small/*; quit" 127.0.0.1 >/dev/null
  }
  lftp_mput warm
  for ((r = 0; r < RUNS; r++)); do
    PEER_MPUT+=("$(secs lftp_mput "$r")")
  done
  rm -rf "$VHOME"/m* "$VHOME/up.bin" "$VHOME/down.bin"
  peer_note="vsftpd $(dpkg-query -W -f='${Version}' vsftpd 2>/dev/null) with curl -T / curl -o FILE and lftp mput, same run"
  log "vsftpd: put $(stats "${PEER_PUT[@]}"), get $(stats "${PEER_GET[@]}"), mput $(stats "${PEER_MPUT[@]}")"
fi

# ---------------------------------------------------------------- table
m() { median "$@"; }
pm() { if (($#)); then stats "$@"; else echo "-"; fi; }
pmed() { if (($#)); then median "$@"; fi; }
put_rate=$(rate "$(m "${ROW1[@]}")") get_rate=$(rate "$(m "${ROW2[@]}")")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "# Benchmarks"
  echo
  if ((SMOKE)); then echo "Smoke run (tiny sizes): checks the harness, not the speed."; echo; fi
  echo "Produced by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "- Machine: $cpu, $(nproc) cores, kernel $(uname -r), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- Settings: RUNS=$RUNS BIG_MB=$BIG_MB CLIENTS=$CLIENTS CSIZE=$CSIZE SMALL_N=$SMALL_N SMALL_BYTES=$SMALL_BYTES MANY_IDLE=$MANY_IDLE; files on $(df --output=fstype "$DIR" | tail -1) ($DIR); server with default worker pools and argon2id cost (m=12 MiB, t=3)."
  echo "- Ceilings (same run): loopback TCP copy with 128 KiB buffers $TCP_RATE MiB/s; SHA-256 (sha2 crate) $SHA_RATE MiB/s."
  echo "- Peer: $peer_note."
  echo "- Figures: seconds, median [min-max] of the runs; every transfer's SHA-256 verified end to end."
  echo
  echo "| # | what | miniftp | $PEER | miniftp ÷ peer | target |"
  echo "|---|---|---|---|---|---|"
  echo "| 1 | \`miniftp put\` ${BIG_MB} MiB, whole process ($put_rate MiB/s) | $(pm "${ROW1[@]}") | $(pm "${PEER_PUT[@]}") | $(ratio "$(m "${ROW1[@]}")" "$(pmed "${PEER_PUT[@]}")") | ≤ 1.0× peer; ≥ 0.8 × min(ceilings) |"
  echo "| 2 | \`miniftp get\` ${BIG_MB} MiB to a file ($get_rate MiB/s) | $(pm "${ROW2[@]}") | $(pm "${PEER_GET[@]}") | $(ratio "$(m "${ROW2[@]}")" "$(pmed "${PEER_GET[@]}")") | ≤ 1.3× peer |"
  echo "| 3 | $CLIENTS clients connect + log in at once | $(pm "${ROW3[@]}") | - | - | ≤ 3 s |"
  echo "| 3b | logged-in client's \`pwd\` p99 during row 3 (ms) | $(m "${P3[@]}") | - | - | ≤ 5 ms |"
  echo "| 4 | $CLIENTS clients each get $CSIZE B | $(pm "${ROW4[@]}") | - | - | ≤ 1.0 s |"
  echo "| 5 | $CLIENTS clients each put $CSIZE B | $(pm "${ROW5[@]}") | - | - | ≤ 2.0 s |"
  echo "| 6 | put / get ${BIG_MB} MiB with $CLIENTS idle clients logged in | $(pm "${ROW6P[@]}") / $(pm "${ROW6G[@]}") | - | $(ratio "$(m "${ROW1[@]}")" "$(m "${ROW6P[@]}")") / $(ratio "$(m "${ROW2[@]}")" "$(m "${ROW6G[@]}")") of rows 1/2 speed | ≥ 0.9 |"
  echo "| 7 | \`miniftp put\` $SMALL_N files of $SMALL_BYTES B, one process | $(pm "${ROW7[@]}") | $(pm "${PEER_MPUT[@]}") | $(ratio "$(m "${ROW7[@]}")" "$(pmed "${PEER_MPUT[@]}")") | ≤ 0.25 s |"
  echo "| 8 | server PSS (MiB): idle / $CLIENTS logged in / $MANY_IDLE idle connections | $(mib "$IDLE_PSS") / $(mib "$LOGGED_PSS") / $(mib "$MANY_PSS") | - | - | ≤ 4 / 8 / 64 |"
  echo "| 9 | \`pwd\` p50 / p99 (ms) during rows 4 and 5 | ${P4_50:-0} / $(m "${P4[@]}") and ${P5_50:-0} / $(m "${P5[@]}") | - | - | p99 ≤ 10 ms |"
  echo "| tls | \`miniftp put\` / \`get\` ${BIG_MB} MiB over TLS 1.3 (AES-GCM) | $(pm "${TLS_PUT[@]}") / $(pm "${TLS_GET[@]}") | - | $(ratio "$(m "${ROW1[@]}")" "$(m "${TLS_PUT[@]}")") / $(ratio "$(m "${ROW2[@]}")" "$(m "${TLS_GET[@]}")") of plaintext speed | ≥ 0.7 |"
  echo "| disk | \`miniftp put\` ${BIG_MB} MiB to a real disk ($(df --output=fstype "$DISK_DIR" | tail -1)) | $(pm "${DISK_T[@]}") | - | - | - |"
  for row in "${SYNC_ROWS[@]}"; do echo "$row"; done
  if [[ -f $ROOT/docs/BENCHMARKS.ftp.md ]] && ((!SMOKE)); then
    echo; echo "## The FTP listener against FTP peers (make bench-ftp)"; echo
    cat "$ROOT/docs/BENCHMARKS.ftp.md"
  fi
  if [[ -f $ROOT/docs/BENCHMARKS.notes.md ]] && ((!SMOKE)); then echo; cat "$ROOT/docs/BENCHMARKS.notes.md"; fi
  # The S3 section comes from make bench-s3 (bench/s3.sh), run apart.
  if [[ -f $ROOT/docs/BENCHMARKS.s3.md ]] && ((!SMOKE)); then echo; cat "$ROOT/docs/BENCHMARKS.s3.md"; fi
} >"$OUT"
cat "$OUT"
log "table written to $OUT"
