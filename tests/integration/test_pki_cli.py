"""The PKI module (src/pki) checked from outside, through `kpool pki-selftest --out DIR`.

The hidden subcommand makes a CA, a server certificate (IP:127.0.0.1, DNS:localhost), a
client certificate, an expired client certificate, a PKCS#12 keystore and truststore with a
random password, and a sealed copy of the client key. Here, for both key types (EC P-256 and
RSA 2048):

  * `openssl verify -CAfile ca.pem` accepts the server and client certificates (with the
    sslserver / sslclient purposes, i.e. the EKU), refuses the expired one and refuses them
    against another kpool CA;
  * `openssl x509 -text` shows the profile: EKU, key usage, CA:TRUE/FALSE, SANs, key ids;
  * `openssl pkey` reads the keys as PKCS#8 and they match their certificates;
  * `openssl pkcs12` opens the keystore and truststore with the password (and reports the
    explicit algorithms: PBES2/PBKDF2/AES-256-CBC, hmacWithSHA256, MAC sha256) and refuses a
    wrong password; Java's keytool lists a PrivateKeyEntry with a 2-certificate chain and a
    trustedCertEntry;
  * file modes: private keys, password, keystore and master key 0600, the directory 0700;
    nothing secret on stdout/stderr;
  * real TLS: a broker with an SSL listener and ssl.client.auth=required, using the issued
    server chain and key, accepts confluent-kafka (PEM files and, separately, the PKCS#12
    keystore) and kafka-python (hostname checked against the IP SAN); it refuses the expired
    certificate; with the authorizer on and the certificate's RFC 2253 subject as super user,
    a topic can be created, produced to and consumed.
"""
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from harness import KPOOL_BIN

CLIENT_SUBJECT = "CN=selftest_app_0123abcd_1"
SERVER_SUBJECT = "CN=localhost,O=kpool"
KEY_TYPES = ["ec", "rsa"]


