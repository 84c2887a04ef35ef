"""cfgwire — raw encoders/decoders for the admin APIs the clients installed here cannot send:
IncrementalAlterConfigs (confluent-kafka 1.7 has no incremental API), DeleteRecords
(neither kafka-python 2.0.2 nor confluent-kafka 1.7 has it), and DescribeConfigs /
AlterConfigs / CreatePartitions / ListOffsets / Produce at exact versions, so a test can look
at error codes, messages, config sources and synonyms as the broker sent them.

Built on kwire (framing, primitives, sockets). Non-flexible versions only, as kpool serves
them: DescribeConfigs 0-2, AlterConfigs 0-1, IncrementalAlterConfigs 0, CreatePartitions 0-1,
DeleteRecords 0-1, ListOffsets 1.
"""
import struct

import kwire
from kwire import array, i8, i16, i32, i64, string

API_DELETE_RECORDS = 21
API_DESCRIBE_CONFIGS = 32
API_ALTER_CONFIGS = 33
API_CREATE_PARTITIONS = 37
API_INCREMENTAL_ALTER_CONFIGS = 44

RES_TOPIC = 2
RES_BROKER = 4

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3

SOURCE_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5

# Kafka error codes the tests look for
NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
NOT_ENOUGH_REPLICAS = 19
INVALID_PARTITIONS = 37
INVALID_REQUEST = 42
INVALID_CONFIG = 40
POLICY_VIOLATION = 44
INVALID_RECORD = 87


class Reader:
    """Big-endian reader over one response payload (after the length prefix)."""

    def __init__(self, data):
        self.d = data
        self.p = 0

    def _u(self, fmt, n):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += n
        return v

    def i8(self):
        return self._u(">b", 1)

    def i16(self):
        return self._u(">h", 2)

    def i32(self):
        return self._u(">i", 4)

    def i64(self):
        return self._u(">q", 8)

    def bool(self):
        return self.i8() != 0

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def array(self, fn):
        n = self.i32()
        if n < 0:
            return None
        return [fn(self) for _ in range(n)]

    def done(self):
        assert self.p == len(self.d), "%d bytes left over in the response" % (len(self.d) - self.p)


