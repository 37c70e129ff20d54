"""Draw the request table of ``benchmarks/requests.py --json`` as the chart in
``docs/performance.rst``: one panel per kind of engine, one pair of bars per
request shape, Django's engine next to scs_django's.

    python benchmarks/requests.py --json results.json
    python benchmarks/chart.py results.json docs/_static/performance.png
    python benchmarks/chart.py --rst results.json   # the table, for the docs

Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KINDS = [
    ("db", "contrib db", "scs db"),
    ("cache (Redis)", "contrib cache (redis)", "scs cache (redis)"),
    ("cached_db", "contrib cached_db", "scs cached_db"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a file of requests.py --json")
    parser.add_argument("image", type=Path, nargs="?", help="the PNG to write")
    parser.add_argument(
        "--rst", action="store_true", help="print the table as reStructuredText"
    )
    args = parser.parse_args()
    if args.rst:
        print_rst(json.loads(args.results.read_text()))
        return
    if args.image is None:
        parser.error("give the PNG to write, or --rst")

    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    results = json.loads(args.results.read_text())
    micros = {(r["request"], r["engine"]): float(r["us"]) for r in results["rows"]}
    shapes = list(dict.fromkeys(r["request"] for r in results["rows"]))

    figure, axes = plt.subplots(1, len(KINDS), figsize=(13, 4.6), sharey=False)
    for axis, (title, django, ours) in zip(axes, KINDS, strict=True):
        present = [s for s in shapes if (s, django) in micros and (s, ours) in micros]
        positions = range(len(present))
        width = 0.38
        axis.barh(
            [p + width / 2 for p in positions],
            [micros[s, django] for s in present],
            height=width,
            color="#9aa5b1",
            label="django.contrib.sessions",
        )
        axis.barh(
            [p - width / 2 for p in positions],
            [micros[s, ours] for s in present],
            height=width,
            color="#2f6fde",
            label="scs_django (sealed)",
        )
        axis.set_yticks(list(positions), present if axis is axes[0] else [])
        axis.invert_yaxis()
        axis.set_title(title)
        axis.set_xlabel("µs per request (median)")
        axis.grid(axis="x", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    database = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        results.get("database", "postgresql"), "PostgreSQL"
    )
    figure.suptitle(
        f"Latency by request shape, each engine next to Django's "
        f"(database engines on {database}, cache on Redis)"
    )
    figure.tight_layout()
    args.image.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.image, dpi=110)
    print(f"wrote {args.image}")


def print_rst(results: dict[str, object]) -> None:
    """One row per request shape: each kind's two engines and their ratio."""
    rows = results["rows"]
    if not isinstance(rows, list):
        raise SystemExit("not a file of requests.py --json")
    micros = {(r["request"], r["engine"]): float(r["us"]) for r in rows}
    shapes = list(dict.fromkeys(r["request"] for r in rows))
    header = ["Request"]
    for title, _django, _ours in KINDS:
        header += [f"Django {title}", f"scs {title}", "×"]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - " + "\n     - ".join(header),
    ]
    for shape in shapes:
        cells = [shape]
        for _title, django, ours in KINDS:
            base, mine = micros.get((shape, django)), micros.get((shape, ours))
            cells += [
                f"{base:.0f}" if base else "",
                f"{mine:.0f}" if mine else "",
                f"{mine / base:.2f}" if base and mine else "",
            ]
        lines.append("   * - " + "\n     - ".join(cells))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
