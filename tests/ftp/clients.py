#!/usr/bin/env python3
"""The real-client matrix for an FTP server (issue 13 "Tests"): curl, lftp,
rclone, Python's ftplib and a replay of FileZilla's command sequence, each
against HOST:PORT as USER/PASSWORD, in plaintext or explicit FTPS with TLS
1.2 or 1.3. Every file that goes up comes back down and is compared by
SHA-256.

usage: clients.py --host H --port P --user U --password PW
                  --mode plain|tls12|tls13 [--clients curl,lftp,...]
                  [--reuse-required yes|no] [--workdir DIR] [--big BYTES]
                  [--xfail TEXT]...

Prints one line per check ("ok   curl/tls13: upload") and, last,
"N passed, M failed"; exits 1 if anything failed. Each client works in a
remote directory of its own (CLIENT-MODE-PID), which it removes at the end.
"""
import argparse
import ftplib
import hashlib
import os
import random
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

CLIENTS = ["curl", "lftp", "rclone", "ftplib", "filezilla"]
TIMEOUT = 120  # seconds for one external client command


class Failed(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_file(path, size, seed):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 16)
            f.write(rnd.randbytes(n))
            left -= n
    return path


def same(a, b, what):
    if not os.path.exists(b):
        raise Failed(f"{what}: {b} is missing")
    ha, hb = sha256(a), sha256(b)
    if ha != hb:
        raise Failed(
            f"{what}: SHA-256 differs ({os.path.getsize(a)} bytes sent, "
            f"{os.path.getsize(b)} back)"
        )


