#!/usr/bin/env bash
# make bench-s3: the S3 row of docs/BENCHMARKS.md. `miniftp put`/`get` of
# one file through a server whose homes are in a Garage bucket, against
# `rclone copyto` of the same file to and from the same bucket, runs
# interleaved (the order alternates each run) so that a machine whose load
# changes affects both columns alike.
#
#   bench/s3.sh     writes docs/BENCHMARKS.s3.md and the S3 section of
#                   docs/BENCHMARKS.md (bench/run.sh keeps that section)
#
# The cluster: three Garage nodes on loopback, replication factor 3 (every
# byte is stored three times on the same machine), data on tmpfs, started
# and stopped here. Needs garage (make garage) and rclone (make
# bench-peers). Overrides: RUNS (3), BIG_MB (256), BENCH_S3_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${MINIFTP_BIN:-$ROOT/target/release/miniftp}
: "${RUNS:=3}" "${BIG_MB:=256}"
DIR=${BENCH_S3_DIR:-/dev/shm/miniftp-bench-s3}
OUT=$ROOT/docs/BENCHMARKS.s3.md
GARAGE=${MINIFTP_GARAGE:-$(command -v garage || echo "${CARGO_HOME:-$HOME/.cargo}/bin/garage")}
BUCKET=miniftp-bench
PASSWORD=bench-$RANDOM$RANDOM

log() { printf '[bench-s3 %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[[ -x $BIN ]] || die "no binary at $BIN (make build)"
[[ -x $GARAGE ]] || die "no garage at $GARAGE (make garage)"
command -v rclone >/dev/null || die "no rclone (make bench-peers)"

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
rm -rf "$DIR" && mkdir -p "$DIR"

# ------------------------------------------------------------ the cluster
g1() { "$GARAGE" -c "$DIR/g1.toml" "$@"; }
start_garage() {
  local secret base n id
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  base=$((40000 + RANDOM % 500 * 10))
  for n in 1 2 3; do
    cat >"$DIR/g$n.toml" <<EOF
metadata_dir = "$DIR/g$n/meta"
data_dir = "$DIR/g$n/data"
db_engine = "lmdb"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$((base + n))"
rpc_public_addr = "127.0.0.1:$((base + n))"
rpc_secret = "$secret"
bootstrap_peers = []
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$((base + 3 + n))"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$((base + 6 + n))"
EOF
    RUST_LOG=garage=warn "$GARAGE" -c "$DIR/g$n.toml" server >"$DIR/g$n.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 120); do g1 status >/dev/null 2>&1 && break; sleep 0.5; done
  for n in 2 3; do
    id=$("$GARAGE" -c "$DIR/g$n.toml" node id -q) || die "garage node $n"
    g1 node connect "$id" >/dev/null || die "garage connect $n"
  done
  for _ in $(seq 1 60); do
    (($(g1 status 2>/dev/null | grep -c 'NO ROLE') == 3)) && break
    sleep 0.5
  done
  for id in $(g1 status | grep 'NO ROLE' | grep -oE '^[0-9a-f]{16}'); do
    g1 layout assign -z dc1 -c 4G "$id" >/dev/null
  done
  g1 layout apply --version 1 >/dev/null
  g1 key create bench >"$DIR/key.txt"
  KEY_ID=$(grep -oE 'GK[0-9a-f]+' "$DIR/key.txt" | head -1)
  SECRET=$(grep -i 'secret' "$DIR/key.txt" | grep -oE '[0-9a-f]{64}' | head -1)
  g1 bucket create "$BUCKET" >/dev/null
  g1 bucket allow --read --write --owner "$BUCKET" --key bench >/dev/null
  ENDPOINT="http://127.0.0.1:$((base + 4))"
  [[ -n $KEY_ID && -n $SECRET ]] || die "no key: $(cat "$DIR/key.txt")"
}
start_garage
log "garage: 3 nodes, endpoint $ENDPOINT, bucket $BUCKET"

# rclone's S3 remote `g:` on the same endpoint, bucket and key. Debian's
# rclone refuses a plain-HTTP endpoint when AWS_CA_BUNDLE is set.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_G_TYPE=s3 RCLONE_CONFIG_G_PROVIDER=Other RCLONE_CONFIG_G_REGION=garage
export RCLONE_CONFIG_G_ENDPOINT=$ENDPOINT RCLONE_CONFIG_G_ACCESS_KEY_ID=$KEY_ID
export RCLONE_CONFIG_G_SECRET_ACCESS_KEY=$SECRET RCLONE_CONFIG_G_FORCE_PATH_STYLE=true
for _ in $(seq 1 60); do rclone lsd "g:$BUCKET" >/dev/null 2>&1 && break; sleep 0.5; done

# ------------------------------------------------------------- the server
echo "$SECRET" >"$DIR/secret"
cat >"$DIR/miniftp.toml" <<EOF
listen = "127.0.0.1:0"
root = "$DIR/data"
[tls]
enabled = false
[storage]
backend = "s3"
endpoint = "$ENDPOINT"
region = "garage"
bucket = "$BUCKET"
prefix = "miniftp"
access_key_id = "$KEY_ID"
secret_access_key_file = "$DIR/secret"
EOF
echo "$PASSWORD" | "$BIN" useradd bench --quota 1T --password-stdin --config "$DIR/miniftp.toml" >/dev/null
"$BIN" serve --config "$DIR/miniftp.toml" >"$DIR/serve.out" 2>"$DIR/serve.log" &
PIDS+=($!)
for _ in $(seq 1 200); do grep -qs 'listening on' "$DIR/serve.out" && break; sleep 0.05; done
ADDR=$(sed -n 's/.*listening on \(.*\)/\1/p' "$DIR/serve.out")
[[ -n $ADDR ]] || die "server did not start: $(cat "$DIR/serve.log")"
export MINIFTP_PLAINTEXT=1 MINIFTP_SERVER=$ADDR MINIFTP_USER=bench MINIFTP_PASSWORD=$PASSWORD

# ------------------------------------------------------------------- runs
BIG=$DIR/big.bin
head -c $((BIG_MB << 20)) /dev/urandom >"$BIG"
BIG_SHA=$(sha256sum "$BIG" | cut -d' ' -f1)
now() { date +%s.%N; }
secs() {
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>"$DIR/last.err" || die "command failed: $* ($(cat "$DIR/last.err"))"
  t1=$(now)
  awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.3f\n", a-b}'
}
stats() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
    printf "%.2f [%.2f-%.2f]", m, v[1], v[NR] }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.3f", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
