"""kafkajs consumes what kafkajs produced, in a consumer group, under every codec, also after
a broker restart (the kafkajs half of test_clients.py's acceptance criterion: kafkajs has no
consumer without a group).

Checked: the group reads every record of five 6-partition topics (one per codec) byte-
identical, in order, at offsets 0..n-1, with no duplicate; after a clean restart the group's
committed offsets are still the partitions' end offsets, and a new group reads everything
again, byte-identical.
"""
import json
import os

import clients as C


def test_kafkajs_group_roundtrip_every_codec(broker_factory, workdir):
    assert C.node_available(), "tests/integration/js/node_modules missing: run install-deps"
    # one member per group: the 3 s wait for more members would only make both reads slower
    broker = broker_factory(group_initial_rebalance_delay_ms=0)
    timer = C.Timer()
    topics = {codec: "grp-kafkajs-%s" % codec for codec in C.CODECS}
    C.create_topics(broker.bootstrap, list(topics.values()))
    expected = {c: C.expected_partitions(C.records_for(t)) for c, t in topics.items()}

    jobs = []
    for c, t in topics.items():
        path = os.path.join(workdir, "%s.records" % t)
        C.write_records_file(path, C.records_for(t))
        jobs.append({"topic": t, "codec": c, "file": path})
    jobs_file = os.path.join(workdir, "produce-jobs.json")
    with open(jobs_file, "w") as f:
        json.dump(jobs, f)
    acked = json.loads(C.run_node(["produce", broker.bootstrap, jobs_file], timeout=300))
    assert acked == {t: C.MESSAGES for t in topics.values()}, acked
    timer.mark("produce")

    def consume(group, label):
        out = [{"topic": t, "expected": C.MESSAGES,
                "file": os.path.join(workdir, "%s.%s.read" % (t, group))}
               for t in topics.values()]
        path = os.path.join(workdir, "consume-%s.json" % group)
        with open(path, "w") as f:
            json.dump(out, f)
        C.run_node(["consume", broker.bootstrap, path, group, "120000"], timeout=300)
        errors = []
        for (c, t), job in zip(topics.items(), out):
            got = C.read_records_file(job["file"], t)
            errors += C.compare(t, expected[c], got, "kafkajs group %s" % label)
        return errors

    errors = consume("kpool-it-kafkajs-1", "before restart")
    timer.mark("consume")
    broker.restart()
    timer.mark("restart")
    committed = json.loads(C.run_node(["offsets", broker.bootstrap, "kpool-it-kafkajs-1"]
                                      + list(topics.values()), timeout=60))
    want = {t: {str(p): len(expected[c][p]) for p in range(C.PARTITIONS)}
            for c, t in topics.items()}
    if committed != want:
        errors.append("committed offsets after restart: %s, expected %s" % (committed, want))
    errors += consume("kpool-it-kafkajs-2", "after restart")
    timer.mark("consume again")
    print("kafkajs group: %s" % timer)
    assert not errors, "%d problems:\n%s" % (len(errors), "\n".join(errors[:40]))
