"""The tasks module of tests/celery_worker.rs: a Celery app with Celery's defaults, on the broker
named by WARREN_CELERY_BROKER, its task queue named by WARREN_CELERY_QUEUE (unique per run, so
that runs and other users of a shared RabbitMQ never take each other's tasks).

`survive_kill` is an `acks_late` task: its first delivery waits to be killed with its worker (the
test SIGKILLs the worker's process group once it logs `started`), so the broker must requeue it
when the connection drops; the redelivery (`redelivered=True`) completes. Each run logs one line
the test waits for.
"""

import os
import time

from celery import Celery
from celery.utils.log import get_task_logger

app = Celery("warren_celery", broker=os.environ["WARREN_CELERY_BROKER"])
app.conf.task_default_queue = os.environ["WARREN_CELERY_QUEUE"]
# Nothing else is changed: gossip, mingle, heartbeats and remote control stay on, as in a
# worker started with no options.

log = get_task_logger(__name__)

# How long the first delivery waits for the kill before it gives up (and the test fails).
HOLD_SECONDS = 120


@app.task(bind=True, acks_late=True)
def survive_kill(self, token):
    redelivered = bool(self.request.delivery_info.get("redelivered"))
    log.warning("warren-celery: %s started, redelivered=%s", token, redelivered)
    if not redelivered:
        # Held until the test kills this worker: the message stays unacked meanwhile.
        time.sleep(HOLD_SECONDS)
        raise RuntimeError(f"{token}: the worker was not killed within {HOLD_SECONDS}s")
    log.warning("warren-celery: %s finished", token)
    return token
