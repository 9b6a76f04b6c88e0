#!/usr/bin/python3
"""An OCSP responder that answers what a test asks for, built on python3-cryptography (an
implementation independent of tlsfront's), for the answers `openssl ocsp` cannot give: expired,
still to come, about another certificate, signed by a responder without the OCSPSigning
purpose, a broken signature, garbage, HTTP errors, a cut answer.

Usage: ocsp_responder.py CERTS_DIR LEAF PORT_FILE
       ocsp_responder.py CERTS_DIR LEAF --once MODE OUT   (writes one response, DER, to OUT)
Listens on 127.0.0.1 (port 0), writes its port to PORT_FILE, and answers each POST about
CERTS_DIR/LEAF.crt (issued by int.crt) according to the request path's first segment:
good, revoked, unknown, expired, future, wrong_serial, rogue (a server certificate of the
issuer), bad_signature (issuer-signed, a signature byte changed), foreign_delegate (a
self-signed OCSPSigning responder), expired_delegate, issuer_name_clash (a key of its own under
the issuer's name, named by name), no_next_update, stale_unknown (unknown, expired a day ago),
sha224_certid (a CertID hash tlsfront does not take), aged (good, 50 of its 60 minutes
gone), garbage, status500, trylater, truncated. Every request is appended to PORT_FILE.log.
"""
import datetime
import http.server
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509 import ocsp

certs, leaf_name, port_file = sys.argv[1], sys.argv[2], sys.argv[3]


def load_cert(name):
    with open(f"{certs}/{name}.crt", "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_key(name):
    with open(f"{certs}/{name}.key", "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def make_responder(subject, issuer_cert, issuer_key, days):
    """A responder certificate with OCSPSigning: issued by issuer_cert (None: self-signed),
    valid from `days` ago for one day when days > 1, else now and for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]) if isinstance(subject, str) else subject
    now = datetime.datetime.utcnow()
    start = now - datetime.timedelta(days=days) if days > 1 else now - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(issuer_key if issuer_key else key, hashes.SHA256())
    )
    return cert, key


leaf = load_cert(leaf_name)
other = load_cert("a")
issuer = load_cert("int")
responder, responder_key = load_cert("ocsp-responder"), load_key("ocsp-responder")
rogue, rogue_key = load_cert("ocsp-rogue"), load_key("ocsp-rogue")
issuer_key = load_key("int")


def build(mode):
    now = datetime.datetime.utcnow()
    this_update, next_update = now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1)
    status, subject = ocsp.OCSPCertStatus.GOOD, leaf
    signer, key = responder, responder_key
    revoked_at = None
    if mode == "aged":  # good, but most of its hour gone (a response a cache kept)
        this_update, next_update = now - datetime.timedelta(minutes=50), now + datetime.timedelta(minutes=10)
    if mode == "stale_unknown":
        status = ocsp.OCSPCertStatus.UNKNOWN
        this_update, next_update = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
    if mode == "revoked":
        status, revoked_at = ocsp.OCSPCertStatus.REVOKED, now - datetime.timedelta(days=1)
    elif mode == "unknown":
        status = ocsp.OCSPCertStatus.UNKNOWN
    elif mode == "expired":
        this_update, next_update = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
    elif mode == "future":
        this_update = now + datetime.timedelta(hours=2)
        next_update = now + datetime.timedelta(hours=4)
    elif mode == "wrong_serial":
        subject = other
    elif mode == "rogue":
        signer, key = rogue, rogue_key
    elif mode == "bad_signature":
        signer, key = issuer, issuer_key  # no certificate after the signature: flip its bytes
    elif mode == "foreign_delegate":
        signer, key = make_responder("foreign responder", None, None, 0)
    elif mode == "expired_delegate":
        signer, key = make_responder("expired responder", issuer, issuer_key, 3)
    elif mode == "issuer_name_clash":
        signer, key = make_responder(issuer.subject, None, None, 0)
    elif mode == "no_next_update":
        next_update = None
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=subject,
            issuer=issuer,
            algorithm=hashes.SHA224() if mode == "sha224_certid" else hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=revoked_at,
            revocation_reason=None,
        )
        .responder_id(
            ocsp.OCSPResponderEncoding.NAME if mode == "issuer_name_clash" else ocsp.OCSPResponderEncoding.HASH,
            signer,
        )
    )
    if signer is not issuer:
        builder = builder.certificates([signer])
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if mode == "bad_signature":
        der = der[:-3] + bytes([der[-3] ^ 0x55]) + der[-2:]  # inside the signature, the last field
    return der


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        mode = self.path.strip("/").split("/")[0]
        with open(port_file + ".log", "a") as log:
            log.write(mode + "\n")
        if mode == "status500":
            self.send_response(500)
            self.end_headers()
            return
        if mode == "garbage":
            body = b"this is no OCSP response \x00\x01\x02" * 8
        elif mode == "trylater":
            body = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.TRY_LATER
            ).public_bytes(serialization.Encoding.DER)
        else:
            body = build("good" if mode == "truncated" else mode)
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body) + (100 if mode == "truncated" else 0)))
        self.end_headers()
        self.wfile.write(body)


if port_file == "--once":
    with open(sys.argv[5], "wb") as out:
        out.write(build(sys.argv[4]))
    sys.exit(0)

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402

os.rename(port_file + ".tmp", port_file)
server.serve_forever()