def run(cmd, env=None, check=True, input=None):
    """Runs an external client; its output goes into the failure message."""
    p = subprocess.run(
        cmd, env=env, input=input, capture_output=True, text=True, timeout=TIMEOUT
    )
    if check and p.returncode != 0:
        shown = " ".join(cmd)
        raise Failed(f"`{shown}` exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


class Matrix:
    def __init__(self, a):
        self.a = a
        self.tls = a.mode != "plain"
        self.results = []
        self.work = a.workdir or tempfile.mkdtemp(prefix="ftp-clients-")
        os.makedirs(self.work, exist_ok=True)
        self.small = make_file(os.path.join(self.work, "small.bin"), 300_000, 1)
        self.big = make_file(os.path.join(self.work, "big.bin"), a.big, 2)
        self.empty = make_file(os.path.join(self.work, "empty.bin"), 0, 3)

    def check(self, client, what, fn):
        name = f"{client}/{self.a.mode}: {what}"
        expected = any(x in name for x in self.a.xfail)
        try:
            fn()
            detail = None
            if expected:
                print(f"xpass {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            detail = str(e) if isinstance(e, Failed) else traceback.format_exc()
            if expected:
                print(f"xfail {name}\n     {detail}", flush=True)
                detail = None
        self.results.append((name, detail))
        if detail:
            print(f"FAIL {name}\n     {detail}", flush=True)
        elif not expected:
            print(f"ok   {name}", flush=True)

    def remote_dir(self, client):
        return f"{client}-{self.a.mode}-{os.getpid()}"

    def local(self, *parts):
        p = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    # --- ftplib, the basis of the Python checks -------------------------

    def ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        version = ssl.TLSVersion.TLSv1_2 if self.a.mode == "tls12" else ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = version
        if self.a.mode == "tls13":
            ctx.minimum_version = version
        return ctx

    def connect(self, reuse=True):
        """A logged-in ftplib session (FTP_TLS with PROT P unless plain)."""
        a = self.a
        if not self.tls:
            ftp = ftplib.FTP(timeout=30)
            ftp.connect(a.host, a.port)
            ftp.login(a.user, a.password)
            return ftp
        cls = ReusingFTP_TLS if reuse else ftplib.FTP_TLS
        ftp = cls(context=self.ssl_context(), timeout=30)
        ftp.connect(a.host, a.port)
        ftp.auth()
        ftp.login(a.user, a.password)
        ftp.prot_p()
        want = "TLSv1.2" if a.mode == "tls12" else "TLSv1.3"
        if ftp.sock.version() != want:
            raise Failed(f"control connection is {ftp.sock.version()}, not {want}")
        return ftp

    def cleanup(self, client, top):
        ftp = self.connect()
        try:
            rmtree(ftp, top)
        finally:
            ftp.quit()


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS
    session (cpython #63699: plain FTP_TLS never does, and servers that
    require reuse answer 522)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
        return conn, size


def rmtree(ftp, path):
    """Removes a remote tree with MLSD, DELE and RMD."""
    try:
        entries = list(ftp.mlsd(path, facts=["type"]))
    except ftplib.error_perm:
        return
    for name, facts in entries:
        if name in (".", ".."):
            continue
        child = f"{path}/{name}"
        if facts.get("type") == "dir":
            rmtree(ftp, child)
        else:
            ftp.delete(child)
    ftp.rmd(path)


# --- curl -----------------------------------------------------------------


def curl_checks(m):
    a = m.a
    top = m.remote_dir("curl")
    base = f"ftp://{a.host}:{a.port}/{top}"
    tls = []
    if m.tls:
        tls = ["--ssl-reqd", "-k", "--tls-max", "1.2"] if a.mode == "tls12" else [
            "--ssl-reqd", "-k", "--tlsv1.3"]

    def curl(*args, check=True):
        return run(["curl", "-sS", "--user", f"{a.user}:{a.password}", *tls, *args], check=check)

    def upload():
        curl("--ftp-create-dirs", "-T", m.big, f"{base}/up/big.bin")
        curl("-T", m.small, f"{base}/up/small.bin")
        curl("-T", m.empty, f"{base}/up/empty.bin")
        for name, src in [("big.bin", m.big), ("small.bin", m.small), ("empty.bin", m.empty)]:
            got = m.local("curl", "down", name)
            curl("-o", got, f"{base}/up/{name}")
            same(src, got, f"{name} round trip")

    def tls_version():
        if not m.tls:
            return
        p = curl("-v", "-o", os.devnull, f"{base}/up/small.bin")
        want = "TLSv1.2" if a.mode == "tls12" else "TLSv1.3"
        if f"SSL connection using {want}" not in p.stderr:
            raise Failed(f"curl did not use {want}:\n{p.stderr[-1500:]}")

    def resume_upload():
        head = m.local("curl", "head.bin")
        with open(m.big, "rb") as f, open(head, "wb") as h:
            h.write(f.read(os.path.getsize(m.big) // 3))
        curl("-T", head, f"{base}/up/resumed.bin")
        curl("-C", "-", "-T", m.big, f"{base}/up/resumed.bin")
        got = m.local("curl", "down", "resumed.bin")
        curl("-o", got, f"{base}/up/resumed.bin")
        same(m.big, got, "-C - upload (SIZE + APPE)")

    def resume_download():
        got = m.local("curl", "down", "partial.bin")
        with open(m.big, "rb") as f, open(got, "wb") as g:
            g.write(f.read(os.path.getsize(m.big) // 2))
        curl("-C", "-", "-o", got, f"{base}/up/big.bin")
        same(m.big, got, "-C - download (REST + RETR)")

    def quote_dele():
        curl("-Q", f"DELE {top}/up/small.bin", f"{base}/up/", "-o", os.devnull)
        names = curl("-l", f"{base}/up/").stdout.split()
        if "small.bin" in names or "big.bin" not in names:
            raise Failed(f"after -Q DELE, NLST shows {names}")

    m.check("curl", "upload -T, download -o, --ftp-create-dirs, 0-byte file", upload)
    m.check("curl", "negotiated TLS version", tls_version)
    m.check("curl", "upload resume -C -", resume_upload)
    m.check("curl", "download resume -C -", resume_download)
    m.check("curl", '-Q "DELE x" and -l listing', quote_dele)
    m.check("curl", "clean up", lambda: m.cleanup("curl", top))


# --- lftp -----------------------------------------------------------------


def lftp_checks(m):
    a = m.a
    top = m.remote_dir("lftp")
    src = m.local("lftp", "src", "x")
    src = os.path.dirname(src)
    shutil.copy(m.small, os.path.join(src, "small.bin"))
    os.makedirs(os.path.join(src, "sub", "deeper"), exist_ok=True)
    shutil.copy(m.big, os.path.join(src, "sub", "big.bin"))
    shutil.copy(m.empty, os.path.join(src, "sub", "deeper", "empty.bin"))
    back = m.local("lftp", "back", "x")
    back = os.path.dirname(back)
    settings = ["set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 30"]
    if m.tls:
        version = "+VERS-TLS1.2" if a.mode == "tls12" else "+VERS-TLS1.3"
        settings += [
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set ssl:verify-certificate no",
            f'set ssl:priority "NORMAL:-VERS-ALL:{version}"',
        ]
    else:
        settings += ["set ftp:ssl-allow no"]

    def lftp(*commands):
        script = "; ".join(settings + list(commands) + ["bye"])
        return run(["lftp", "-u", f"{a.user},{a.password}", "-p", str(a.port), "-e", script, a.host])

    def mirror():
        lftp(f"mkdir -p {top}", f"mirror -R {src} {top}/m", f"mirror {top}/m {back}")
        for rel in ["small.bin", "sub/big.bin", "sub/deeper/empty.bin"]:
            same(os.path.join(src, rel), os.path.join(back, rel), f"mirror -R / mirror {rel}")

    def cls():
        out = lftp(f"cls -l {top}/m/sub").stdout
        if "big.bin" not in out or "deeper" not in out:
            raise Failed(f"cls -l shows:\n{out}")

    def put_get_mv_rm():
        got = m.local("lftp", "got.bin")
        lftp(
            f"put -c {m.big} -o {top}/r.bin",
            f"get {top}/r.bin -o {got}",
            f"mv {top}/r.bin {top}/r2.bin",
            f"rm {top}/r2.bin",
        )
        same(m.big, got, "put -c / get")
        out = lftp(f"cls {top}").stdout
        if "r.bin" in out or "r2.bin" in out:
            raise Failed(f"after mv and rm, cls shows:\n{out}")

    m.check("lftp", "mirror -R then mirror back", mirror)
    m.check("lftp", "cls -l (MLSD)", cls)
    m.check("lftp", "put -c, get, mv, rm", put_get_mv_rm)
    m.check("lftp", "clean up", lambda: m.cleanup("lftp", top))


# --- rclone ---------------------------------------------------------------


def rclone_checks(m):
    a = m.a
    top = m.remote_dir("rclone")
    src = os.path.dirname(m.local("rclone", "src", "x"))
    shutil.copy(m.small, os.path.join(src, "small.bin"))
    os.makedirs(os.path.join(src, "sub"), exist_ok=True)
    shutil.copy(m.big, os.path.join(src, "sub", "big.bin"))
    obscured = run(["rclone", "obscure", a.password]).stdout.strip()
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    env.update({
        "RCLONE_CONFIG_X_TYPE": "ftp",
        "RCLONE_CONFIG_X_HOST": a.host,
        "RCLONE_CONFIG_X_PORT": str(a.port),
        "RCLONE_CONFIG_X_USER": a.user,
        "RCLONE_CONFIG_X_PASS": obscured,
        "RCLONE_CONFIG_X_EXPLICIT_TLS": "true" if m.tls else "false",
        "RCLONE_CONFIG_X_NO_CHECK_CERTIFICATE": "true",
        "RCLONE_CONFIG_X_DISABLE_TLS13": "true" if a.mode == "tls12" else "false",
        "RCLONE_CONFIG": os.devnull,
    })

    def rclone(*args):
        return run(["rclone", "--retries", "1", "--low-level-retries", "1", *args], env=env)

    def copy_check():
        ftp = m.connect()
        try:
            ftp.mkd(top)
            ftp.mkd(f"{top}/existing")
        finally:
            ftp.quit()
        rclone("copy", src, f"x:{top}/existing")
        rclone("check", src, f"x:{top}/existing")
        back = os.path.dirname(m.local("rclone", "back", "x"))
        rclone("copy", f"x:{top}/existing", back)
        for rel in ["small.bin", "sub/big.bin"]:
            same(os.path.join(src, rel), os.path.join(back, rel), f"copy {rel} up and back")

    def new_dir():
        # rclone maps only 550 and 450 to "not found": a 501 here fails it.
        rclone("copy", src, f"x:{top}/new/dir")
        rclone("check", src, f"x:{top}/new/dir")

    def purge():
        rclone("purge", f"x:{top}")
        out = run(["rclone", "lsf", "x:"], env=env).stdout
        if top in out:
            raise Failed(f"after purge, lsf shows {out}")

    m.check("rclone", "copy, check, copy back", copy_check)
    m.check("rclone", "copy into a new directory (550 for a missing one)", new_dir)
    m.check("rclone", "purge", purge)


# --- ftplib ----------------------------------------------------------------


def ftplib_checks(m):
    a = m.a
    top = m.remote_dir("ftplib")

    def store(ftp, local, remote):
        with open(local, "rb") as f:
            ftp.storbinary(f"STOR {remote}", f)

    def fetch(ftp, remote, local, rest=None, mode="wb"):
        with open(local, mode) as f:
            ftp.retrbinary(f"RETR {remote}", f.write, rest=rest)

    def basics():
        ftp = m.connect(reuse=True)
        try:
            ftp.mkd(top)
            ftp.cwd(top)
            ftp.mkd("d")
            store(ftp, m.big, "d/big.bin")
            store(ftp, m.small, "small name with spaces.bin")
            got = m.local("ftplib", "big.bin")
            fetch(ftp, "d/big.bin", got)
            same(m.big, got, "STOR/RETR")
            if ftp.size("d/big.bin") != os.path.getsize(m.big):
                raise Failed(f"SIZE says {ftp.size('d/big.bin')}")
            names = sorted(ftp.nlst())
            if names != ["d", "small name with spaces.bin"]:
                raise Failed(f"NLST: {names}")
            facts = dict(ftp.mlsd("d"))
            if facts.get("big.bin", {}).get("size") != str(os.path.getsize(m.big)):
                raise Failed(f"MLSD: {facts}")
            # REST + RETR: the second half.
            half = os.path.getsize(m.big) // 2
            part = m.local("ftplib", "part.bin")
            with open(m.big, "rb") as f, open(part, "wb") as p:
                p.write(f.read(half))
            fetch(ftp, "d/big.bin", part, rest=half, mode="ab")
            same(m.big, part, "REST + RETR")
            ftp.rename("small name with spaces.bin", "d/renamed.bin")
            ftp.delete("d/renamed.bin")
            ftp.cwd("d")
            ftp.cwd("..")
            ftp.sendcmd("CDUP")
            if ftp.pwd() != "/":
                raise Failed(f"after CDUP, PWD is {ftp.pwd()}")
            try:
                ftp.size(f"{top}/nonexistent")
                raise Failed("SIZE of a missing file succeeded")
            except ftplib.error_perm as e:
                if not str(e).startswith("550"):
                    raise Failed(f"a missing file got {e}, not 550") from None
        finally:
            ftp.quit()

    def without_reuse():
        if not m.tls:
            return
        ftp = m.connect(reuse=False)
        try:
            store(ftp, m.small, f"{top}/noreuse.bin")
            if a.reuse_required == "yes":
                raise Failed("a data connection without session reuse was accepted")
        except ftplib.error_perm as e:
            if a.reuse_required != "yes" or not str(e).startswith("522"):
                raise Failed(f"without session reuse: {e}") from None
        finally:
            try:
                ftp.quit()
            except (ftplib.Error, OSError):
                pass

    m.check("ftplib", "STOR RETR SIZE NLST MLSD REST+RETR RNFR/RNTO DELE CWD CDUP (session reuse)", basics)
    m.check("ftplib", f"FTP_TLS without session reuse (reuse required: {a.reuse_required})",
            without_reuse)
    m.check("ftplib", "clean up", lambda: m.cleanup("ftplib", top))


# --- FileZilla's sequence ---------------------------------------------------


def filezilla_checks(m):
    """FileZilla 3.6x's commands (FileZilla's src/engine/ftp/), replayed:
    AUTH TLS, USER, PASS, SYST, FEAT, CLNT, OPTS UTF8 ON, PBSZ 0, PROT P,
    OPTS MLST, PWD, PASV, MLSD, then an upload cut off midway and resumed
    with REST + STOR (only because FEAT says REST STREAM), then MFMT."""
    a = m.a
    top = m.remote_dir("filezilla")

    def session():
        ftp = ReusingFTP_TLS(context=m.ssl_context(), timeout=30) if m.tls else ftplib.FTP(timeout=30)
        ftp.connect(a.host, a.port)
        if m.tls:
            ftp.auth()
        ftp.login(a.user, a.password)
        ftp.sendcmd("SYST")
        feat = ftp.sendcmd("FEAT")
        try:
            ftp.sendcmd("CLNT FileZilla 3.66.4")  # FileZilla ignores a refusal
        except ftplib.error_perm:
            pass
        ftp.sendcmd("OPTS UTF8 ON")
        if m.tls:
            ftp.prot_p()  # PBSZ 0, PROT P
        ftp.sendcmd("OPTS MLST type;size;modify;perm;")
        ftp.pwd()
        return ftp, feat

    state = {}

    def start():
        ftp, feat = session()
        state["ftp"] = ftp
        for need in ["REST STREAM", "MLST type", "MFMT", "UTF8", "EPSV"]:
            if need not in feat:
                raise Failed(f"FEAT lacks {need!r}:\n{feat}")
        ftp.mkd(top)
        list(ftp.mlsd(top))

    def cut():
        state["sent"] = os.path.getsize(m.big) // 2
        reply = cut_upload(state["ftp"], m.big, f"{top}/big.bin", state["sent"])
        state["cut"] = reply
        if not reply[:1] in ("4", "5"):
            raise Failed(f"an upload cut off by a reset was answered {reply!r}, not 426")

    def resume():
        ftp = state["ftp"]
        if state.get("cut", "")[:1] not in ("4", "5"):
            # The control connection is in an unknown state: start afresh.
            try:
                ftp.close()
            finally:
                ftp, _ = session()
        try:
            # FileZilla asks what is there, then resumes with REST + STOR.
            offset = resume_offset(ftp, f"{top}/big.bin", state.get("cut", ""), state["sent"])
            with open(m.big, "rb") as f:
                f.seek(offset)
                ftp.storbinary(f"STOR {top}/big.bin", f, rest=offset if offset else None)
            ftp.sendcmd(f"MFMT 20200102030405 {top}/big.bin")
            facts = dict(ftp.mlsd(top))["big.bin"]
            if facts.get("modify", "")[:14] != "20200102030405":
                raise Failed(f"after MFMT, MLSD says modify={facts.get('modify')}")
            got = m.local("filezilla", "big.bin")
            with open(got, "wb") as f:
                ftp.retrbinary(f"RETR {top}/big.bin", f.write)
            same(m.big, got, "cut upload resumed with REST + STOR")
        finally:
            ftp.quit()

    m.check("filezilla", "AUTH USER PASS SYST FEAT CLNT OPTS PBSZ PROT OPTS MLST PWD PASV MLSD", start)
    if "ftp" not in state:
        return
    m.check("filezilla", "an upload cut off midway is not reported complete", cut)
    m.check("filezilla", "resumed with REST + STOR, MFMT, downloaded intact", resume)
    m.check("filezilla", "clean up", lambda: m.cleanup("filezilla", top))


def cut_upload(ftp, local, remote, upto):
    """Sends `upto` bytes of a STOR, then ends the data connection the way
    a crash does: a TCP reset, so no FIN in clear and no close_notify under
    TLS. Returns the server's reply (a 4xx or 5xx)."""
    conn = ftp.transfercmd(f"STOR {remote}")
    with open(local, "rb") as f:
        conn.sendall(f.read(upto))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    try:
        return ftp.voidresp()
    except (ftplib.error_temp, ftplib.error_perm) as e:
        return str(e)
    except OSError as e:
        return f"no reply: {e}"


def resume_offset(ftp, remote, cut_reply, sent):
    """Where to resume. miniftp's 426 names the partial's length ("REST N");
    otherwise ask SIZE as FileZilla does, and a server that shows no
    partial (SIZE 550) gets the whole file again."""
    hint = re.search(r"REST (\d+)", cut_reply) if cut_reply[:1] == "4" else None
    if hint:
        return int(hint.group(1))
    try:
        size = ftp.size(remote)
    except ftplib.error_perm:
        return 0
    if size is None or size > sent:
        raise Failed(f"after sending {sent} bytes, SIZE says {size}")
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mode", choices=["plain", "tls12", "tls13"], required=True)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--reuse-required", choices=["yes", "no"], default="yes")
    ap.add_argument("--workdir")
    ap.add_argument("--big", type=int, default=3 * 1024 * 1024 + 17)
    ap.add_argument("--xfail", action="append", default=[],
                    help="a check whose name contains this may fail (known bugs of a reference server)")
    a = ap.parse_args()
    m = Matrix(a)
    started = time.monotonic()
    table = {
        "curl": curl_checks,
        "lftp": lftp_checks,
        "rclone": rclone_checks,
        "ftplib": ftplib_checks,
        "filezilla": filezilla_checks,
    }
    for name in a.clients.split(","):
        if name not in table:
            sys.exit(f"unknown client {name!r}; known: {', '.join(CLIENTS)}")
        table[name](m)
    failed = sum(1 for _, e in m.results if e)
    passed = len(m.results) - failed
    print(f"({time.monotonic() - started:.1f} s, files in {m.work})")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
