"""An HTTPS endpoint for tests/it/tls.rs: a certificate authority made on
the spot (written to DIR/ca.pem, trusted by nobody else), a certificate for
localhost it signed, and a server on a free loopback port that answers
sts:GetCallerIdentity and refuses every other call. Prints the port, then
serves; each request's Action is appended to DIR/requests.log.

Usage: python tls_server.py DIR   (the python of moto's venv: it has
`cryptography`, which moto needs too)"""
import datetime
import http.server
import os
import ssl
import sys
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

directory = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)


def certificate(subject, issuer, key, signer, extensions):
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = certificate(
    "amiaudit test CA",
    "amiaudit test CA",
    ca_key,
    ca_key,
    [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            True,
        ),
    ],
)
leaf_key = ec.generate_private_key(ec.SECP256R1())
leaf = certificate(
    "localhost",
    "amiaudit test CA",
    leaf_key,
    ca_key,
    [
        (x509.SubjectAlternativeName([x509.DNSName("localhost")]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    ],
)
with open(os.path.join(directory, "ca.pem"), "wb") as f:
    f.write(ca.public_bytes(serialization.Encoding.PEM))
chain = os.path.join(directory, "localhost.pem")
with open(chain, "wb") as f:
    f.write(leaf.public_bytes(serialization.Encoding.PEM))
    f.write(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

IDENTITY = (
    b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/tls-test</Arn>"
    b"<UserId>AIDATLSTEST</UserId><Account>111122223333</Account></GetCallerIdentityResult>"
    b"<ResponseMetadata><RequestId>tls-test</RequestId></ResponseMetadata>"
    b"</GetCallerIdentityResponse>"
)
DENIED = (
    b'<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
    b"<Message>only GetCallerIdentity is answered here</Message></Error>"
    b"<RequestId>tls-test</RequestId></ErrorResponse>"
)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        action = urllib.parse.parse_qs(body).get("Action", [self.headers.get("x-amz-target", "?")])[0]
        with open(os.path.join(directory, "requests.log"), "a") as log:
            log.write(action + "\n")
        status, reply = (200, IDENTITY) if action == "GetCallerIdentity" else (403, DENIED)
        self.send_response(status)
        self.send_header("content-type", "text/xml")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(chain)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
