# Sourced by bench/run.sh: the sync rows. `miniftp sync up` of a tree of
# SYNC_N files (SYNC_MB MiB in all) to an empty remote, then again with
# nothing changed, then with 1 % of the files changed, beside rsync over
# ssh (Debian's openssh-server on loopback, a throwaway sshd on its own
# port) and `rclone sync --checksum` over SFTP to the same sshd. miniftp
# runs over TLS, as the peers run over ssh. One run of each, side by side.
# Sets SYNC_ROWS (table lines). Needs root for the sshd; installs
# openssh-server and rsync with apt when they are missing (bench only).

sync_fixture() { # DIR N MB : a tree of N files in 100 directories from random bytes
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = (mb << 20) // n
with open("/dev/urandom", "rb") as r:
    for i in range(n):
        d = os.path.join(root, "d%02d" % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(r.read(size))
PY
}

sync_change() { # DIR N : rewrites every 100th file (1 %) with new bytes of the same size
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 100):
    p = os.path.join(root, "d%02d" % (i % 100), "f%05d" % i)
    size = os.path.getsize(p)
    with open(p, "wb") as f:
        f.write(os.urandom(size))
PY
}

sync_rows() {
  SYNC_ROWS=()
  local src=$DIR/synctree n=$SYNC_N mb=$SYNC_MB
  rm -rf "$src" && mkdir -p "$src"
  sync_fixture "$src" "$n" "$mb"
  log "sync: $n files, $mb MiB in $src"

  # miniftp over TLS, trusting the printed fingerprint.
  start_server sync "$DIR/sync-data" tls
  local fp=$FP_sync port=$PORT_sync
  msync() { MINIFTP_PLAINTEXT=0 MINIFTP_FINGERPRINT=$fp "$BIN" sync -q up "$src" /mirror -s "127.0.0.1:$port"; }
  local M1 M2 M3 R1= R2= R3= C1= C2= C3= peers=0
  M1=$(secs msync) M2=$(secs msync)
  diff -r -q "$src" "$DIR/sync-data/home/bench/mirror" >/dev/null || die "miniftp sync: copies differ"

  if ((!SMOKE)) && [[ $(id -u) == 0 ]]; then
    command -v sshd >/dev/null && command -v rsync >/dev/null \
      || apt-get install -y -q openssh-server rsync >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q openssh-server rsync >/dev/null; }
    local ssh=$DIR/ssh sport=${SYNC_SSH_PORT:-2299}
    rm -rf "$ssh" && mkdir -p "$ssh" && chmod 700 "$ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$ssh/host" && ssh-keygen -q -t ed25519 -N '' -f "$ssh/id"
    cp "$ssh/id.pub" "$ssh/authorized_keys"
    mkdir -p /run/sshd
    cat >"$ssh/sshd_config" <<CONF
Port $sport
ListenAddress 127.0.0.1
HostKey $ssh/host
PidFile $ssh/sshd.pid
AuthorizedKeysFile $ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
    /usr/sbin/sshd -f "$ssh/sshd_config" -E "$ssh/sshd.log" || die "sshd did not start: $(cat "$ssh/sshd.log")"
    # sshd detaches: its pid file says when it is up (and what to stop).
    local i
    for ((i = 0; i < 100; i++)); do [[ -s $ssh/sshd.pid ]] && break; sleep 0.05; done
    [[ -s $ssh/sshd.pid ]] || die "sshd wrote no pid file: $(cat "$ssh/sshd.log")"
    local sshcmd="ssh -i $ssh/id -p $sport -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    local rdest=$DIR/rsync-dest cdest=$DIR/rclone-dest
    rm -rf "$rdest" "$cdest" && mkdir -p "$rdest" "$cdest"
    rs() { rsync -a --delete -e "$sshcmd" "$src/" "root@127.0.0.1:$rdest/"; }
    export RCLONE_CONFIG_BSFTP_TYPE=sftp RCLONE_CONFIG_BSFTP_HOST=127.0.0.1 RCLONE_CONFIG_BSFTP_PORT=$sport \
      RCLONE_CONFIG_BSFTP_USER=root RCLONE_CONFIG_BSFTP_KEY_FILE=$ssh/id RCLONE_CONFIG_BSFTP_KNOWN_HOSTS_FILE= \
      RCLONE_CONFIG_BSFTP_SHELL_TYPE=unix
    # SYNC_RCLONE=0 leaves rclone out (its --checksum over SFTP runs a
    # remote md5sum per file: more than 25 minutes for 10,000 files on the
    # loaded 2-core machine); its column then shows "-".
    rc() { rclone sync --checksum -q "$src" "bsftp:$cdest"; }
    local use_rc=${SYNC_RCLONE:-1}
    ((use_rc)) || rc() { cp -a "$src/." "$cdest/"; }
    R1=$(secs rs) R2=$(secs rs)
    C1=$(secs rc) C2=$(secs rc)
    ((use_rc)) || C1= C2=
    diff -r -q "$src" "$rdest" >/dev/null || die "rsync: copies differ"
    diff -r -q "$src" "$cdest" >/dev/null || die "rclone: copies differ"
    peers=1
  fi
  sync_change "$src" "$n"
  M3=$(secs msync)
  diff -r -q "$src" "$DIR/sync-data/home/bench/mirror" >/dev/null || die "miniftp sync (1 %): copies differ"
  if ((peers)); then
    R3=$(secs rs) C3=$(secs rc)
    ((use_rc)) || C3=
    diff -r -q "$src" "$rdest" >/dev/null || die "rsync (1 %): copies differ"
    diff -r -q "$src" "$cdest" >/dev/null || die "rclone (1 %): copies differ"
    kill "$(cat "$ssh/sshd.pid")" 2>/dev/null || true
    rm -rf "$rdest" "$cdest"
  fi
  kill "$PID_sync" 2>/dev/null || true
  log "sync: miniftp $M1 / $M2 / $M3 s; rsync ${R1:--} / ${R2:--} / ${R3:--} s; rclone ${C1:--} / ${C2:--} / ${C3:--} s"
  local what=("to an empty remote" "again, nothing changed" "again, 1 % of the files changed")
  local ms=("$M1" "$M2" "$M3") rs_=("$R1" "$R2" "$R3") cs=("$C1" "$C2" "$C3") i best peer target
  for i in 0 1 2; do
    if ((peers)); then
      best=$(awk -v a="${rs_[$i]}" -v b="${cs[$i]:-1e9}" 'BEGIN{print (a < b) ? a : b}')
      if ((i == 1)); then best=${rs_[$i]} target="≤ 1.0× rsync"; else target="≤ 1.0× the faster peer"; fi
      peer="rsync ${rs_[$i]} / rclone ${cs[$i]:--}"
    else
      best= peer="-" target="-"
    fi
    SYNC_ROWS+=("| sync$((i + 1)) | \`miniftp sync up\` $n files ($mb MiB) over TLS, ${what[$i]} | ${ms[$i]} | $peer | $(ratio "${ms[$i]}" "$best") | $target |")
  done
  rm -rf "$DIR/sync-data"
}
