# Verifies every DKIM-Signature of a message with dkimpy, fetching the keys
# from the DNS server given (a dnsmasq on loopback), never another.
# Usage: verify.py MESSAGE_FILE DNS_PORT
# Prints one line per signature: "<index> <a=> <s=> pass|fail".
import sys

import dkim
import dns.resolver

message = open(sys.argv[1], "rb").read()
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ["127.0.0.1"]
resolver.port = int(sys.argv[2])


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver.resolve(name, "TXT", lifetime=timeout)
    except dns.exception.DNSException:
        return None
    # The strings of one record joined (RFC 6376 §3.6.2.2).
    return b"".join(answer[0].strings)


d = dkim.DKIM(message)
count = sum(1 for name, _ in dkim.rfc822_parse(message)[0] if name.lower() == b"dkim-signature")
for idx in range(count):
    try:
        ok = d.verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print(f"signature {idx}: {e}", file=sys.stderr)
        ok = False
    a = d.signature_fields.get(b"a", b"?").decode()
    s = d.signature_fields.get(b"s", b"?").decode()
    print(idx, a, s, "pass" if ok else "fail")