def run(args, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check:
        assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def openssl(*args, check=True, cwd=None):
    return run(["openssl"] + list(args), check=check, cwd=cwd)


class Selftest:
    """The files one `kpool pki-selftest` run wrote."""

    def __init__(self, d, key_type, output):
        self.dir, self.key_type, self.output = d, key_type, output
        with open(self.path("password")) as f:
            self.password = f.read()

    def path(self, name):
        return os.path.join(self.dir, name)


def make_selftest(d, key_type):
    r = run([KPOOL_BIN, "pki-selftest", "--out", d, "--key-type", key_type])
    return Selftest(d, key_type, r.stdout + r.stderr)


@pytest.fixture(scope="module", params=KEY_TYPES)
def st(request):
    d = tempfile.mkdtemp(prefix="kpool-pki-cli-")
    try:
        yield make_selftest(os.path.join(d, "out"), request.param)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def other_st():
    """A second, unrelated kpool CA."""
    d = tempfile.mkdtemp(prefix="kpool-pki-cli-other-")
    try:
        yield make_selftest(os.path.join(d, "out"), "ec")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- the CLI itself

def test_selftest_is_hidden_and_validates_arguments():
    r = run([KPOOL_BIN, "--help"])
    assert "pki-selftest" not in r.stdout
    assert run([KPOOL_BIN, "pki-selftest"], check=False).returncode == 2
    r = run([KPOOL_BIN, "pki-selftest", "--out", "/tmp/x", "--key-type", "dsa"], check=False)
    assert r.returncode == 2 and "dsa" in r.stderr


def test_files_modes_and_no_secrets_printed(st):
    assert stat.S_IMODE(os.stat(st.dir).st_mode) == 0o700
    for name in ("ca.key", "server.key", "client.key", "client-expired.key", "password",
                 "client.keystore.p12", "master.key", "client.key.sealed"):
        assert stat.S_IMODE(os.stat(st.path(name)).st_mode) == 0o600, name
    for name in ("ca.pem", "server.pem", "client.pem", "server-chain.pem",
                 "client.truststore.jks"):
        assert stat.S_IMODE(os.stat(st.path(name)).st_mode) == 0o644, name
    assert os.path.getsize(st.path("master.key")) == 32
    assert len(st.password) == 32
    assert st.password not in st.output
    assert "PRIVATE" not in st.output and "-----" not in st.output
    with open(st.path("client.key")) as f:
        body = f.read().splitlines()[1]
    with open(st.path("client.key.sealed"), "rb") as f:
        sealed = f.read()
    assert sealed.startswith(b"KPS\x01") and body.encode() not in sealed


# --------------------------------------------------------------------------- openssl

def test_openssl_verify(st, other_st):
    r = openssl("verify", "-CAfile", "ca.pem", "-purpose", "sslserver", "server.pem", cwd=st.dir)
    assert "server.pem: OK" in r.stdout
    r = openssl("verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "client.pem", cwd=st.dir)
    assert "client.pem: OK" in r.stdout
    r = openssl("verify", "-CAfile", "ca.pem", "server.pem", "client.pem", cwd=st.dir)
    assert r.stdout.count(": OK") == 2
    # the EKU is enforced: a client certificate is no server certificate
    r = openssl("verify", "-CAfile", "ca.pem", "-purpose", "sslserver", "client.pem",
                cwd=st.dir, check=False)
    assert r.returncode != 0 and "unsuitable certificate purpose" in (r.stdout + r.stderr)
    r = openssl("verify", "-CAfile", "ca.pem", "client-expired.pem", cwd=st.dir, check=False)
    assert r.returncode != 0 and "certificate has expired" in (r.stdout + r.stderr)
    r = openssl("verify", "-CAfile", other_st.path("ca.pem"), st.path("client.pem"), check=False)
    assert r.returncode != 0 and "unable to get local issuer certificate" in (r.stdout + r.stderr)
    # the chain file is the certificate followed by the CA
    r = openssl("verify", "-CAfile", "ca.pem", "-untrusted", "server-chain.pem", "server.pem",
                cwd=st.dir)
    with open(st.path("server-chain.pem")) as f:
        chain = f.read()
    with open(st.path("server.pem")) as f, open(st.path("ca.pem")) as g:
        assert chain == f.read() + g.read()


def x509_text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout


def test_openssl_x509_profile(st):
    ca = x509_text(st.path("ca.pem"))
    assert "CA:TRUE" in ca and "Certificate Sign, CRL Sign" in ca
    assert "X509v3 Subject Key Identifier" in ca

    server = x509_text(st.path("server.pem"))
    assert "TLS Web Server Authentication" in server
    assert "TLS Web Client Authentication" not in server
    assert "IP Address:127.0.0.1" in server and "DNS:localhost" in server
    assert "CA:FALSE" in server
    assert "X509v3 Authority Key Identifier" in server

    client = x509_text(st.path("client.pem"))
    assert "TLS Web Client Authentication" in client
    assert "TLS Web Server Authentication" not in client
    if st.key_type == "rsa":
        assert "Digital Signature, Key Encipherment" in client
        assert "rsaEncryption" in client and "(2048 bit)" in client
    else:
        assert "Digital Signature" in client and "Key Encipherment" not in client
        assert "id-ecPublicKey" in client and "P-256" in client

    subj = openssl("x509", "-in", st.path("client.pem"), "-noout", "-subject", "-nameopt",
                   "RFC2253").stdout.strip()
    assert subj == "subject=" + CLIENT_SUBJECT
    # a random 128-bit serial (not 0, 1, or a small counter)
    serial = openssl("x509", "-in", st.path("client.pem"), "-noout", "-serial").stdout
    assert len(serial.strip().split("=")[1]) >= 30


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def pubkey_of_key(path):
    return openssl("pkey", "-in", path, "-pubout").stdout


def test_openssl_keys_are_pkcs8_and_match(st):
    for base in ("ca", "server", "client"):
        with open(st.path(base + ".key")) as f:
            assert f.read().startswith("-----BEGIN PRIVATE KEY-----\n"), base
        openssl("pkey", "-in", st.path(base + ".key"), "-noout", "-check")
        assert pubkey_of_key(st.path(base + ".key")) == pubkey_of_cert(st.path(base + ".pem"))


def test_openssl_pkcs12_keystore(st):
    r = openssl("pkcs12", "-in", "client.keystore.p12", "-passin", "pass:" + st.password,
                "-nodes", cwd=st.dir)
    out = r.stdout
    assert "-----BEGIN PRIVATE KEY-----" in out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2
    assert "friendlyName: kpool" in out
    # the key and certificate in the store are the issued ones
    with open(st.path("client.pem")) as f:
        assert f.read().strip() in out
    with open(st.path("ca.pem")) as f:
        assert f.read().strip() in out
    info = openssl("pkcs12", "-in", "client.keystore.p12", "-passin", "pass:" + st.password,
                   "-info", "-noout", cwd=st.dir)
    text = info.stdout + info.stderr
    assert "MAC: sha256, Iteration 10000" in text
    assert "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256" \
        in text
    assert "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC" in text
    r = openssl("pkcs12", "-in", "client.keystore.p12", "-passin", "pass:wrong-password",
                "-nodes", cwd=st.dir, check=False)
    assert r.returncode != 0 and "BEGIN PRIVATE KEY" not in r.stdout
    assert "mac verify failure" in r.stderr.lower() or "invalid password" in r.stderr.lower()


def test_openssl_pkcs12_truststore(st):
    r = openssl("pkcs12", "-in", "client.truststore.jks", "-passin", "pass:" + st.password,
                "-nokeys", cwd=st.dir)
    assert r.stdout.count("-----BEGIN CERTIFICATE-----") == 1
    assert "PRIVATE KEY" not in r.stdout
    assert "friendlyName: ca" in r.stdout
    assert "2.16.840.1.113894.746875.1.1" in r.stdout  # Java's trusted-certificate marker
    with open(st.path("ca.pem")) as f:
        assert f.read().strip() in r.stdout
    r = openssl("pkcs12", "-in", "client.truststore.jks", "-passin", "pass:nope", "-nokeys",
                cwd=st.dir, check=False)
    assert r.returncode != 0


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no Java keytool installed")
def test_java_keytool_opens_stores(st):
    ks = run(["keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore",
              st.path("client.keystore.p12"), "-storepass", st.password]).stdout
    assert "Alias name: kpool" in ks
    assert "Entry type: PrivateKeyEntry" in ks
    assert "Certificate chain length: 2" in ks
    ts = run(["keytool", "-list", "-storetype", "PKCS12", "-keystore",
              st.path("client.truststore.jks"), "-storepass", st.password]).stdout
    assert "Your keystore contains 1 entry" in ts
    assert "trustedCertEntry" in ts
    r = run(["keytool", "-list", "-storetype", "PKCS12", "-keystore",
             st.path("client.keystore.p12"), "-storepass", "wrong-password"], check=False)
    assert r.returncode != 0


# --------------------------------------------------------------------------- real TLS

def tls_broker(broker_factory, st, **props):
    b = broker_factory(start=False)
    b.extra.update({
        "listeners": "SSL://127.0.0.1:%d" % b.port,
        "ssl.ca.location": st.path("ca.pem"),
        "ssl.certificate.location": st.path("server-chain.pem"),
        "ssl.key.location": st.path("server.key"),
        "ssl.client.auth": "required",
    })
    b.extra.update(props)
    return b.start()


def rdk_pem(b, st, cert="client", **kw):
    c = {"bootstrap.servers": b.bootstrap, "security.protocol": "ssl",
         "ssl.ca.location": st.path("ca.pem"),
         "ssl.certificate.location": st.path(cert + ".pem"),
         "ssl.key.location": st.path(cert + ".key"),
         "ssl.endpoint.identification.algorithm": "https"}
    c.update(kw)
    return c


def rdk_keystore(b, st, **kw):
    """librdkafka reading the PKCS#12 keystore (as a JVM client would) instead of PEM files."""
    c = {"bootstrap.servers": b.bootstrap, "security.protocol": "ssl",
         "ssl.ca.location": st.path("ca.pem"),
         "ssl.keystore.location": st.path("client.keystore.p12"),
         "ssl.keystore.password": st.password,
         "ssl.endpoint.identification.algorithm": "https"}
    c.update(kw)
    return c


def test_tls_confluent_kafka(broker_factory, st):
    b = tls_broker(broker_factory, st)
    md = AdminClient(rdk_pem(b, st)).list_topics(timeout=20)
    assert "127.0.0.1:%d" % b.port in md.orig_broker_name
    assert len(md.brokers) == 1
    md = AdminClient(rdk_keystore(b, st)).list_topics(timeout=20)
    assert len(md.brokers) == 1


def test_tls_confluent_kafka_expired_refused(broker_factory, st):
    b = tls_broker(broker_factory, st)
    admin = AdminClient(rdk_pem(b, st, cert="client-expired", **{"socket.timeout.ms": 5000}))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=6)
    # the broker keeps serving valid clients
    assert len(AdminClient(rdk_pem(b, st)).list_topics(timeout=20).brokers) == 1


def test_tls_kafka_python(broker_factory, st):
    from kafka import KafkaConsumer
    b = tls_broker(broker_factory, st)
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, security_protocol="SSL",
                      ssl_cafile=st.path("ca.pem"), ssl_certfile=st.path("client.pem"),
                      ssl_keyfile=st.path("client.key"), ssl_check_hostname=True,
                      request_timeout_ms=20000, api_version_auto_timeout_ms=20000)
    try:
        assert isinstance(c.topics(), set)
        assert c.bootstrap_connected()
    finally:
        c.close()


def test_tls_principal_is_certificate_subject(broker_factory, st):
    """The certificate's RFC 2253 subject is the broker's principal: as the only super user
    it may create a topic, produce and consume (with the keystore)."""
    b = tls_broker(broker_factory, st, **{"authorizer.enabled": "true",
                                          "super.users": "User:" + CLIENT_SUBJECT})
    topic = "pki-%s" % uuid.uuid4().hex[:8]
    admin = AdminClient(rdk_pem(b, st))
    for f in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=20).values():
        f.result(timeout=20)
    p = Producer(rdk_keystore(b, st))
    errors = []
    p.produce(topic, b"hello over mTLS", on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(20) == 0 and not errors
    c = Consumer(rdk_keystore(b, st, **{"group.id": "pki-" + topic,
                                        "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got, deadline = None, time.time() + 30
    try:
        while got is None and time.time() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got = m.value()
    finally:
        c.close()
    assert got == b"hello over mTLS"
