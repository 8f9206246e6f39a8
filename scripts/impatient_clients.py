#!/usr/bin/env python3
"""Clients that give up, for the 'giveup' workload of scripts/bench.sh.

    impatient_clients.py burst PORT CLIENTS TIMEOUT
        CLIENTS requests to /work?ms=400 at once; each client waits TIMEOUT seconds for
        its answer, then closes and leaves. Then, one second later, one more request that
        waits as long as it takes. Prints: answered next_request_seconds

    impatient_clients.py storm PORT CLIENTS TIMEOUT SECONDS
        CLIENTS clients for SECONDS seconds, each keeping one request to /work?ms=400
        going: a new one as soon as it has its answer, or once TIMEOUT seconds have passed
        since it asked (it gave up, or was refused and tries again when it would have given
        up): a load balancer's retries, or users pressing reload. Prints: answered refused
        gave_up (refused: 503s)

Threads in one process, not a process per request, so the clients take little of the
CPU the server needs.
"""
import socket
import sys
import threading
import time

REQUEST = b"GET /work?ms=400 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def ask(port: int, timeout: float) -> str:
    """One request: '200', '503', ... or 'gave up' when no status line came in time."""
    try:
        return exchange(port, timeout)
    except OSError as e:
        return type(e).__name__


def exchange(port: int, timeout: float) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(REQUEST)
        deadline = time.monotonic() + timeout
        head = b""
        try:
            while b"\r\n" not in head:
                s.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = s.recv(256)
                if not chunk:
                    return "closed"
                head += chunk
        except socket.timeout:
            return "gave up"
        return head.split(b" ")[1].decode()


def run_clients(n: int, body) -> None:
    threads = [threading.Thread(target=body) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def burst(port: int, clients: int, timeout: float) -> None:
    outcomes = []
    run_clients(clients, lambda: outcomes.append(ask(port, timeout)))
    time.sleep(1)
    start = time.monotonic()
    ask(port, 600)
    print(outcomes.count("200"), f"{time.monotonic() - start:.2f}")


def storm(port: int, clients: int, timeout: float, seconds: float) -> None:
    outcomes = []
    end = time.monotonic() + seconds

    def client():
        while time.monotonic() < end:
            began = time.monotonic()
            outcome = ask(port, timeout)
            outcomes.append(outcome)
            if outcome != "200":
                time.sleep(max(began + timeout - time.monotonic(), 0))

    run_clients(clients, client)
    print(outcomes.count("200"), outcomes.count("503"), outcomes.count("gave up"))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "burst":
        burst(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "storm":
        storm(int(args[0]), int(args[1]), float(args[2]), float(args[3]))
    else:
        sys.exit(__doc__)
