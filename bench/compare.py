"""Compares two saved runs of the suite, case by case: python -m bench.compare OLD.json NEW.json [--markdown]

For each (case, threads) present in both runs it prints the old and new ratio loom/PyTorch and their quotient
(below 1: loom gained on PyTorch). Ratios, not times, are compared: the two runs may have seen different loads.
"""
import argparse
import json
import sys


def load_rows(path):
    with open(path) as f:
        run = json.load(f)
    if run.get("schema") is None or "rows" not in run:
        raise SystemExit(f"bench.compare: {path} is not a result file of python -m bench (no schema/rows)")
    return run, {(r["case"], r["threads"]): r for r in run["rows"]}


def describe(run):
    machine = run.get("machine", {})
    return f"loom {machine.get('loom_commit', '?')} on {machine.get('cpu_model', '?')} ({machine.get('date_utc', '?')})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    a = p.parse_args(argv)
    old_run, old = load_rows(a.old)
    new_run, new = load_rows(a.new)
    print(f"old: {describe(old_run)}\nnew: {describe(new_run)}")
    header = ("case", "thr", "old ratio", "new ratio", "new/old")
    if a.markdown:
        print("| " + " | ".join(header) + " |\n|---|---|---|---|---|")
    else:
        print(f"{header[0]:<66} {header[1]:>3} {header[2]:>10} {header[3]:>10} {header[4]:>8}")
    for key in [k for k in new if k in old]:
        ro, rn = old[key].get("ratio"), new[key].get("ratio")
        change = f"{rn / ro:.2f}" if ro and rn else "-"
        cells = (key[0], str(key[1]), f"{ro:.2f}" if ro else "-", f"{rn:.2f}" if rn else "-", change)
        if a.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:<66} {cells[1]:>3} {cells[2]:>10} {cells[3]:>10} {cells[4]:>8}")
    only = sorted(set(old) ^ set(new))
    if only:
        print(f"({len(only)} case(s) in only one of the runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
