"""Runs checkdmarc's DMARC and SPF checks against one DNS server on loopback and prints JSON.

Used by crates/check/tests/checkdmarc_peer.rs, which serves the test domains on the testkit's
DNS server (a random loopback address and port) and compares checkdmarc's results with
mtasts's. Usage:

    python3 checkdmarc_driver.py HOST PORT KIND:DOMAIN...

where KIND is `dmarc` or `spf`; the job `guard` (no domain) first proves the guards below
work. Prints one JSON object: `version` (checkdmarc's), `results` (`"KIND:DOMAIN"` -> the dict
`check_dmarc` / `check_spf` returns; `"guard"` -> what each probe got) and `blocked` (every
attempt to reach anything but loopback, which the guards refused; the test requires the
guard job's two and no other).

checkdmarc builds a fresh dnspython resolver for each query from the `nameservers` it is
given, so that list names the testkit server alone. Two guards keep any other path from
leaving the machine: a `dns.resolver.Resolver` built anywhere without arguments no longer
reads /etc/resolv.conf, and the socket layer refuses any address outside 127.0.0.0/8 and ::1
(and name lookups through the system resolver), recording what was refused.
"""

import ipaddress
import json
import socket
import sys

import dns.nameserver
import dns.resolver

HOST = sys.argv[1]
PORT = int(sys.argv[2])
JOBS = sys.argv[3:]
BLOCKED = []


def _loopback(address):
    """Whether a socket address tuple (or bare host) is on loopback."""
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard(method):
    def guarded(self, address, *args):
        # sendto(data, address) and sendto(data, flags, address): the address is last.
        target = args[-1] if method == "sendto" else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(target):
            BLOCKED.append(f"{method} {target!r}")
            raise OSError(f"checkdmarc_driver: {target!r} is not on loopback")
        return getattr(_REAL_SOCKET, method)(self, address, *args)

    return guarded


_REAL_SOCKET = socket.socket
_REAL_GETADDRINFO = socket.getaddrinfo


class _LoopbackSocket(socket.socket):
    connect = _guard("connect")
    connect_ex = _guard("connect_ex")
    sendto = _guard("sendto")


def _getaddrinfo(host, *args, **kwargs):
    # Numeric loopback addresses need no resolver; any name would go to the system's.
    if host is not None and not _loopback(host if isinstance(host, str) else host.decode()):
        BLOCKED.append(f"getaddrinfo {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "checkdmarc_driver: no name lookups")
    return _REAL_GETADDRINFO(host, *args, **kwargs)


socket.socket = _LoopbackSocket
socket.getaddrinfo = _getaddrinfo

NAMESERVER = dns.nameserver.Do53Nameserver(HOST, PORT)
_real_resolver_init = dns.resolver.Resolver.__init__


def _resolver_init(self, filename="/etc/resolv.conf", configure=True):
    # Never the system configuration: only the testkit server.
    _real_resolver_init(self, filename, configure=False)
    self.nameservers = [NAMESERVER]


dns.resolver.Resolver.__init__ = _resolver_init
dns.resolver.reset_default_resolver()

# Imported after the guards so that nothing it sets up at import time escapes them.
import checkdmarc._constants  # noqa: E402
from checkdmarc.dmarc import check_dmarc  # noqa: E402
from checkdmarc.spf import check_spf  # noqa: E402

# checkdmarc's per-lookup DNS timeout (seconds); no retries, so a SERVFAIL is reported once.
OPTIONS = {"nameservers": [NAMESERVER], "timeout": 2.0, "retries": 0}

def _probe(attempt):
    """Runs one attempt the guards must refuse; returns how it ended."""
    try:
        attempt()
    except OSError as error:
        return f"refused: {error}"
    return "not refused"


def _guard_job():
    # Both targets stay on this machine even if a guard failed: Linux delivers datagrams to
    # 0.0.0.0 locally, and "localhost" comes from /etc/hosts. Neither is a loopback address
    # literal, so both must be refused.
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sent = _probe(lambda: udp.sendto(b"", ("0.0.0.0", 9)))
    finally:
        udp.close()
    return {
        "sendto": sent,
        "getaddrinfo": _probe(lambda: socket.getaddrinfo("localhost", 9)),
    }


results = {}
for job in JOBS:
    if job == "guard":
        results[job] = _guard_job()
        continue
    kind, domain = job.split(":", 1)
    if kind == "dmarc":
        results[job] = check_dmarc(domain, **OPTIONS)
    elif kind == "spf":
        results[job] = check_spf(domain, **OPTIONS)
    else:
        raise SystemExit(f"unknown job kind {kind!r}")

json.dump(
    {
        "version": checkdmarc._constants.__version__,
        "results": results,
        "blocked": BLOCKED,
    },
    sys.stdout,
    default=str,
    indent=1,
)
