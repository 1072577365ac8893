"""Prints a saved result: python -m bench.report bench/results/latest.json [--markdown]"""
import sys

from bench.table import report

report(sys.argv[1], markdown="--markdown" in sys.argv[2:])
