"""kdefs — requests and responses of every API, encoded and decoded from kpool's own message
definitions (src/protocol/defs/*.def, parsed with tools/kpgen.py), for tests that must cover
every version of every API without a hand-written codec per API (test_api_versions.py).

encode_request(key, version, corr, values) builds a whole frame: fields missing from
`values` take their default (0, "", empty array, or null where the definition says
default=null). decode_response(key, version, payload) parses a response payload (after the
length) into nested dicts and fails unless it consumes every byte.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tools"))
import kpgen  # noqa: E402

from kwire import read_uvarint, uvarint  # noqa: E402


def load():
    """{api_key: (request Message, response Message)} from the definitions."""
    d = os.path.join(TOP, "src", "protocol", "defs")
    req, resp = {}, {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".def"):
            for m in kpgen.parse(os.path.join(d, fn)):
                (req if m.kind == "request" else resp)[m.key] = m
    return {k: (req[k], resp[k]) for k in req}


MSGS = load()

FIXED = {"bool": ">b", "int8": ">b", "int16": ">h", "uint16": ">H", "int32": ">i",
         "uint32": ">I", "int64": ">q", "float64": ">d"}


def has(versions, v):
    return versions.lo <= v <= versions.hi


def flexible(msg, v):
    return not msg.flex.empty() and v >= msg.flex.lo


# --------------------------------------------------------------------------- encoding

def enc_string(s, flex, bytes_len=False):
    if s is None:
        return uvarint(0) if flex else (struct.pack(">i", -1) if bytes_len else struct.pack(">h", -1))
    b = s.encode() if isinstance(s, str) else s
    if flex:
        return uvarint(len(b) + 1) + b
    return (struct.pack(">i", len(b)) if bytes_len else struct.pack(">h", len(b))) + b


def enc_array_len(n, flex):
    if n is None:
        return uvarint(0) if flex else struct.pack(">i", -1)
    return uvarint(n + 1) if flex else struct.pack(">i", n)


def default_of(f, v):
    if f.default == "null" and has(f.nullable, v):
        return None
    if f.is_array:
        return []
    if f.typ in ("string",):
        return ""
    if f.typ in ("bytes", "records"):
        return None if has(f.nullable, v) else b""
    if f.typ == "uuid":
        return b"\0" * 16
    if f.default is not None:
        return {"true": 1, "false": 0}.get(f.default, None) if f.default in ("true", "false") \
            else int(f.default, 0)
    return 0


def enc_value(f, typ, val, v, flex):
    if typ in FIXED:
        return struct.pack(FIXED[typ], val)
    if typ == "uuid":
        return val
    if typ == "string":
        return enc_string(val, flex)
    return enc_string(val, flex, bytes_len=True)  # bytes, records


def enc_fields(fields, v, flex, values):
    out = b""
    for f in fields:
        if not has(f.versions, v) or f.tag is not None:
            continue
        val = values.get(f.name, default_of(f, v)) if values else default_of(f, v)
        if f.is_array:
            out += enc_array_len(None if val is None else len(val), flex)
            for item in val or []:
                out += enc_fields(f.children, v, flex, item) if f.struct_name else \
                    enc_value(f, f.elem, item, v, flex)
        else:
            out += enc_value(f, f.typ, val, v, flex)
    if flex:
        out += uvarint(0)  # no tagged fields
    return out


def encode_request(key, v, corr, values=None, client_id="kdefs"):
    req = MSGS[key][0]
    flex = flexible(req, v)
    h = struct.pack(">hhi", key, v, corr) + enc_string(client_id, False)
    if flex:
        h += uvarint(0)
    body = h + enc_fields(req.fields, v, flex, values or {})
    return struct.pack(">i", len(body)) + body


# --------------------------------------------------------------------------- decoding

class Short(Exception):
    pass


def _take(data, pos, n):
    if pos + n > len(data):
        raise Short("needs %d bytes at %d of %d" % (n, pos, len(data)))
    return data[pos:pos + n], pos + n


def dec_value(typ, data, pos, flex):
    if typ in FIXED:
        b, pos = _take(data, pos, struct.calcsize(FIXED[typ]))
        return struct.unpack(FIXED[typ], b)[0], pos
    if typ == "uuid":
        return _take(data, pos, 16)
    if flex:
        n, pos = read_uvarint(data, pos)
        n -= 1
    elif typ == "string":
        b, pos = _take(data, pos, 2)
        n = struct.unpack(">h", b)[0]
    else:
        b, pos = _take(data, pos, 4)
        n = struct.unpack(">i", b)[0]
    if n < 0:
        return None, pos
    return _take(data, pos, n)


def skip_tags(data, pos):
    n, pos = read_uvarint(data, pos)
    for _ in range(n):
        _, pos = read_uvarint(data, pos)
        size, pos = read_uvarint(data, pos)
        _, pos = _take(data, pos, size)
    return pos


def dec_fields(fields, v, flex, data, pos):
    out = {}
    for f in fields:
        if not has(f.versions, v) or f.tag is not None:
            continue
        if f.is_array:
            if flex:
                n, pos = read_uvarint(data, pos)
                n -= 1
            else:
                b, pos = _take(data, pos, 4)
                n = struct.unpack(">i", b)[0]
            assert n >= -1 and n <= len(data), "absurd array length %d for %s" % (n, f.name)
            items = None if n < 0 else []
            for _ in range(max(n, 0)):
                if f.struct_name:
                    item, pos = dec_fields(f.children, v, flex, data, pos)
                else:
                    item, pos = dec_value(f.elem, data, pos, flex)
                items.append(item)
            out[f.name] = items
        else:
            out[f.name], pos = dec_value(f.typ, data, pos, flex)
    if flex:
        pos = skip_tags(data, pos)
    return out, pos


def decode_response(key, v, payload):
    """(correlation id, body dict); AssertionError unless the payload is consumed exactly."""
    resp = MSGS[key][1]
    flex = flexible(resp, v)
    corr = struct.unpack_from(">i", payload, 0)[0]
    pos = 4
    if flex and key != 18:  # ApiVersions answers with header v0 always (KIP-511)
        pos = skip_tags(payload, pos)
    body, pos = dec_fields(resp.fields, v, flex, payload, pos)
    assert pos == len(payload), "%d trailing bytes after %s v%d" % (len(payload) - pos,
                                                                  resp.name, v)
    return corr, body


def error_codes(tree):
    """Every ErrorCode value anywhere in a decoded response."""
    out = []
    if isinstance(tree, dict):
        for k, val in tree.items():
            if k == "ErrorCode":
                out.append(val)
            else:
                out += error_codes(val)
    elif isinstance(tree, list):
        for it in tree:
            out += error_codes(it)
    return out
