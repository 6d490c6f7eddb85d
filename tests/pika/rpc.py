#!/usr/bin/env python3
"""Tutorial 6's RPC with direct reply-to, checked with pika (an independent AMQP client).

Usage: python3 rpc.py amqp://guest:guest@127.0.0.1:5672/%2f

The client consumes amq.rabbitmq.reply-to with auto_ack, sends requests carrying
reply_to=amq.rabbitmq.reply-to and a correlation id; the server (another connection) sees a
reply name of the client's own and publishes the answer to it on the default exchange; the
answers come back in order. RabbitMQ's refusals: a reply consumer that would ack (406), a
request for a reply on a channel without a reply consumer (406).
Exits 0 and prints `pika rpc: N checks passed`, or exits 1 with `pika rpc: FAILED: ...`.
"""

import sys
import time
import uuid

import pika
import pika.exceptions

TIMEOUT = 10.0
REPLY_TO = "amq.rabbitmq.reply-to"
checks = 0


class Failed(Exception):
    pass


def require(cond, message):
    global checks
    if not cond:
        raise Failed(message)
    checks += 1


def in_time(deadline, message):
    """A wait's bound: not a check of its own."""
    if time.monotonic() >= deadline:
        raise Failed(message)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def rpc(url):
    params = pika.URLParameters(url)
    rpc_queue = "warren.test.pika-rpc." + uuid.uuid4().hex
    server_conn = pika.BlockingConnection(params)
    server = server_conn.channel()
    server.queue_declare(rpc_queue, auto_delete=True)
    client_conn = pika.BlockingConnection(params)
    client = client_conn.channel()
    answers = []
    client.basic_consume(REPLY_TO, lambda ch, m, p, body: answers.append((p.correlation_id, body)), auto_ack=True)
    for n in range(1, 6):
        corr = str(uuid.uuid4())
        client.basic_publish("", rpc_queue, str(n).encode(), pika.BasicProperties(reply_to=REPLY_TO, correlation_id=corr))
        deadline = time.monotonic() + TIMEOUT
        request = None
        while request is None or request[0] is None:
            in_time(deadline, f"request {n} did not reach the server")
            request = server.basic_get(rpc_queue, auto_ack=True)
            if request[0] is None:
                server_conn.process_data_events(0.05)
        _, props, body = request
        require(props.reply_to.startswith(REPLY_TO + ".") and props.reply_to != REPLY_TO + ".",
                f"the server sees a reply name, not {props.reply_to!r}")
        server.basic_publish("", props.reply_to, str(fib(int(body))).encode(),
                             pika.BasicProperties(correlation_id=props.correlation_id))
        deadline = time.monotonic() + TIMEOUT
        while len(answers) < n:
            in_time(deadline, f"no answer to request {n}")
            client_conn.process_data_events(0.05)
        require(answers[-1] == (corr, str(fib(n)).encode()), f"answer {n}: {answers[-1]!r}")
    client_conn.close()
    server.queue_delete(rpc_queue)
    server_conn.close()


def refusals(url):
    params = pika.URLParameters(url)
    conn = pika.BlockingConnection(params)
    try:
        conn.channel().basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)
        require(False, "a reply consumer that acks was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        require((e.reply_code, e.reply_text) == (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"),
                f"consume with acks: {e!r}")
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ch.basic_publish("", "nowhere", b"?", pika.BasicProperties(reply_to=REPLY_TO))
        require(False, "a request for a reply without a reply consumer was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        require((e.reply_code, e.reply_text) == (406, "PRECONDITION_FAILED - fast reply consumer does not exist"),
                f"publish without a reply consumer: {e!r}")
    conn.close()


def main():
    url = sys.argv[1]
    try:
        rpc(url)
        refusals(url)
    except Exception as e:  # noqa: BLE001 - any failure is reported as one line
        print(f"pika rpc: FAILED: {e!r}")
        sys.exit(1)
    print(f"pika rpc: {checks} checks passed")


if __name__ == "__main__":
    main()
