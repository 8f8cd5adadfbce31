#!/usr/bin/python3
"""The Python side of BenchmarkConsumeVsPython: a python3-pgq Consumer with a no-op
event handler, draining a queue's backlog and then exiting.

Usage: python_consumer.py CONNSTR QUEUE CONSUMER
Prints one JSON line: {"events": N, "batches": N, "seconds": S, "cpu": C}, where
seconds is the time from the consumer's start to the end of the backlog and cpu the
CPU time the script used meanwhile (interpreter start-up and imports excluded).

It is the framework's ordinary configuration: pgq_lazy_fetch = 300 (streaming through
pgq.get_batch_cursor), per-event RetriableEvent objects, loop_delay = 0 so the script
stops at the first empty poll instead of sleeping.
"""

import json
import os
import sys
import tempfile
import time

import pgq


class NoopConsumer(pgq.Consumer):
    events = 0
    batches = 0

    def process_batch(self, db, batch_id, ev_list):
        self.batches += 1
        super().process_batch(db, batch_id, ev_list)

    def process_event(self, db, ev):
        self.events += 1


def main():
    connstr, queue, consumer = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="pgq-bench-")
    ini = os.path.join(tmp, "bench.ini")
    with open(ini, "w") as f:
        f.write("[bench]\n")
        f.write("job_name = pgq_bench\n")
        f.write("db = %s\n" % connstr)
        f.write("queue_name = %s\n" % queue)
        f.write("consumer_name = %s\n" % consumer)
        f.write("loop_delay = 0\n")
        f.write("logfile = %s\n" % os.path.join(tmp, "bench.log"))
        f.write("pidfile = %s\n" % os.path.join(tmp, "bench.pid"))
    c = NoopConsumer("bench", "db", ["-q", ini])
    start, cpu = time.monotonic(), time.process_time()
    c.start()
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    print(json.dumps({"events": c.events, "batches": c.batches, "seconds": seconds, "cpu": cpu}))


if __name__ == "__main__":
    main()
