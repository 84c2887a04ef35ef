#!/usr/bin/env python3
"""kpgen — generates C structs, decoders and encoders from kpool's message definitions.

Input: src/protocol/defs/*.def, our own compact notation written from the Kafka protocol
guide. Output: kp_msgs.h and kp_msgs.c (into the directory given with -o).

Notation (indentation nests the fields of an array of structs):

    request  ProduceRequest 0 3-7 flex=9+
        TransactionalId  string  3+ null=3+
        Acks             int16
        TopicData        []TopicProduceData
            Name             string
            PartitionData    []PartitionProduceData
                Index            int32
                Records          records  null=0+

    header line:  request|response <Name> <ApiKey> <versions> [flex=<N>+|flex=none]
    field line:   <Name> <type> [<versions>] [null=<versions>] [tag=<n>] [default=<value>]

    types: bool int8 int16 int32 int64 uint16 uint32 float64 uuid string bytes records
           []int32 []int64 []string []<StructName> (struct fields follow, indented)
    A []<StructName> without indented fields reuses the struct of that name declared
    elsewhere in the same message (Kafka's "commonStructs"): one C type, one codec.
    versions: "3+", "0-2", "5" (the field exists in those versions; default: all)
    tag=<n>:  a tagged field (only in flexible versions), written when not at its default
    default:  an integer, true/false, or null (for nullable strings/arrays)

Generated, per message M and nested struct S:
    typedef struct M { ... } M;   typedef struct M_S { ... } M_S;
    void M_init(M *m);                         defaults for every field
    int  M_decode(kp_rd_t *rd, int16_t version, kp_arena_t *arena, M *m);   0 or -1
    void M_encode(kp_wr_t *wr, int16_t version, const M *m);
Arrays are `struct { T *items; int32_t count; }` (count -1 = null).
"""

import argparse
import os
import re
import sys

SCALARS = {
    # type: (C type, min encoded bytes, read expr, write fn)
    "bool": ("int8_t", 1, "kp_rd_i8(rd) != 0", "kp_wr_i8(wr, (int8_t)({v} != 0))"),
    "int8": ("int8_t", 1, "kp_rd_i8(rd)", "kp_wr_i8(wr, {v})"),
    "int16": ("int16_t", 2, "kp_rd_i16(rd)", "kp_wr_i16(wr, {v})"),
    "uint16": ("uint16_t", 2, "kp_rd_u16(rd)", "kp_wr_u16(wr, {v})"),
    "int32": ("int32_t", 4, "kp_rd_i32(rd)", "kp_wr_i32(wr, {v})"),
    "uint32": ("uint32_t", 4, "kp_rd_u32(rd)", "kp_wr_u32(wr, {v})"),
    "int64": ("int64_t", 8, "kp_rd_i64(rd)", "kp_wr_i64(wr, {v})"),
    "float64": ("double", 8, "kp_rd_f64(rd)", "kp_wr_f64(wr, {v})"),
    "uuid": ("kp_uuid_t", 16, "kp_rd_uuid(rd)", "kp_wr_uuid(wr, {v})"),
}
BLOBS = {"string": "kp_str_t", "bytes": "kp_str_t", "records": "kp_records_t"}


class Versions:
    def __init__(self, text, lo_default=0):
        if text is None or text == "all":
            self.lo, self.hi = lo_default, 32767
        elif text == "none":
            self.lo, self.hi = 1, 0
        elif text.endswith("+"):
            self.lo, self.hi = int(text[:-1]), 32767
        elif "-" in text:
            a, b = text.split("-")
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(text)

    def empty(self):
        return self.lo > self.hi

    def cond(self, var="version"):
        """C condition for `var in range`, or None when always true."""
        parts = []
        if self.lo > 0:
            parts.append(f"{var} >= {self.lo}")
        if self.hi < 32767:
            parts.append(f"{var} <= {self.hi}")
        if self.empty():
            return "0"
        return " && ".join(parts) if parts else None

    def intersect(self, other):
        v = Versions("0+")
        v.lo, v.hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return v


