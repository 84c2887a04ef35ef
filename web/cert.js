// cert.js — the expiry (notAfter) of a PEM certificate, read from its DER: just enough of
// ASN.1 to walk Certificate -> tbsCertificate -> validity. null when it is not one.

function der(bytes, pos) {
  const tag = bytes[pos];
  let len = bytes[pos + 1], off = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[off + i];
    off += n;
  }
  if (off + len > bytes.length) return null;
  return { tag, start: off, end: off + len };
}

function children(bytes, node) {
  const out = [];
  for (let p = node.start; p < node.end;) {
    const c = der(bytes, p);
    if (!c) return null;
    out.push(c);
    p = c.end;
  }
  return out;
}

function time(bytes, node) {
  const s = String.fromCharCode(...bytes.slice(node.start, node.end));
  let m;
  if (node.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const y = +m[1] >= 50 ? 1900 + +m[1] : 2000 + +m[1];
    return new Date(Date.UTC(y, m[2] - 1, m[3], m[4], m[5], m[6]));
  }
  if (node.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)))
    return new Date(Date.UTC(m[1], m[2] - 1, m[3], m[4], m[5], m[6]));
  return null;
}

export function certificateExpiry(pem) {
  try {
    const b64 = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
    if (!b64) return null;
    const bytes = Uint8Array.from(atob(b64[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
    const cert = der(bytes, 0);
    const tbs = cert && children(bytes, cert)[0];
    const fields = tbs && children(bytes, tbs);
    if (!fields) return null;
    const i = fields[0].tag === 0xa0 ? 1 : 0; // [0] version is optional
    const validity = children(bytes, fields[i + 3]); // serial, signature, issuer, validity
    return validity && validity.length === 2 ? time(bytes, validity[1]) : null;
  } catch (e) {
    return null;
  }
}
