#!/usr/bin/env python3
"""pyftpdlib as a reference FTP/FTPS server, to check the client harness
(tests/ftp/clients.py) against a server that is not ours.

Prints "ftp listening on HOST:PORT" (as miniftp does) once it accepts
connections, then serves until killed.

usage: reference_server.py --home DIR --user U --password P
                           [--tls CERT.pem KEY.pem] [--tls-max 1.2|1.3]
Needs: pip install pyftpdlib pyopenssl
"""
import argparse
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def tls_handler(cert, key, tls_max):
    from OpenSSL import SSL
    from pyftpdlib.handlers import TLS_FTPHandler

    class Handler(TLS_FTPHandler):
        certfile = cert
        keyfile = key
        tls_control_required = True
        tls_data_required = True

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    if tls_max == "1.2":
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(cert)
    ctx.use_privatekey_file(key)
    Handler.ssl_context = ctx
    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--home", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--tls-max", choices=["1.2", "1.3"], default="1.3")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    auth = DummyAuthorizer()
    auth.add_user(a.user, a.password, a.home, perm="elradfmwMT")
    handler = tls_handler(*a.tls, a.tls_max) if a.tls else FTPHandler
    handler.authorizer = auth
    handler.passive_ports = range(40000, 40999)
    server = FTPServer((a.host, a.port), handler)
    host, port = server.socket.getsockname()[:2]
    print(f"ftp listening on {host}:{port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
