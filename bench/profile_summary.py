"""Summarise a py-spy ``--format raw`` profile per process: top self and cumulative frames.

    py-spy record --subprocesses -r 50 -f raw -o prof.txt -- .venv/bin/python bench/e2e.py ...
    .venv/bin/python bench/profile_summary.py prof.txt [--top 12] [--match worker]

A process is named by its daemon (``worker``, ``parser``, ``audit``), its script, or as a
spawned child (the load client, the bare anchor, the parser's sandbox). Samples spent importing (start-up) or waiting (the event loop's
``select``, aiosqlite's and the thread pool's idle queue reads) are counted apart; the
percentages are of the remaining busy samples. The cumulative column lists the project's own
functions and the libraries it calls, not the interpreter's entry frames.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["summarise"]

_IDLE = (
    "EpollSelector.select",
    "_connection_worker_thread (",
    "_worker (concurrent/futures/thread.py)",
    "_worker (futures/thread.py)",
)
_ENTRY = re.compile(
    r"^(<module>|run|main|_main|spawn_main|Thread\.|Runner\.|BaseEventLoop\.|Handle\.|"
    r"Command\.|Group\.|Context\.|pass_context|_run_module|_run_code|run_path)"
)
_DAEMONS = ("worker", "parser", "audit", "gateway", "identity")
_PROCESS = re.compile(r'^process (\d+):"(.*)"$')
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _name(pid: str, cmdline: str) -> str:
    words = cmdline.split()
    if words and words[-1] in _DAEMONS:
        return words[-1]
    if "spawn_main" in cmdline:
        return f"spawned child {pid}"
    return next((w.rsplit("/", 1)[-1] for w in words if w.endswith(".py")), cmdline)


def _frame(raw: str) -> str:
    match = _FRAME.match(raw)
    if match is None:
        return raw
    function, where = match.groups()
    return f"{function} ({'/'.join(where.split('/')[-2:])})"


def summarise(lines: list[str]) -> dict[str, tuple[int, Counter[str], Counter[str]]]:
    """Per innermost process: its busy samples, self counts and cumulative counts by frame.

    The self counts also hold ``[idle]`` and ``[start-up]`` for the samples left out.
    """
    samples: dict[str, int] = defaultdict(int)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    total: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames: list[str] = []
        for piece in stack.split(";"):  # a command line may itself hold ';'
            if frames and frames[-1].startswith("process ") and not frames[-1].endswith('"'):
                frames[-1] += ";" + piece
            else:
                frames.append(piece)
        process = "?"
        rest: list[str] = []
        for raw in frames:
            match = _PROCESS.match(raw)
            if match is not None:
                process, rest = _name(match.group(1), match.group(2)), []
            elif not raw.startswith("thread ("):
                rest.append(_frame(raw))
        if not rest or any(rest[-1].startswith(idle) for idle in _IDLE):
            own[process]["[idle]"] += count
            continue
        if any("importlib" in frame for frame in rest):
            own[process]["[start-up]"] += count
            continue
        samples[process] += count
        own[process][rest[-1]] += count
        for frame in set(rest):
            if not _ENTRY.match(frame):
                total[process][frame] += count
    return {p: (samples[p], own[p], total[p]) for p in samples}


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    result = summarise(args.profile.read_text().splitlines())
    for process, (n, own, total) in sorted(result.items(), key=lambda item: -item[1][0]):
        if args.match not in process or n == 0:
            continue
        idle, startup = own.pop("[idle]", 0), own.pop("[start-up]", 0)
        print(f"\n## {process}: {n} busy samples ({idle} idle, {startup} start-up left out)")
        print("| self % | frame | | cumulative % | frame |\n|---:|---|---|---:|---|")
        for (f1, c1), (f2, c2) in zip(
            own.most_common(args.top), total.most_common(args.top), strict=False
        ):
            print(f"| {100 * c1 / n:.1f} | `{f1}` | | {100 * c2 / n:.1f} | `{f2}` |")


if __name__ == "__main__":
    main()
