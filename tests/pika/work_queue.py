#!/usr/bin/env python3
"""The RabbitMQ work-queue tutorial's rules, checked with pika (an independent AMQP client).

Usage: python3 work_queue.py amqp://guest:guest@127.0.0.1:5672/%2f

Against any AMQP 0-9-1 broker (warren's embedded broker in CI; RabbitMQ answers the same):
durable and quorum queues, persistent messages under publisher confirms, prefetch=1 with
manual acks, a worker that drops its connection with a task unacked (the task comes back
with redelivered=True), basic.get, and every task acked exactly once.
Exits 0 and prints `pika: N checks passed`, or exits 1 with `pika: FAILED: ...`.
"""

import signal
import socket
import sys
import time
import traceback
import uuid

import pika
import pika.exceptions

# No single wait (a delivery, a reply, a requeue) may take longer than this.
TIMEOUT = 10.0
# The whole run, however it hangs.
OVERALL = 120
TASKS = 10

checks = 0


class Failed(Exception):
    pass


def require(cond, message):
    if not cond:
        raise Failed(message)


def passed(what):
    global checks
    checks += 1
    print(f"  ok {checks}: {what}", flush=True)


def connect(params):
    return pika.BlockingConnection(params)


def drop_abruptly(conn):
    """Drop the TCP connection as a crashing worker would: no channel.close, no
    connection.close. Returns how it was done."""
    transport = getattr(getattr(conn, "_impl", None), "_transport", None)
    sock = getattr(transport, "_sock", None)
    if not isinstance(sock, socket.socket):
        # pika's internals moved: a clean close with unacked deliveries requeues them too.
        conn.close()
        return "closed (cleanly: pika's socket was not reachable)"
    sock.shutdown(socket.SHUT_RDWR)
    try:
        # Let pika see the dead stream; it reports it as an error, which is the point.
        conn.process_data_events(time_limit=0)
    except (pika.exceptions.AMQPError, OSError):
        pass
    return "dropped abruptly (socket shut down, no AMQP close)"


