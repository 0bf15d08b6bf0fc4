#!/usr/bin/env python3
"""The FTP peer table of docs/BENCHMARKS.ftp.md (written by bench/ftp-peers.sh).

usage: ftp-table.py PEER_BENCH OURS PASS_DIR [PASS_DIR ...]

Reads the raw results the FTP peer harness (PEER_BENCH/peers.sh) left in
each pass directory, pools every peer's repetitions over all passes, and
prints one markdown table: median [min-max] per peer, and OURS against the
fastest peer (time ÷ time; for rates, the inverse, so that below 1.0 is
always "faster than every peer").
"""
import os
import statistics
import sys

sys.path.insert(0, sys.argv[1])
from summarize import load_peer, read_kv  # noqa: E402  (the harness's reader)

OURS = sys.argv[2]
DIRS = sys.argv[3:]


def pooled():
    peers, order = {}, []
    for d in DIRS:
        po = os.path.join(d, "peers.order")
        labels = [l.strip() for l in open(po) if l.strip()] if os.path.exists(po) else []
        for lab in labels:
            p = load_peer(d, lab)
            if p["kv"].get("skipped"):
                continue
            if lab not in order:
                order.append(lab)
            acc = peers.setdefault(lab, {"kv": [], "fb": {}, "up": [], "down": [], "mput": []})
            acc["kv"].append(p["kv"])
            for k, v in p["fb"].items():
                acc["fb"].setdefault(k, []).extend(v)
            for k in ("up", "down", "mput"):
                acc[k].extend(p[k][0])
    return peers, order


def fb_prefix(p, prefix):
    return [x for k, v in p["fb"].items() if k.startswith(prefix) for x in v]


def kv_vals(p, key, scale=1.0):
    return [float(kv[key]) * scale for kv in p["kv"] if kv.get(key) not in (None, "")]


def cell(vals, nd):
    if not vals:
        return "-"
    f = "%%.%df" % nd
    if len(vals) == 1:
        return f % vals[0]
    return (f + " [" + f + "–" + f + "]") % (statistics.median(vals), min(vals), max(vals))


def main():
    peers, order = pooled()
    if OURS not in peers:
        sys.exit("no results for %s" % OURS)
    others = [l for l in order if l != OURS]
    cols = [OURS] + others
    n = len(DIRS)
    # (what, values of a peer, digits, lower is better?, target)
    rows = [
        ("curl -T upload 1 GiB, whole process (s)", lambda p: p["up"], 3, True, "≤ 1.0×"),
        ("curl -o download 1 GiB, whole process (s)", lambda p: p["down"], 3, True, "≤ 1.0×"),
        ("lftp mput 1000 × 4 KiB, one session (s)", lambda p: p["mput"], 3, True, "≤ 1.0×"),
        ("200 clients connect + log in, ftpbench (s)",
         lambda p: p["fb"].get("N concurrent clients (connect, login)", []), 2, True, "≤ 1.0×"),
        ("200 clients RETR 10 MiB each (s)",
         lambda p: fb_prefix(p, "N concurrent clients (RETR"), 2, True, "≤ 1.0×"),
        ("200 clients STOR 10 MiB each (s)",
         lambda p: fb_prefix(p, "N concurrent clients (STOR"), 2, True, "≤ 1.0×"),
        ("STOR 1 client, ftpbench (MiB/s)",
         lambda p: p["fb"].get("STOR (client -> server)", []), 0, False, "≤ 1.0×"),
        ("RETR 1 client, ftpbench (MiB/s)",
         lambda p: p["fb"].get("RETR (server -> client)", []), 0, False, "≤ 1.0×"),
        ("server CPU s per curl upload", lambda p: kv_vals(p, "up_server_cpu_s"), 2, True, "-"),
        ("server CPU s per curl download", lambda p: kv_vals(p, "down_server_cpu_s"), 2, True, "-"),
        ("server CPU s per lftp mput", lambda p: kv_vals(p, "mput_server_cpu_s"), 2, True, "-"),
        ("server PSS idle (MiB)", lambda p: kv_vals(p, "idle_pss_kib", 1 / 1024), 1, True, "-"),
    ]
    print("| what | " + " | ".join(cols) + " | %s ÷ fastest peer | target |" % OURS)
    print("|---|" + "---|" * (len(cols) + 2))
    for what, get, nd, lower, target in rows:
        vals = {l: get(peers[l]) for l in cols}
        meds = {l: statistics.median(v) for l, v in vals.items() if v}
        ratio = "-"
        theirs = [meds[l] for l in others if l in meds]
        # Rows without a target are context, not a contest: the harness
        # can't see vsftpd's sessions' CPU (isolate=YES puts them in their
        # own PID namespace), so a ratio there would mislead.
        if target != "-" and OURS in meds and theirs and meds[OURS] > 0:
            best = min(theirs) if lower else max(theirs)
            ratio = "%.2f" % (meds[OURS] / best if lower else best / meds[OURS])
        print("| %s | %s | %s | %s |" % (
            what, " | ".join(cell(vals[l], nd) for l in cols), ratio, target))
    # Memory at 200 sessions: against vsftpd, as the issue asks.
    mem = {l: peers[l]["fb"].get("mem_N_logged_in", []) for l in cols}
    ratio = "-"
    if mem.get(OURS) and mem.get("vsftpd"):
        ratio = "%.2f of vsftpd" % (statistics.median(mem[OURS]) / statistics.median(mem["vsftpd"]))
    print("| server PSS, 200 logged in (MiB) | %s | %s | ≤ 0.10 of vsftpd |" % (
        " | ".join(cell(mem[l], 1) for l in cols), ratio))
    ok = []
    for l in cols:
        bad = [k for kv in peers[l]["kv"] for k in ("up_verified", "down_verified", "mput_verified")
               if kv.get(k) not in (None, "1")]
        rcs = [k for kv in peers[l]["kv"] for k in ("up_rc", "down_rc", "mput_rc")
               if kv.get(k) not in (None, "0")]
        ok.append("%s %s" % (l, "all verified" if not bad and not rcs else "FAILED: " + ", ".join(bad + rcs)))
    print()
    print("Data checks (sha256 of the uploads and a download, file counts of every mput): "
          + "; ".join(ok) + ".")
    print()
    versions = sorted({"%s: %s" % (l, kv.get("version", "?")) for l in cols for kv in peers[l]["kv"]})
    print("Versions: " + "; ".join(versions) + ".")
    env = read_kv(os.path.join(DIRS[0], "env.txt"))
    print()
    print("Settings: %s; %d pass(es), interleaved (the order reversed every other pass); "
          "every cell pools all passes." % (env.get("settings", "?"), n))
    loads = []
    for d in DIRS:
        lp = os.path.join(d, "load.txt")
        if os.path.exists(lp):
            loads.append(open(lp).read().strip())
    if loads:
        print()
        print("Load average (1 min) at the start and end of each pass: " + "; ".join(loads) + ".")
    dates = sorted(kv.get("date_utc", "") for l in cols for kv in peers[l]["kv"])
    if dates:
        print()
        print("Run from %s to %s (UTC, start of each peer's run)." % (dates[0], dates[-1]))


if __name__ == "__main__":
    main()
