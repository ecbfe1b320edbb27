"""A closed-loop HTTP load generator, run as its own process so its CPU is not the server's.

    python -m bench.loadgen --url http://127.0.0.1:8000 --requests reqs.jsonl --offset 0 --duration 8 \
        --concurrency 16 --ok-file ok.txt

Each line of the requests file is {"path", "authorization", "body"} ("method" too, POST unless given);
request i goes out at most once per run (the file is read from `--offset` onwards, never wrapped), so every
accepted webhook is a distinct event that can be looked for in the database afterwards. Every request opens
its own connection when the server closes it (gunicorn's sync workers do), and the connect time counts in
the latency, as it does for Vonage. Prints one JSON object: sent, ok, errors, rps, latency percentiles,
next_offset. The indexes of the accepted requests go to --ok-file, one per line.
"""

import argparse
import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlsplit


def build_requests(path: str, host: str) -> list[bytes]:
    built = []
    with open(path) as lines:
        for line in lines:
            item = json.loads(line)
            body = item["body"].encode()
            head = (f"{item.get('method', 'POST')} {item['path']} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nUser-Agent: bench-loadgen\r\n")
            if item.get("authorization"):
                head += f"Authorization: {item['authorization']}\r\n"
            built.append(head.encode() + b"\r\n" + body)
    return built


async def run(args: argparse.Namespace) -> dict:
    url = urlsplit(args.url)
    requests = build_requests(args.requests, url.netloc)
    next_index = args.offset
    latencies: list[float] = []
    ok: list[int] = []
    errors: Counter = Counter()
    loop = asyncio.get_running_loop()
    started = loop.time()
    end = started + args.duration

    async def client() -> None:
        nonlocal next_index
        reader = writer = None
        while loop.time() < end and next_index < len(requests):
            index = next_index
            next_index += 1
            sent_at = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(requests[index])
                status_line = await reader.readline()
                status = int(status_line.split()[1])
                length, close = 0, False
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                if length:
                    await reader.readexactly(length)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
                errors[type(e).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            latencies.append(time.perf_counter() - sent_at)
            if 200 <= status < 300:
                ok.append(index)
            else:
                errors[f"HTTP {status}"] += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = loop.time() - started
    if args.ok_file:
        with open(args.ok_file, "w") as out:
            out.write("\n".join(map(str, ok)))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "sent": len(latencies) + sum(v for k, v in errors.items() if not k.startswith("HTTP")),
        "ok": len(ok), "errors": dict(errors), "elapsed": elapsed, "rps": len(ok) / elapsed,
        "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "next_offset": next_index, "exhausted": next_index >= len(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ok-file", default="")
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