class Field:
    def __init__(self, name, typ, versions, nullable, tag, default, lineno):
        self.name, self.typ, self.versions = name, typ, versions
        self.nullable, self.tag, self.default = nullable, tag, default
        self.lineno = lineno
        self.children = []  # for []Struct
        self.struct_name = None
        self.elem = None  # element type for arrays

    @property
    def is_array(self):
        return self.typ.startswith("[]")


class Message:
    def __init__(self, kind, name, key, versions, flex, lineno):
        self.kind, self.name, self.key = kind, name, key
        self.versions, self.flex = versions, flex
        self.fields = []
        self.lineno = lineno


def die(path, lineno, msg):
    sys.exit(f"{path}:{lineno}: {msg}")


def parse(path):
    msgs = []
    stack = []  # (indent, field-list)
    cur = None
    for lineno, raw in enumerate(open(path), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        toks = line.split()
        if indent == 0:
            if toks[0] not in ("request", "response") or len(toks) < 4:
                die(path, lineno, "expected: request|response Name ApiKey versions [flex=N+]")
            flex = Versions("none")
            for t in toks[4:]:
                if t.startswith("flex="):
                    flex = Versions(t[5:])
                else:
                    die(path, lineno, f"unknown attribute {t}")
            cur = Message(toks[0], toks[1], int(toks[2]), Versions(toks[3]), flex, lineno)
            msgs.append(cur)
            stack = [(0, cur.fields)]
            continue
        if cur is None:
            die(path, lineno, "field before any message")
        while stack and indent <= stack[-1][0] and len(stack) > 1:
            stack.pop()
        if len(stack) == 1 and stack[0][0] == 0:
            stack[0] = (indent, cur.fields)
        elif indent > stack[-1][0]:
            parent_fields = stack[-1][1]
            if not parent_fields or not parent_fields[-1].is_array or \
                    parent_fields[-1].elem in SCALARS or parent_fields[-1].elem in BLOBS:
                die(path, lineno, "indented field must follow a []Struct field")
            stack.append((indent, parent_fields[-1].children))
        if indent != stack[-1][0]:
            die(path, lineno, "inconsistent indentation")
        name, typ = toks[0], toks[1]
        versions, nullable, tag, default = Versions(None), Versions("none"), None, None
        for t in toks[2:]:
            if t.startswith("null="):
                nullable = Versions(t[5:])
            elif t.startswith("tag="):
                tag = int(t[4:])
            elif t.startswith("default="):
                default = t[8:]
            elif re.match(r"^\d+(\+|-\d+)?$", t):
                versions = Versions(t)
            else:
                die(path, lineno, f"unknown attribute {t}")
        f = Field(name, typ, versions, nullable, tag, default, lineno)
        if f.is_array:
            f.elem = typ[2:]
            if f.elem not in SCALARS and f.elem not in BLOBS:
                f.struct_name = f.elem
        elif typ not in SCALARS and typ not in BLOBS:
            die(path, lineno, f"unknown type {typ}")
        stack[-1][1].append(f)
    for m in msgs:
        resolve_shared(m)
    return msgs


def resolve_shared(m):
    """A []Struct field without fields of its own shares those of the struct of that name
    declared elsewhere in the message (the generator then emits that struct once)."""
    declared = {}

    def walk(fields, visit):
        for f in fields:
            visit(f)
            walk(f.children, visit)

    walk(m.fields, lambda f: f.struct_name and f.children and
         declared.setdefault(f.struct_name, f.children))

    def share(f):
        if f.struct_name and not f.children and f.struct_name in declared:
            f.children = declared[f.struct_name]

    walk(m.fields, share)


def c_scalar(f):
    return SCALARS[f.typ][0] if f.typ in SCALARS else BLOBS[f.typ]


def min_size(fields, flexible):
    """Minimum encoded bytes of a struct over all versions (bounds array counts)."""
    n = 0
    for f in fields:
        if f.tag is not None or f.versions.lo > 0 or f.versions.hi < 32767:
            continue
        if f.is_array or f.typ in ("records", "bytes"):
            n += 1 if flexible else 4
        elif f.typ == "string":
            n += 1 if flexible else 2
        else:
            n += SCALARS[f.typ][1]
    return max(n, 1)


class Gen:
    def __init__(self):
        self.h, self.c = [], []
        self.emitted = set()  # (what, C name): a shared struct is emitted once

    def once(self, what, cname):
        if (what, cname) in self.emitted:
            return False
        self.emitted.add((what, cname))
        return True

    def struct_decls(self, cname, fields, root=None):
        if not self.once("struct", cname):
            return
        root = root or cname
        for f in fields:
            if f.struct_name:
                self.struct_decls(f"{root}_{f.struct_name}", f.children, root)
        self.h.append(f"typedef struct {cname} {{")
        for f in fields:
            if f.is_array:
                et = f"{root}_{f.struct_name}" if f.struct_name else \
                    (SCALARS[f.elem][0] if f.elem in SCALARS else BLOBS[f.elem])
                self.h.append(f"    struct {{ {et} *items; int32_t count; }} {f.name};")
            else:
                self.h.append(f"    {c_scalar(f)} {f.name};")
        if not fields:
            self.h.append("    char unused_;")
        self.h.append(f"}} {cname};")
        self.h.append("")

    def default_expr(self, f):
        d = f.default
        if f.is_array:
            return "-1" if d == "null" else "0"
        if f.typ in ("string", "bytes"):
            return "KP_STR_NULL" if d == "null" else "(kp_str_t){\"\", 0}"
        if f.typ == "records":
            return "KP_RECORDS_NULL"
        if f.typ == "uuid":
            return "(kp_uuid_t){{0}}"
        if d is None:
            return "0"
        if d in ("true", "false"):
            return "1" if d == "true" else "0"
        return d

    def init_fn(self, cname, fields, root=None):
        if not self.once("init", cname):
            return
        root = root or cname
        for f in fields:
            if f.struct_name:
                self.init_fn(f"{root}_{f.struct_name}", f.children, root)
        self.c.append(f"void {cname}_init({cname} *m)")
        self.c.append("{")
        self.c.append("    memset(m, 0, sizeof(*m));")
        for f in fields:
            d = self.default_expr(f)
            if f.is_array:
                if d != "0":
                    self.c.append(f"    m->{f.name}.count = {d};")
            elif d != "0":
                self.c.append(f"    m->{f.name} = {d};")
        self.c.append("}")
        self.c.append("")
        self.h.append(f"void {cname}_init({cname} *m);")

    # ---- decode ----
    def read_value(self, f, typ, target, nullable_cond, out, ind):
        """Emits code reading one value of `typ` into `target`."""
        compact = "flex"
        if typ in SCALARS:
            out.append(f"{ind}{target} = {SCALARS[typ][2]};")
        elif typ == "string":
            out.append(f"{ind}{target} = kp_rd_string(rd, {compact}, {nullable_cond});")
        elif typ == "bytes":
            out.append(f"{ind}{target} = kp_rd_bytes(rd, {compact}, {nullable_cond});")
        elif typ == "records":
            out.append(f"{ind}{{")
            out.append(f"{ind}    kp_str_t b_ = kp_rd_bytes(rd, {compact}, {nullable_cond});")
            out.append(f"{ind}    {target} = KP_RECORDS_NULL;")
            out.append(f"{ind}    {target}.ptr = (const uint8_t *)b_.ptr;")
            out.append(f"{ind}    {target}.len = b_.len;")
            out.append(f"{ind}}}")
        else:
            raise ValueError(typ)

    def decode_field(self, cname, f, out, ind):
        ncond = f.nullable.cond() if not f.nullable.empty() else "0"
        if ncond is None:
            ncond = "1"
        if f.is_array:
            if f.struct_name:
                et = f"{self.root}_{f.struct_name}"
                # a flexible element is smaller (compact lengths): bounding it by its
                # non-flexible size would refuse a valid flexible array near the end
                lo, hi = min_size(f.children, True), min_size(f.children, False)
                msz = str(hi) if lo == hi else f"(flex ? {lo} : {hi})"
            else:
                et = SCALARS[f.elem][0] if f.elem in SCALARS else BLOBS[f.elem]
                msz = SCALARS[f.elem][1] if f.elem in SCALARS else 1
            out.append(f"{ind}{{")
            out.append(f"{ind}    int32_t n_ = kp_rd_array_len(rd, flex, {ncond}, {msz});")
            out.append(f"{ind}    if (rd->err) return -1;")
            out.append(f"{ind}    m->{f.name}.count = n_;")
            out.append(f"{ind}    m->{f.name}.items = NULL;")
            out.append(f"{ind}    if (n_ > 0) {{")
            out.append(f"{ind}        m->{f.name}.items = kp_arena_alloc(arena, (size_t)n_ * sizeof({et}));")
            out.append(f"{ind}        if (!m->{f.name}.items) return -1;")
            out.append(f"{ind}        for (int32_t i_ = 0; i_ < n_; i_++) {{")
            if f.struct_name:
                out.append(f"{ind}            if ({et}_decode(rd, version, arena, &m->{f.name}.items[i_]) < 0) return -1;")
            else:
                self.read_value(f, f.elem, f"m->{f.name}.items[i_]", "0", out, ind + "            ")
            out.append(f"{ind}        }}")
            out.append(f"{ind}    }}")
            out.append(f"{ind}}}")
        else:
            self.read_value(f, f.typ, f"m->{f.name}", ncond, out, ind)

    def decode_fn(self, cname, fields, flex, top, root=None):
        if not self.once("decode", cname):
            return
        root = root or cname
        self.root = root
        for f in fields:
            if f.struct_name:
                self.decode_fn(f"{root}_{f.struct_name}", f.children, flex, False, root)
        self.root = root
        fcond = flex.cond() if not flex.empty() else "0"
        storage = "" if top else "static "
        proto = f"{storage}int {cname}_decode(kp_rd_t *rd, int16_t version, kp_arena_t *arena, {cname} *m)"
        if top:
            self.h.append(proto + ";")
        else:
            self.c.insert(self.proto_at, proto + ";")
            self.proto_at += 1
        self.c.append(proto)
        self.c.append("{")
        self.c.append(f"    const int flex = {fcond if fcond else '1'};")
        self.c.append("    (void)flex; (void)arena; (void)version;")
        self.c.append(f"    {cname}_init(m);")
        for f in fields:
            if f.tag is not None:
                continue
            cond = f.versions.cond()
            if cond == "0":
                continue
            if cond:
                self.c.append(f"    if ({cond}) {{")
                self.decode_field(cname, f, self.c, "        ")
                self.c.append("    }")
            else:
                self.decode_field(cname, f, self.c, "    ")
        tagged = [f for f in fields if f.tag is not None]
        self.c.append("    if (flex) {")
        if tagged:
            self.c.append("        uint32_t ntags_ = kp_rd_uvarint(rd);")
            self.c.append("        for (uint32_t t_ = 0; t_ < ntags_ && !rd->err; t_++) {")
            self.c.append("            uint32_t tag_ = kp_rd_uvarint(rd);")
            self.c.append("            uint32_t size_ = kp_rd_uvarint(rd);")
            self.c.append("            if (!kp_rd_need(rd, size_)) return -1;")
            self.c.append("            kp_rd_t outer_ = *rd;")
            self.c.append("            kp_rd_init(rd, rd->p, size_);")
            self.c.append("            switch (tag_) {")
            for f in tagged:
                self.c.append(f"            case {f.tag}:")
                cond = f.versions.cond()
                if cond:
                    self.c.append(f"                if ({cond}) {{")
                    self.decode_field(cname, f, self.c, "                    ")
                    self.c.append("                }")
                else:
                    self.decode_field(cname, f, self.c, "                ")
                self.c.append("                break;")
            self.c.append("            default:")
            self.c.append("                break;")
            self.c.append("            }")
            self.c.append("            if (rd->err) return -1;")
            self.c.append("            outer_.p += size_;")
            self.c.append("            *rd = outer_;")
            self.c.append("        }")
        else:
            self.c.append("        kp_rd_skip_tags(rd);")
        self.c.append("    }")
        self.c.append("    return rd->err ? -1 : 0;")
        self.c.append("}")
        self.c.append("")

    # ---- encode ----
    def write_value(self, typ, v, out, ind):
        if typ in SCALARS:
            out.append(ind + SCALARS[typ][3].format(v=v) + ";")
        elif typ == "string":
            out.append(f"{ind}kp_wr_string(wr, flex, {v});")
        elif typ == "bytes":
            out.append(f"{ind}kp_wr_bytes(wr, flex, {v});")
        elif typ == "records":
            out.append(f"{ind}kp_wr_records(wr, flex, &{v});")

    def encode_field(self, cname, f, out, ind):
        if f.is_array:
            out.append(f"{ind}kp_wr_array_len(wr, flex, m->{f.name}.count);")
            out.append(f"{ind}for (int32_t i_ = 0; i_ < m->{f.name}.count; i_++) {{")
            if f.struct_name:
                out.append(f"{ind}    {self.root}_{f.struct_name}_encode(wr, version, &m->{f.name}.items[i_]);")
            else:
                self.write_value(f.elem, f"m->{f.name}.items[i_]", out, ind + "    ")
            out.append(f"{ind}}}")
        else:
            self.write_value(f.typ, f"m->{f.name}", out, ind)

    def is_default_expr(self, f):
        d = self.default_expr(f)
        if f.is_array:
            return f"m->{f.name}.count == {d}"
        if f.typ in ("string", "bytes"):
            return f"m->{f.name}.len == {'-1' if f.default == 'null' else '0'}"
        if f.typ == "uuid":
            return f"!memcmp(&m->{f.name}, &(kp_uuid_t){{{{0}}}}, 16)"
        return f"m->{f.name} == {d}"

    def encode_fn(self, cname, fields, flex, top, root=None):
        if not self.once("encode", cname):
            return
        root = root or cname
        self.root = root
        for f in fields:
            if f.struct_name:
                self.encode_fn(f"{root}_{f.struct_name}", f.children, flex, False, root)
        self.root = root
        fcond = flex.cond() if not flex.empty() else "0"
        storage = "" if top else "static "
        proto = f"{storage}void {cname}_encode(kp_wr_t *wr, int16_t version, const {cname} *m)"
        if top:
            self.h.append(proto + ";")
        else:
            self.c.insert(self.proto_at, proto + ";")
            self.proto_at += 1
        self.c.append(proto)
        self.c.append("{")
        self.c.append(f"    const int flex = {fcond if fcond else '1'};")
        self.c.append("    (void)flex; (void)version; (void)m;")
        for f in fields:
            if f.tag is not None:
                continue
            cond = f.versions.cond()
            if cond == "0":
                continue
            if cond:
                self.c.append(f"    if ({cond}) {{")
                self.encode_field(cname, f, self.c, "        ")
                self.c.append("    }")
            else:
                self.encode_field(cname, f, self.c, "    ")
        tagged = sorted([f for f in fields if f.tag is not None], key=lambda f: f.tag)
        self.c.append("    if (flex) {")
        if tagged:
            self.c.append("        uint32_t ntags_ = 0;")
            for f in tagged:
                cond = f.versions.cond() or "1"
                self.c.append(f"        int has{f.tag}_ = ({cond}) && !({self.is_default_expr(f)});")
                self.c.append(f"        ntags_ += (uint32_t)has{f.tag}_;")
            self.c.append("        kp_wr_uvarint(wr, ntags_);")
            for f in tagged:
                self.c.append(f"        if (has{f.tag}_) {{")
                self.c.append("            kp_wr_t sub_;")
                self.c.append("            kp_wr_init(&sub_);")
                self.c.append("            { kp_wr_t *outer_ = wr; wr = &sub_;")
                self.encode_field(cname, f, self.c, "            ")
                self.c.append("            wr = outer_; }")
                self.c.append(f"            kp_wr_uvarint(wr, {f.tag});")
                self.c.append("            kp_wr_uvarint(wr, (uint32_t)sub_.buf.len);")
                self.c.append("            kp_wr_raw(wr, sub_.buf.data, sub_.buf.len);")
                self.c.append("            kp_wr_free(&sub_);")
                self.c.append("        }")
        else:
            self.c.append("        kp_wr_uvarint(wr, 0);")
        self.c.append("    }")
        self.c.append("}")
        self.c.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("defs", nargs="+")
    args = ap.parse_args()
    msgs = []
    for d in sorted(args.defs):
        msgs.extend(parse(d))
    names = set()
    for m in msgs:
        if m.name in names:
            sys.exit(f"duplicate message {m.name}")
        names.add(m.name)

    g = Gen()
    g.h += [
        "/* Generated by tools/kpgen.py from src/protocol/defs — do not edit. */",
        "#ifndef KP_MSGS_H", "#define KP_MSGS_H", "",
        '#include "protocol/wire.h"', "",
    ]
    g.c += [
        "/* Generated by tools/kpgen.py from src/protocol/defs — do not edit. */",
        '#include "kp_msgs.h"', "", "#include <string.h>", "",
    ]
    g.proto_at = len(g.c)
    for m in msgs:
        g.struct_decls(m.name, m.fields)
    for m in msgs:
        g.init_fn(m.name, m.fields)
        g.decode_fn(m.name, m.fields, m.flex, True)
        g.encode_fn(m.name, m.fields, m.flex, True)
        g.h.append("")

    # API table from the request definitions.
    reqs = [m for m in msgs if m.kind == "request"]
    resps = {m.key: m for m in msgs if m.kind == "response"}
    g.h += [
        "typedef struct kp_api_def {",
        "    int16_t key;",
        "    const char *name;",
        "    int16_t min_version, max_version;",
        "    int16_t flexible_min; /* first flexible version, -1: none */",
        "} kp_api_def_t;",
        "",
        f"#define KP_API_DEFS_COUNT {len(reqs)}",
        "extern const kp_api_def_t kp_api_defs[KP_API_DEFS_COUNT];",
        "",
    ]
    g.c.append("const kp_api_def_t kp_api_defs[KP_API_DEFS_COUNT] = {")
    for m in sorted(reqs, key=lambda m: m.key):
        r = resps.get(m.key)
        if not r or (r.versions.lo, r.versions.hi) != (m.versions.lo, m.versions.hi):
            sys.exit(f"{m.name}: response definition missing or with other versions")
        fl = -1 if m.flex.empty() else m.flex.lo
        api = m.name[:-len("Request")] if m.name.endswith("Request") else m.name
        g.c.append(f'    {{{m.key}, "{api}", {m.versions.lo}, {m.versions.hi}, {fl}}},')
    g.c.append("};")
    for m in sorted(reqs, key=lambda m: m.key):
        api = m.name[:-len("Request")]
        g.h.append(f"#define KP_API_{re.sub(r'(?<!^)(?=[A-Z])', '_', api).upper()} {m.key}")
    g.h += ["", "#endif", ""]

    os.makedirs(args.out, exist_ok=True)
    for name, lines in (("kp_msgs.h", g.h), ("kp_msgs.c", g.c)):
        path = os.path.join(args.out, name)
        text = "\n".join(lines) + "\n"
        if os.path.exists(path) and open(path).read() == text:
            continue
        with open(path + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