def wait_for(what, predicate):
    """Poll the broker until predicate() holds, at most TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = predicate()
        if value:
            return
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {TIMEOUT:.0f} s")
        time.sleep(0.02)


def run(params, queue, quorum):
    bodies = [f"task {i} of {queue}".encode() for i in range(TASKS)]
    acked = []
    redelivered = []

    inspector = connect(params)
    ich = inspector.channel()

    def ready():
        return ich.queue_declare(queue=queue, passive=True).method.message_count

    # 1. A durable queue, as the tutorial's task_queue.
    ok = ich.queue_declare(queue=queue, durable=True)
    require(ok.method.queue == queue, f"declare-ok names {ok.method.queue!r}, not {queue!r}")
    require(ok.method.message_count == 0, f"a new queue holds {ok.method.message_count} messages")
    passed(f"durable queue {queue} declared")

    # 2. The tutorial now declares its queue as quorum: the broker must accept that.
    ok = ich.queue_declare(queue=quorum, durable=True, arguments={"x-queue-type": "quorum"})
    require(ok.method.queue == quorum, f"quorum declare-ok names {ok.method.queue!r}")
    ich.queue_declare(queue=quorum, durable=True, arguments={"x-queue-type": "quorum"})
    ich.queue_declare(queue=quorum, passive=True)
    passed("queue with x-queue-type=quorum declared (and redeclared equivalently)")

    # 3. Persistent messages, each confirmed by the broker before the next is sent.
    producer = connect(params)
    pch = producer.channel()
    pch.confirm_delivery()
    persistent = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
    for body in bodies:
        # Raises NackError / UnroutableError unless the broker acks it.
        pch.basic_publish(exchange="", routing_key=queue, body=body, properties=persistent, mandatory=True)
    require(ready() == TASKS, f"{TASKS} confirmed publishes but the queue holds {ready()}")
    passed(f"{TASKS} persistent messages published, each confirmed")

    # 4. Confirms and mandatory: an unroutable message comes back (basic.return), not lost silently.
    try:
        pch.basic_publish(
            exchange="", routing_key=f"{queue}.nowhere", body=b"lost", properties=persistent, mandatory=True
        )
        raise Failed("a mandatory publish to no queue was confirmed without basic.return")
    except pika.exceptions.UnroutableError:
        pass
    producer.close()
    passed("a mandatory message that no queue takes is returned")

    # 5. Worker A: prefetch=1, manual ack. The broker hands out one task at a time, in order.
    a = connect(params)
    ach = a.channel()
    ach.basic_qos(prefetch_count=1)
    deliveries = ach.consume(queue, auto_ack=False, inactivity_timeout=TIMEOUT)
    for i in range(3):
        method, props, body = next(deliveries)
        require(method is not None, f"worker A: delivery {i + 1} did not come within {TIMEOUT:.0f} s")
        require(body == bodies[i], f"worker A: delivery {i + 1} is {body!r}, expected {bodies[i]!r}")
        require(not method.redelivered, f"worker A: first delivery of {body!r} flagged redelivered")
        require(props.delivery_mode == 2, f"delivery_mode {props.delivery_mode}: persistence lost")
        held = ready()
        require(
            held == TASKS - i - 1,
            f"prefetch=1: with one task unacked the queue should hold {TASKS - i - 1}, holds {held}",
        )
        if i == 2:
            # Stop consuming before the last ack frees the slot, so no 4th task is sent to A.
            pending = ach.cancel()
            require(pending == 0, f"prefetch=1 but {pending} more deliveries were waiting at worker A")
        ach.basic_ack(method.delivery_tag)
        acked.append(body)
    a.close()
    require(ready() == TASKS - 3, f"after 3 acks and a clean close the queue holds {ready()}, expected 7")
    passed("prefetch=1 + manual ack: worker A got tasks 0, 1, 2 one at a time, in order, and acked them")

    # 6. Worker B: prefetch=1 and never acks: it gets exactly one task.
    b = connect(params)
    bch = b.channel()
    bch.basic_qos(prefetch_count=1)
    got = []
    bch.basic_consume(queue, lambda _ch, m, p, body: got.append((m, p, body)), auto_ack=False)
    deadline = time.monotonic() + TIMEOUT
    while not got and time.monotonic() < deadline:
        b.process_data_events(time_limit=0.05)
    require(len(got) == 1, f"worker B: no delivery within {TIMEOUT:.0f} s")
    require(got[0][2] == bodies[3], f"worker B got {got[0][2]!r}, expected {bodies[3]!r}")
    # Give a (wrong) second delivery every chance to arrive; the broker's count must agree.
    b.process_data_events(time_limit=0.5)
    require(len(got) == 1, f"prefetch=1 but worker B holds {len(got)} unacked deliveries")
    require(ready() == TASKS - 4, f"with B holding one task the queue holds {ready()}, expected 6")
    passed("prefetch=1 without ack: worker B holds exactly one task, 6 stay in the queue")

    # 7. Worker B dies with its task unacked: the broker requeues it.
    how = drop_abruptly(b)
    wait_for("worker B's unacked task back in the queue", lambda: ready() == TASKS - 3)
    passed(f"worker B's connection {how}; its unacked task went back to the queue")

    # 8. Worker C: the requeued task comes first (its original place), flagged redelivered.
    c = connect(params)
    cch = c.channel()
    cch.basic_qos(prefetch_count=1)
    deliveries = cch.consume(queue, auto_ack=False, inactivity_timeout=TIMEOUT)
    for i in range(3, TASKS - 1):
        method, props, body = next(deliveries)
        require(method is not None, f"worker C: task {i} did not come within {TIMEOUT:.0f} s")
        require(body == bodies[i], f"worker C: got {body!r}, expected {bodies[i]!r}")
        require(method.redelivered == (i == 3), f"worker C: {body!r} has redelivered={method.redelivered}")
        require(props.delivery_mode == 2, f"delivery_mode {props.delivery_mode}: persistence lost")
        if method.redelivered:
            redelivered.append(body)
            passed("the dropped task came back first, with redelivered=True")
        if i == TASKS - 2:
            pending = cch.cancel()
            require(pending == 0, f"prefetch=1 but {pending} more deliveries were waiting at worker C")
        cch.basic_ack(method.delivery_tag)
        acked.append(body)

    # 9. basic.get: the last task, then get-empty.
    method, props, body = cch.basic_get(queue, auto_ack=False)
    require(method is not None, "basic.get on a queue holding one task answered get-empty")
    require(body == bodies[-1], f"basic.get returned {body!r}, expected {bodies[-1]!r}")
    require(method.message_count == 0, f"get-ok says {method.message_count} left, expected 0")
    require(not method.redelivered, "basic.get: a first delivery flagged redelivered")
    cch.basic_ack(method.delivery_tag)
    acked.append(body)
    method, _, _ = cch.basic_get(queue, auto_ack=False)
    require(method is None, "basic.get on an empty queue did not answer get-empty")
    c.close()
    passed("basic.get returned the last task (message_count 0), then get-empty")

    # 10. Every task acked exactly once; one redelivery; nothing left behind.
    require(sorted(acked) == sorted(bodies), f"acked {len(acked)} tasks, not each of the {TASKS} once")
    require(len(set(acked)) == TASKS, "a task was acked twice")
    require(redelivered == [bodies[3]], f"redeliveries: {redelivered!r}")
    ok = ich.queue_declare(queue=queue, passive=True)
    require(ok.method.message_count == 0, f"{ok.method.message_count} messages left behind")
    require(ok.method.consumer_count == 0, f"{ok.method.consumer_count} consumers left behind")
    inspector.close()
    passed(f"all {TASKS} tasks acked exactly once, one redelivery, queue empty")


def cleanup(params, queues):
    try:
        conn = connect(params)
        ch = conn.channel()
        for q in queues:
            ch.queue_delete(queue=q)
        conn.close()
    except Exception as e:  # noqa: BLE001 - best effort; the verdict is already made
        print(f"pika: note: could not delete the test queues: {e!r}", file=sys.stderr)


def on_alarm(_signum, _frame):
    raise Failed(f"the whole run took longer than {OVERALL} s")


def main(argv):
    if len(argv) != 2:
        print("usage: work_queue.py amqp://user:password@host:port/%2f", file=sys.stderr)
        return 2
    params = pika.URLParameters(argv[1])
    params.socket_timeout = TIMEOUT
    params.blocked_connection_timeout = TIMEOUT
    params.connection_attempts = 1
    tag = uuid.uuid4().hex[:12]
    queue, quorum = f"pika.work_queue.{tag}", f"pika.work_queue.quorum.{tag}"
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(OVERALL)
    print(f"pika {pika.__version__} against {params.host}:{params.port}", flush=True)
    try:
        run(params, queue, quorum)
    except Failed as e:
        print(f"pika: FAILED after {checks} checks: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - any client error is a failure, with its trace
        traceback.print_exc()
        print(f"pika: FAILED after {checks} checks: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        cleanup(params, [queue, quorum])
    print(f"pika: {checks} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
