"""The ceiling for ``bench/run_bench.py``: Flask answering a fixed small page, nothing else.

Served by the same gunicorn configuration as Broadsheet, in the same run, so
that the ratio of the two cancels out the machine and its noise.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
