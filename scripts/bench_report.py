#!/usr/bin/env python3
"""Turns the raw figures of scripts/bench.sh into the Markdown tables of README.md and a
PNG plot of requests per second against worker count for the origin workload.

    bench_report.py OUT_DIR

Reads OUT_DIR/results.txt ("server tool round rps us_per_req" per run), OUT_DIR/origin.txt
("workers rps failed"), OUT_DIR/giveup.txt ("setting next_request_s storm_answered
storm_refused skipped shed"), OUT_DIR/scrape.txt ("route seconds listen_queue") and
OUT_DIR/autoscale.txt ("setting rps failed peak_workers"), prints medians and ratios,
and writes
OUT_DIR/origin-workers.png (with matplotlib, which bench.sh makes sure of).
"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PAIRS = [  # (workload, br-serve run, nginx run, tool)
    ("hello, keep-alive (wrk -c50)", "br-serve", "nginx", "wrk"),
    ("14-byte static file, keep-alive (wrk -c50)", "br-serve-static", "nginx-static", "wrk"),
    ("new connection per request (ab -c50)", "br-serve", "nginx", "ab"),
]


def load_runs(out: Path) -> dict:
    """{(server, tool): {round: (rps, us_per_req)}} from results.txt."""
    runs = defaultdict(dict)
    path = out / "results.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            name, tool, rnd, rps, us = line.split()
            runs[(name, tool)][int(rnd)] = (float(rps), float(us))
    return runs


def ratio(ours: dict, theirs: dict) -> float:
    """Median over rounds of our CPU per request divided by theirs, same round only (a
    round where a server used no measurable CPU measured nothing, and is left out)."""
    rounds = [r for r in ours.keys() & theirs.keys() if theirs[r][1] > 0]
    if not rounds:
        sys.exit("bench_report.py: a server used no measurable CPU; was it the one measured?")
    return statistics.median(ours[r][1] / theirs[r][1] for r in rounds)


def med(runs: dict, index: int) -> float:
    return statistics.median(v[index] for v in runs.values())


def fast_table(out: Path) -> None:
    runs = load_runs(out)
    if not runs:
        return
    head("workload", "br-serve CPU µs/req", "nginx CPU µs/req", "ratio", "br-serve req/s",
         "nginx req/s")
    for label, ours, theirs, tool in PAIRS:
        if (ours, tool) not in runs:
            continue
        mine = runs[(ours, tool)]
        if (theirs, tool) in runs:
            other = runs[(theirs, tool)]
            print(f"| {label} | {med(mine, 1):.2f} | {med(other, 1):.2f} | {ratio(mine, other):.2f} "
                  f"| {med(mine, 0):,.0f} | {med(other, 0):,.0f} |")
        else:
            print(f"| {label} | {med(mine, 1):.2f} | - | - | {med(mine, 0):,.0f} | - |")
    peer_table(runs)
    rounds = max(len(v) for v in runs.values())
    print(f"\nMedians of {rounds} interleaved rounds; server on one core, load on the other;"
          " ratios are medians of per-round ratios.\n")


def peer_table(runs: dict) -> None:
    """br-serve against every other server measured on GET / (nginx and each --peer)."""
    others = sorted({name for name, tool in runs if tool == "wrk"} - {"br-serve", "br-serve-static", "nginx-static"})
    if ("br-serve", "wrk") not in runs or not others:
        return
    head("server", "hello CPU µs/req", "br-serve / server", "new connection CPU µs/req",
         "br-serve / server", blank=True)
    for name in ["br-serve"] + others:
        cells = []
        for tool in ("wrk", "ab"):
            if (name, tool) in runs and ("br-serve", tool) in runs:
                cells += [f"{med(runs[(name, tool)], 1):.2f}", f"{ratio(runs[('br-serve', tool)], runs[(name, tool)]):.2f}"]
            else:
                cells += ["-", "-"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def head(*columns: str, blank: bool = False) -> None:
    """A Markdown table's header and separator lines, after a blank line if `blank`."""
    print(("\n" if blank else "") + "| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


def result_rows(out: Path, name: str) -> list:
    """The rows of one of bench.sh's result files, its header line left out; none when
    that workload did not run."""
    path = out / name
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()[1:]]


def origin_table(out: Path) -> None:
    rows = result_rows(out, "origin.txt")
    if not rows:
        return
    head("workers", "requests/s", "failed")
    for workers, rps, failed in rows:
        print(f"| {workers} | {float(rps):.2f} | {failed} |")
    plot([int(r[0]) for r in rows], [float(r[1]) for r in rows], out / "origin-workers.png")


SETTINGS = {  # bench.sh's giveup settings, as README's table names them
    "none": "neither",
    "check": "`--check-client-connection`",
    "queue": "`--queue-timeout 1.5`",
    "both": "both",
}


def giveup_table(out: Path) -> None:
    rows = result_rows(out, "giveup.txt")
    if not rows:
        return
    head("setting", "burst: next request answered after (s)", "storm: answered in 20 s",
         "storm: refused (503)", "skipped", "shed", blank=True)
    for setting, took, answered, refused, skipped, shed in rows:
        print(f"| {SETTINGS[setting]} | {float(took):.2f} | {answered} | {refused} | {skipped} | {shed} |")


def scrape_table(out: Path) -> None:
    rows = result_rows(out, "scrape.txt")
    if not rows:
        return
    took = defaultdict(list)
    queues = []
    for route, seconds, queue in rows:
        took[route].append(float(seconds))
        if queue != "-":
            queues.append(int(queue))
    head("scrape route, every worker busy", "median time to the answer (s)", "scrapes",
         blank=True)
    for route, name in (("path", "`--metrics-path` (a worker)"), ("bind", "`--metrics-bind` (the master)")):
        if took[route]:
            print(f"| {name} | {statistics.median(took[route]):.4f} | {len(took[route])} |")
    if queues:
        print(f"\naccept queue seen meanwhile: {min(queues)}-{max(queues)} connections")


AUTOSCALE = {  # bench.sh's autoscale settings, as README's table names them
    "fixed-1": "`--workers 1`",
    "fixed-2": "`--workers 2`",
    "auto-1-2": "`--workers 1 --max-workers 2`",
    "auto-1-4": "`--workers 1 --max-workers 4`",
    "auto-1-2-k": "`--workers 1 --max-workers 2`, kept-alive clients (`ab -k`)",
}


def autoscale_table(out: Path) -> None:
    rows = result_rows(out, "autoscale.txt")
    if not rows:
        return
    head("pool", "requests/s", "failed", "workers reached", blank=True)
    for setting, rps, failed, peak in rows:
        print(f"| {AUTOSCALE[setting]} | {float(rps):.2f} | {failed} | {peak} |")


def plot(workers, rps, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = len(__import__("os").sched_getaffinity(0))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(workers, rps, marker="o", label="br-serve")
    ax.axhline(cores / 0.4, linestyle="--", color="grey", label=f"{cores} cores / 0.4 s")
    ax.set_xlabel("workers")
    ax.set_ylabel("requests/s")
    ax.set_title("/work?ms=400 (400 ms of CPU per request), ab -c 10")
    ax.set_xticks(workers)
    ax.set_ylim(0, max(max(rps), cores / 0.4) * 1.2)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png)
    print(f"\nplot: {png}")


if __name__ == "__main__":
    out_dir = Path(sys.argv[1])
    fast_table(out_dir)
    origin_table(out_dir)
    giveup_table(out_dir)
    scrape_table(out_dir)
    autoscale_table(out_dir)