class Conn:
    """One connection; call(key, version, body) -> Reader positioned after the correlation id."""

    def __init__(self, port):
        self.s = kwire.connect(port)
        self.corr = 0

    def call(self, key, version, body):
        self.corr += 1
        self.s.sendall(kwire.request(key, version, self.corr, body))
        r = Reader(kwire.recv_frame(self.s, timeout=30))
        corr = r.i32()
        assert corr == self.corr, (corr, self.corr)
        return r

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ---- DescribeConfigs

    def describe_configs(self, resources, version=2, synonyms=True):
        """resources: [(type, name, keys or None)]. Returns [{error, message, type, name,
        configs: {name: {value, read_only, is_default, source, sensitive, synonyms}}}]."""
        body = array([i8(t) + string(n) + (array(None) if keys is None else
                                           array([string(k) for k in keys]))
                      for t, n, keys in resources])
        if version >= 1:
            body += i8(1 if synonyms else 0)
        r = self.call(API_DESCRIBE_CONFIGS, version, body)
        r.i32()  # throttle

        def config(r):
            c = {"name": r.string(), "value": r.string(), "read_only": r.bool()}
            if version == 0:
                c["is_default"] = r.bool()
            else:
                c["source"] = r.i8()
            c["sensitive"] = r.bool()
            if version >= 1:
                c["synonyms"] = r.array(lambda r: (r.string(), r.string(), r.i8()))
            return c

        def result(r):
            res = {"error": r.i16(), "message": r.string(), "type": r.i8(), "name": r.string()}
            res["configs"] = {c["name"]: c for c in r.array(config)}
            return res

        out = r.array(result)
        r.done()
        return out

    def topic_configs(self, topic, keys=None, version=2):
        res = self.describe_configs([(RES_TOPIC, topic, keys)], version)[0]
        assert res["error"] == 0, res
        return res["configs"]

    # ---- AlterConfigs / IncrementalAlterConfigs

    def _alter_response(self, r):
        r.i32()  # throttle
        out = r.array(lambda r: {"error": r.i16(), "message": r.string(), "type": r.i8(),
                                 "name": r.string()})
        r.done()
        return out

    def alter_configs(self, resources, validate_only=False, version=1):
        """resources: [(type, name, {key: value})] -> [{error, message, type, name}]."""
        body = array([i8(t) + string(n) + array([string(k) + string(v) for k, v in cfg.items()])
                      for t, n, cfg in resources]) + i8(1 if validate_only else 0)
        return self._alter_response(self.call(API_ALTER_CONFIGS, version, body))

    def incremental_alter(self, resources, validate_only=False):
        """resources: [(type, name, [(key, op, value)])] -> [{error, message, type, name}]."""
        body = array([i8(t) + string(n) + array([string(k) + i8(op) + string(v)
                                                 for k, op, v in ops])
                      for t, n, ops in resources]) + i8(1 if validate_only else 0)
        return self._alter_response(self.call(API_INCREMENTAL_ALTER_CONFIGS, 0, body))

    def incremental_topic(self, topic, ops, validate_only=False):
        return self.incremental_alter([(RES_TOPIC, topic, ops)], validate_only)[0]

    # ---- CreatePartitions

    def create_partitions(self, topics, validate_only=False, version=1):
        """topics: [(name, count, assignments or None)] -> [(name, error, message)]."""
        body = array([string(n) + i32(c) + (array(None) if a is None else
                                            array([array([i32(b) for b in bs]) for bs in a]))
                      for n, c, a in topics]) + i32(10000) + i8(1 if validate_only else 0)
        r = self.call(API_CREATE_PARTITIONS, version, body)
        r.i32()
        out = r.array(lambda r: (r.string(), r.i16(), r.string()))
        r.done()
        return out

    # ---- DeleteRecords

    def delete_records(self, topic, offsets, version=1):
        """offsets: {partition: offset} -> {partition: (error, low_watermark)}."""
        body = array([string(topic) + array([i32(p) + i64(o) for p, o in offsets.items()])])
        body += i32(10000)
        r = self.call(API_DELETE_RECORDS, version, body)
        r.i32()
        topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i64(), r.i16()))))
        r.done()
        assert len(topics) == 1 and topics[0][0] == topic, topics
        return {p: (err, low) for p, low, err in topics[0][1]}

    # ---- ListOffsets v1

    def list_offset(self, topic, partition, ts):
        """(error, offset) for timestamp ts (-2 earliest, -1 latest)."""
        r = self.call(kwire.API_LIST_OFFSETS, 1, kwire.body_list_offsets(1, topic, partition, ts))
        topics = r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
        r.done()
        (_, parts), = topics
        (_, err, _, off), = parts
        return err, off

    # ---- Produce v3 (one batch)

    def produce(self, topic, partition, batch, acks=-1):
        """(error, base_offset) for one batch."""
        r = self.call(kwire.API_PRODUCE, 3, kwire.body_produce(3, topic, partition, batch, acks))
        topics = r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
        (_, parts), = topics
        (_, err, base, _), = parts
        return err, base


def keyed_batch(records, timestamp=None):
    """A magic-v2 uncompressed batch of (key, value) records; None is a null key or value."""
    import time
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b""
    for i, (k, v) in enumerate(records):
        body = (i8(0) + kwire.varint(0) + kwire.varint(i) +
                (kwire.varint(-1) if k is None else kwire.varint(len(k)) + k) +
                (kwire.varint(-1) if v is None else kwire.varint(len(v)) + v) + kwire.uvarint(0))
        recs += kwire.varint(len(body)) + body
    after_crc = (i16(0) + i32(len(records) - 1) + i64(ts) + i64(ts) + i64(-1) + i16(-1) +
                 i32(-1) + i32(len(records)) + recs)
    tail = i32(-1) + i8(2) + kwire.u32(kwire.crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(tail)) + tail


# --------------------------------------------------------------------------- real clients

def read_partition(bootstrap, topic, partition, start=-2, timeout=60, config=None):
    """Every record of one partition from `start` (-2: the beginning) up to its high watermark,
    with a fresh confluent-kafka consumer (assign, no group). Returns
    [(offset, key, value, (timestamp_type, timestamp))]; fails on a client error."""
    import time
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    conf = {"bootstrap.servers": bootstrap, "group.id": "cfgwire-read",
            "enable.auto.commit": False, "enable.partition.eof": True,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50}
    conf.update(config or {})
    c = Consumer(conf)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=20)
        out = []
        if hi == lo:
            return out
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.time() + timeout
        while True:
            assert time.time() < deadline, "read of %s-%d timed out at %d records (hwm %d)" % (
                topic, partition, len(out), hi)
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= hi:
                        return out
                    continue
                raise AssertionError("consumer error: %s" % m.error())
            out.append((m.offset(), m.key(), m.value(), m.timestamp()))
            if m.offset() + 1 >= hi:
                return out
    finally:
        c.close()