check() { [[ $(sha256sum "$1" | cut -d' ' -f1) == "$BIG_SHA" ]] || die "$2: the copy differs"; rm -f "$1"; }

M_PUT=() M_GET=() R_PUT=() R_GET=()
miniftp_round() {
  M_PUT+=("$(secs "$BIN" put -q "$BIG" /big.bin)")
  M_GET+=("$(secs "$BIN" get -q /big.bin "$DIR/got-m")")
  check "$DIR/got-m" "miniftp get"
}
rclone_round() {
  R_PUT+=("$(secs rclone copyto "$BIG" "g:$BUCKET/rclone/big.bin")")
  R_GET+=("$(secs rclone copyto "g:$BUCKET/rclone/big.bin" "$DIR/got-r")")
  check "$DIR/got-r" "rclone copy"
  # Deleted, or the next copyto would find it up to date and skip it
  # (miniftp's put replaces its file whatever is there).
  rclone deletefile "g:$BUCKET/rclone/big.bin"
}
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 0; r < RUNS; r++)); do
  if ((r % 2)); then rclone_round; miniftp_round; else miniftp_round; rclone_round; fi
  log "run $((r + 1)): miniftp put ${M_PUT[-1]} get ${M_GET[-1]}; rclone put ${R_PUT[-1]} get ${R_GET[-1]}"
done
LOAD1=$(cut -d' ' -f1 /proc/loadavg)

# ------------------------------------------------------------------ table
ratio() { awk -v a="$(median "${@:1:RUNS}")" -v b="$(median "${@:RUNS+1}")" 'BEGIN{printf "%.2f", a/b}'; }
rate() { awk -v mb="$BIG_MB" -v s="$(median "$@")" 'BEGIN{printf "%.0f", mb/s}'; }
gv=$("$GARAGE" --version 2>/dev/null | head -1 | awk '{print $2}' | sed 's/^cargo://')
rv=$(rclone version 2>/dev/null | head -1 | awk '{print $2}' | sed 's/^cargo://')
{
  echo "## S3 backend against rclone (make bench-s3)"
  echo
  echo "Produced by \`make bench-s3\` (bench/s3.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores,"
  echo "load average $LOAD0 at the start and $LOAD1 at the end (a shared machine; the"
  echo "runs of the two tools are interleaved, alternating which goes first)."
  echo "Garage ${gv:-?}: three nodes on loopback, replication factor 3, data on"
  echo "$(df --output=fstype "$DIR" | tail -1); rclone ${rv:-?} with its default S3 settings"
  echo "(\`rclone copyto\`, 5 MiB parts, 4 at once); miniftp over plain TCP, its"
  echo "default part size (8 MiB, one at a time) and SHA-256 verification end"
  echo "to end. A ${BIG_MB} MiB file, RUNS=$RUNS; seconds, median [min-max]; every"
  echo "copy's SHA-256 checked by the script."
  echo
  echo "| what | miniftp (S3 backend) | rclone | miniftp ÷ rclone | target |"
  echo "|---|---|---|---|---|"
  echo "| put ${BIG_MB} MiB into the bucket ($(rate "${M_PUT[@]}") / $(rate "${R_PUT[@]}") MiB/s) | $(stats "${M_PUT[@]}") | $(stats "${R_PUT[@]}") | $(ratio "${M_PUT[@]}" "${R_PUT[@]}") | ≤ 1.0 |"
  echo "| get ${BIG_MB} MiB from the bucket ($(rate "${M_GET[@]}") / $(rate "${R_GET[@]}") MiB/s) | $(stats "${M_GET[@]}") | $(stats "${R_GET[@]}") | $(ratio "${M_GET[@]}" "${R_GET[@]}") | ≤ 1.0 |"
  if [[ -f $ROOT/docs/BENCHMARKS.s3.notes.md ]]; then echo; cat "$ROOT/docs/BENCHMARKS.s3.notes.md"; fi
} >"$OUT"

# Splice into docs/BENCHMARKS.md: replace the section, or add it at the end.
MD=$ROOT/docs/BENCHMARKS.md
if [[ -f $MD ]]; then
  awk -v sec="$OUT" '
    /^## S3 backend against rclone/ { skip = 1; while ((getline l < sec) > 0) print l; next }
    skip && /^## / { skip = 0; print "" }
    !skip { print }' "$MD" >"$MD.tmp"
  grep -q '^## S3 backend against rclone' "$MD.tmp" || { echo; cat "$OUT"; } >>"$MD.tmp"
  mv "$MD.tmp" "$MD"
fi
cat "$OUT"
log "written to $OUT and docs/BENCHMARKS.md"
