"""Redis Streams vs pub/sub as the token path of voicesync.celery: one-way delivery latency.

    python bench/celery_transport.py [--messages 2000]

A producer process sends a timestamp every millisecond, by XADD to a stream that the
consumer reads with a blocking XREAD, or by PUBLISH to a channel the consumer subscribed
to; the consumer notes the delay on arrival (perf_counter is system-wide on Linux). Two
rounds each, alternating. Runs its own redis-server on a free loopback port.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import redis

from voicesync.celery.local import RedisServer

KEY = "transport-bench"


def produce(url: str, kind: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    for _ in range(count):
        if kind == "streams":
            client.xadd(KEY, {"t": repr(time.perf_counter())})
        else:
            client.publish(KEY, repr(time.perf_counter()))
        time.sleep(0.001)  # pacing: one message a millisecond


def consume(client: redis.Redis, url: str, kind: str, count: int) -> list[float]:
    delays: list[float] = []
    pubsub = None
    if kind == "pubsub":
        pubsub = client.pubsub()
        pubsub.subscribe(KEY)
        pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    producer = multiprocessing.Process(target=produce, args=(url, kind, count))
    producer.start()
    last = "0-0"
    deadline = time.monotonic() + 30 + count / 100
    while len(delays) < count and time.monotonic() < deadline:
        if pubsub is None:
            for _key, entries in client.xread({KEY: last}, block=1000) or ():
                now = time.perf_counter()
                for entry_id, fields in entries:
                    last = entry_id
                    delays.append(now - float(fields[b"t"]))
        else:
            message = pubsub.get_message(timeout=1.0)
            now = time.perf_counter()
            if message and message["type"] == "message":
                delays.append(now - float(message["data"]))
    producer.join(10)
    if pubsub is not None:
        pubsub.close()
    client.delete(KEY)
    return sorted(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        for kind in ("streams", "pubsub", "streams", "pubsub"):
            d = consume(client, server.url, kind, count)
            print(f"{kind:8} p50 {d[len(d) // 2] * 1e3:.3f} ms   "
                  f"p99 {d[int(len(d) * 0.99)] * 1e3:.3f} ms   ({len(d)} messages)")
        client.close()


if __name__ == "__main__":
    main()
