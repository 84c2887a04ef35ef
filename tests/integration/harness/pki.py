"""Test certificates made with the openssl CLI (EC P-256 keys: fast).

OpensslPki is the CA machinery; a test file's Pki subclasses it with the identities it
needs (test_tls_acl.Pki, test_cli_app.Pki). The pool's own PKI (`kpool up`) is not made
here: kpool makes it, in <data>/pki.
"""
import os
import random
import subprocess

# CAs (v3_ca), server certificates for 127.0.0.1 (server) and client certificates (client)
OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
"""


class OpensslPki:
    """Certificates in directory d, from the openssl.cnf text cnf_text (which names the
    extensions sections: v3_ca for CAs, the leaf's own, e.g. server or client)."""

    def __init__(self, d, cnf_text=OPENSSL_CNF):
        self.dir = d
        self.cnf = os.path.join(d, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(cnf_text)

    def _run(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, cwd=self.dir)
        assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)

    def _ca(self, name, subject):
        cert, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        self._run("req", "-config", self.cnf, "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                  "-days", "3", "-subj", subject, "-extensions", "v3_ca")
        return cert, key

    def _leaf(self, name, subject, ext, ca=None, ca_key=None):
        ca, ca_key = ca or self.ca, ca_key or self.ca_key
        cert, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        self._run("req", "-config", self.cnf, "-new", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", subject)
        self._run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial",
                  str(random.randrange(1, 1 << 62)), "-days", "2", "-sha256", "-extfile",
                  self.cnf, "-extensions", ext, "-out", cert)
        return cert, key


def openssl_pkcs12(path, password, *flags):
    """`openssl pkcs12 -in path` with the password; the CompletedProcess (text)."""
    return subprocess.run(["openssl", "pkcs12", "-in", path, "-passin", "pass:" + password,
                           "-nodes"] + list(flags), capture_output=True, text=True)


def server_ca(d, name):
    """A CA (<name>-ca.crt/.key) and a server certificate for 127.0.0.1 signed by it
    (<name>.crt/.key) in the pathlib directory d."""
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), cwd=str(d), check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", name + "-ca.key", "-out", name + "-ca.crt",
         "-subj", "/CN=" + name, "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE")
    ossl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", name + ".csr", "-CA", name + "-ca.crt", "-CAkey",
         name + "-ca.key", "-CAcreateserial", "-out", name + ".crt", "-days", "2",
         "-extfile", "san.ext")
