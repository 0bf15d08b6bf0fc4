#!/usr/bin/env bash
# make bench-ftp: miniftp's FTP listener measured as one more peer of
# vsftpd and pure-ftpd, with their clients (curl, lftp, ftpbench), by the
# FTP peer harness in ../shared/bench (peers.sh; README.md there). Runs only
# where that harness and the peers are installed (make bench-peers), as
# root (the peers log in local users). Writes docs/BENCHMARKS.ftp.md, which
# `make bench` appends to docs/BENCHMARKS.md.
#
#   bench/ftp-peers.sh [PASSES]    default 2 passes (~8 min each)
#
# The machine is shared and its load drifts over minutes, so the peers run
# interleaved: pass 1 in the order vsftpd, pure-ftpd, miniftp; pass 2 in the
# reverse order, and so on; each cell is the median over all passes. Extra
# settings go through the environment to peers.sh (CLIENTS, BIG_MB, ...).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PASSES=${1:-2}
BIN=${MINIFTP_BIN:-$ROOT/target/release/miniftp}
# ../shared/bench beside the checkout (or beside its worktree directory).
if [[ -z ${PEER_BENCH:-} ]]; then
  PEER_BENCH=$ROOT/../shared/bench
  [[ -d $PEER_BENCH ]] || PEER_BENCH=$ROOT/../../shared/bench
fi
OUT=${FTP_BENCH_OUT:-$ROOT/target/bench-ftp/$(date -u +%Y%m%d-%H%M%S)}
DOC=${FTP_BENCH_DOC:-$ROOT/docs/BENCHMARKS.ftp.md}
log() { printf '[bench-ftp %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ ! -x $PEER_BENCH/peers.sh ]]; then
  log "skipped: no FTP peer harness at $PEER_BENCH (set PEER_BENCH)"; exit 0
fi
if [[ $EUID != 0 ]]; then log "skipped: the peers need root (they log in local users)"; exit 0; fi
[[ -x $BIN ]] || { log "no binary at $BIN (make build)"; exit 1; }
PEERS=()
[[ -x /usr/sbin/vsftpd ]] && PEERS+=(vsftpd)
[[ -x ${PEERS_PREFIX:-/opt/ftp-peers}/pure-ftpd/usr/sbin/pure-ftpd ]] && PEERS+=(pure-ftpd)
((${#PEERS[@]})) || { log "skipped: neither vsftpd nor pure-ftpd is installed (make bench-peers)"; exit 0; }

export PEER_LABEL=miniftp PEER_VERSION="miniftp $("$BIN" --version | awk '{print $2}') (FTP listener)"
export PEER_CMD="$ROOT/bench/ftp-peer.sh $BIN @HOST@ @PORT@ @PASV_LO@ @PASV_HI@ @USER@ @PASS@ @HOME@ @RUN@"
mkdir -p "$OUT"
dirs=()
for ((p = 1; p <= PASSES; p++)); do
  order=("${PEERS[@]}" cmd)
  if ((p % 2 == 0)); then order=(cmd); for ((i = ${#PEERS[@]} - 1; i >= 0; i--)); do order+=("${PEERS[i]}"); done; fi
  log "pass $p/$PASSES: ${order[*]}"
  load0=$(cut -d' ' -f1 /proc/loadavg)
  "$PEER_BENCH/peers.sh" -o "$OUT/pass$p" "${order[@]}"
  echo "pass $p ($(echo "${order[*]}" | sed "s/cmd/miniftp/")): $load0 → $(cut -d' ' -f1 /proc/loadavg)" >"$OUT/pass$p/load.txt"
  dirs+=("$OUT/pass$p")
done
python3 "$ROOT/bench/ftp-table.py" "$PEER_BENCH" miniftp "${dirs[@]}" >"$DOC"
cat "$DOC"
log "raw results in $OUT; table in $DOC"
