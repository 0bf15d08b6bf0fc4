#!/usr/bin/env bash
# make bench-ab OLD=PATH: two miniftp binaries side by side in one run, on
# rows 1, 2, 5 and 7 of `make bench` (docs/BENCHMARKS.md). Each binary runs
# its own server and its own client; the runs alternate A, B, A, B... so a
# busy machine slows both alike and the ratio stays fair. Prints a markdown
# table (medians [min-max], seconds) and the ratio new / old.
#
#   bench/ab.sh OLD_BIN NEW_BIN
#
# Settings from the environment: RUNS (7), BIG_MB (1024), CLIENTS (200),
# CSIZE (10 MiB), SMALL_N (1000), SMALL_BYTES (4096).
set -euo pipefail
OLD=${1:?usage: bench/ab.sh OLD_BIN NEW_BIN}
NEW=${2:?usage: bench/ab.sh OLD_BIN NEW_BIN}
: "${RUNS:=7}" "${BIG_MB:=1024}" "${CLIENTS:=200}" "${CSIZE:=10485760}" "${SMALL_N:=1000}" "${SMALL_BYTES:=4096}"
DIR=${BENCH_DIR:-/dev/shm/miniftp-ab}
PASSWORD=bench-password-$RANDOM$RANDOM
export MINIFTP_PASSWORD=$PASSWORD MINIFTP_USER=bench MINIFTP_PLAINTEXT=1
log() { printf '[ab %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$DIR"/{a,b}' EXIT

secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null || die "command failed ($?): $*"
  t1=$(date +%s.%N)
  awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.4f\n", a-b}'
}
stats() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
    printf "%.3f [%.3f-%.3f]", m, v[1], v[NR] }'
}
median() { stats "$@" | cut -d' ' -f1; }

mkdir -p "$DIR/small"
BIG=$DIR/big.bin CFILE=$DIR/c.bin
[[ -f $BIG && $(stat -c %s "$BIG") == $((BIG_MB << 20)) ]] || head -c $((BIG_MB << 20)) /dev/urandom >"$BIG"
head -c "$CSIZE" /dev/urandom >"$CFILE"
for ((i = 0; i < SMALL_N; i++)); do head -c "$SMALL_BYTES" /dev/urandom >"$DIR/small/f$i"; done

# start NAME BIN: a server for BIN with its data under $DIR/NAME; sets SRV_NAME
start() {
  local name=$1 bin=$2 port= i
  rm -rf "${DIR:?}/$name" && mkdir -p "$DIR/$name"
  cat >"$DIR/$name.toml" <<EOF
listen = "127.0.0.1:0"
root = "$DIR/$name"
[limits]
max_connections = $((CLIENTS + 100))
max_connections_per_ip = $((CLIENTS + 100))
max_failed_logins = 1000
[tls]
enabled = false
EOF
  echo "$PASSWORD" | "$bin" useradd bench --quota 1T --password-stdin --config "$DIR/$name.toml" >/dev/null
  "$bin" serve --config "$DIR/$name.toml" >"$DIR/$name.out" 2>"$DIR/$name.log" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$DIR/$name.out")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || die "server $name did not start: $(cat "$DIR/$name.log")"
  printf -v "SRV_$name" %s "127.0.0.1:$port"
}
start a "$OLD"
start b "$NEW"

# The four rows for binary BIN against server SRV; one sample each.
row1() { "$1" put -q -s "$2" "$BIG" /up.bin; }
row2() { "$1" get -q -s "$2" /up.bin "$DIR/got"; }
row5() { "$1" bench load put --file "$CFILE" --server "$2" --user bench --clients "$CLIENTS"; }
row7() { "$1" put -q -p -s "$2" "$DIR"/small/* "/m$3/"; }

declare -A T
sample() { # sample ROW SIDE BIN SRV [ARG]
  T[$1$2]+=" $(secs "row$1" "$3" "$4" "${5:-}")"
}
for side in a b; do # warm-up
  bin=$OLD srv=$SRV_a
  [[ $side == b ]] && bin=$NEW srv=$SRV_b
  row1 "$bin" "$srv" && row2 "$bin" "$srv" >/dev/null && row7 "$bin" "$srv" warm >/dev/null
done
for ((r = 0; r < RUNS; r++)); do
  for row in 1 2 5 7; do
    sample "$row" a "$OLD" "$SRV_a" "$r"
    sample "$row" b "$NEW" "$SRV_b" "$r"
  done
  log "run $((r + 1)) of $RUNS done"
done
for side in a b; do
  cmp -s "$BIG" "$DIR/$side/home/bench/up.bin" || die "$side: stored upload differs"
  n=$(find "$DIR/$side/home/bench/m0" -type f | wc -l)
  ((n == SMALL_N)) || die "$side: mput stored $n of $SMALL_N files"
done

what=([1]="\`put\` $BIG_MB MiB" [2]="\`get\` $BIG_MB MiB" [5]="$CLIENTS clients each put $CSIZE B"
  [7]="\`put\` $SMALL_N files of $SMALL_BYTES B")
echo "| row | what | old | new | new ÷ old |"
echo "|---|---|---|---|---|"
for row in 1 2 5 7; do
  read -ra a <<<"${T[${row}a]}"
  read -ra b <<<"${T[${row}b]}"
  ratio=$(awk -v n="$(median "${b[@]}")" -v o="$(median "${a[@]}")" 'BEGIN{printf "%.2f", n/o}')
  echo "| $row | ${what[$row]} | $(stats "${a[@]}") | $(stats "${b[@]}") | $ratio |"
done
echo
echo "RUNS=$RUNS, alternating old/new, files on $(df --output=fstype "$DIR" | tail -1), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
