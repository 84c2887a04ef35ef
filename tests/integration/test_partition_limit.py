"""A broker hosts at most max.broker.partitions partitions (the name KIP-578 proposed).

Each partition keeps its log file open. A CreateTopics of more partitions than the broker
may open files used to open them until open() failed (EMFILE: meanwhile every accept and
file open of the broker failed too), roll it all back and answer KAFKA_STORAGE_ERROR "Too
many open files" (100,000 partitions: 18 s of that, at a 20,000-file limit). Now it is
INVALID_PARTITIONS before any file is opened, with a message that says why:

  * unset, the limit follows the broker's open-file limit (less 1,024 for connections and
    other files): lowered here on the running broker with prlimit(2), so the test does not
    depend on the machine's ulimit;
  * set (statically or with AlterConfigs, live), CreateTopics and CreatePartitions beyond it
    are refused, internal topics count; what fits is still created;
  * a Topic resource asking for more than the pool's broker can host shows the broker's
    message in its status (test_control.py::test_topic_beyond_the_partition_limit).
"""
import resource

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

INVALID_PARTITIONS = KafkaError.INVALID_PARTITIONS


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create(a, name, partitions):
    a.create_topics([NewTopic(name, partitions, 1)], request_timeout=60)[name].result(60)


def grow(a, name, total):
    a.create_partitions([NewPartitions(name, total)], request_timeout=60)[name].result(60)


def refused(fn, *words):
    with pytest.raises(KafkaException) as ei:
        fn()
    err = ei.value.args[0]
    assert err.code() == INVALID_PARTITIONS, err
    for w in words:
        assert w in err.str(), "%r not in %r" % (w, err.str())
    return err.str()


def lower_open_files(pid, limit):
    """The process's soft RLIMIT_NOFILE down to `limit` (or left where it is, if lower)."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    soft = min(soft, limit)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def test_more_partitions_than_open_files_are_refused(broker_factory):
    b = broker_factory()
    files = lower_open_files(b.proc.pid, 4096)
    a = admin(b)
    msg = refused(lambda: create(a, "huge", files + 1000), "Topic 'huge' with %d partitions"
                  % (files + 1000), "max.broker.partitions",
                  "open-file limit of %d" % files)
    assert "may host at most %d" % max(files - 1024, files // 2) in msg, msg
    md = a.list_topics(timeout=20)
    assert "huge" not in md.topics
    # nothing was opened meanwhile: the broker still creates and serves what fits
    create(a, "fits", 10)
    assert len(a.list_topics(topic="fits", timeout=20).topics["fits"].partitions) == 10
    # DescribeConfigs shows the limit in force (a default, read-write)
    (f,) = a.describe_configs([ConfigResource("broker", "1")]).values()
    e = f.result(20)["max.broker.partitions"]
    assert e.value == str(max(files - 1024, files // 2)) and e.is_default, e
    assert not e.is_read_only, e


def test_configured_limit_create_and_grow(broker_factory):
    b = broker_factory(**{"max.broker.partitions": "60"})
    a = admin(b)
    # __consumer_offsets' 50 partitions count
    create(a, "eight", 8)
    refused(lambda: create(a, "three", 3), "Topic 'three' with 3 partitions",
            "hosts 58 partitions and may host at most 60 (max.broker.partitions)")
    grow(a, "eight", 10)
    refused(lambda: grow(a, "eight", 11), "Adding 1 partitions to topic 'eight'",
            "hosts 60 partitions and may host at most 60")
    md = a.list_topics(timeout=20)
    assert "three" not in md.topics and len(md.topics["eight"].partitions) == 10

    # raised live (AlterConfigs at the broker level): what was refused now fits
    res = ConfigResource("broker", "1", set_config={"max.broker.partitions": "100"})
    for f in a.alter_configs([res]).values():
        f.result(timeout=20)
    create(a, "three", 3)
    grow(a, "eight", 11)
    assert len(a.list_topics(timeout=20).topics["eight"].partitions) == 11
    cfg = a.describe_configs([ConfigResource("broker", "1")])
    (f,) = cfg.values()
    assert f.result(20)["max.broker.partitions"].value == "100"
    # and it is a count of at least 1
    res = ConfigResource("broker", "1", set_config={"max.broker.partitions": "0"})
    with pytest.raises(KafkaException) as ei:
        for f in a.alter_configs([res]).values():
            f.result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG, ei.value



def test_broker_raises_its_soft_open_file_limit_to_the_hard_one(workdir):
    """A broker started with the soft limit login shells and systemd give (1,024) under a
    higher hard limit takes the hard one at start, as Redis does: otherwise it could host
    512 partitions. The log says so, and the default limit follows the raised one."""
    from harness import Broker

    class Low(Broker):
        def args(self):
            return ["prlimit", "--nofile=1024:6000"] + super().args()

    b = Low(workdir + "/data", {})
    b.start()
    try:
        assert resource.prlimit(b.proc.pid, resource.RLIMIT_NOFILE) == (6000, 6000)
        a = admin(b)
        (f,) = a.describe_configs([ConfigResource("broker", "1")]).values()
        assert f.result(20)["max.broker.partitions"].value == str(6000 - 1024)
    finally:
        b.stop()
    assert "open-file limit raised from 1024 to 6000 (the hard limit)" in b.log()
