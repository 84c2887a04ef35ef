"""Where multi-broker clusters plug in (replicated pools, SPEC §11; not built yet).

A replicated pool under test is an Etcd (harness/etcd.py) and N Brokers (harness/procs.py)
whose properties name the same metadata.etcd.endpoints and each its own node id. The
intended shape, for the tests that need it:

    class Cluster:
        def __init__(self, workdir, n, **props):
            self.etcd = Etcd(workdir).start()
            self.brokers = [Broker(os.path.join(workdir, "data-%d" % i),
                                   dict(props, **{"metadata.etcd.endpoints": self.etcd.url}))
                            for i in range(n)]
        bootstrap -> ",".join(b.bootstrap for b in self.brokers)
        stop()    -> every broker's stop() (each asserts its clean exit), then etcd.stop()

with a `cluster_factory` fixture in conftest.py next to broker_factory (same teardown: stop
everything, fail the test on any unclean exit). Broker already takes arbitrary properties
and its own data directory, and kill9()/restart() of one member is what failover tests
need; Etcd has kill9()/restart() for the metadata side.
"""
