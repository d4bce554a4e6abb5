#!/usr/bin/env python3
"""Generates examples/demo/day.jsonl: the replayed day behind `firebell demo`.

Deterministic (fixed seed). One minute resolution, 2026-11-23 00:00-24:00 UTC,
two services (payments, checkout) in the `Shop` namespace:

  Requests (Sum), Errors (Sum) per service; Latency p99 (ms) for checkout.

Scripted events (UTC):
  02:13, 03:47, 04:20  payments: a single 500 at night (30 requests/min)
  04:30-04:31          checkout: 2-of-3 failure blip at very low traffic
  11:20-11:21          payments: 2-minute error spike (8%)
  13:05-13:07          payments: gap in the data (no datapoints)
  15:42-15:53          payments: real incident, error rate about 5% for 12 minutes
  19:05-19:24          checkout: p99 latency degradation (about 1.4 s)

Run: python3 examples/demo/generate.py > examples/demo/day.jsonl
"""
import json
import math
import random

DAY = 1795392000  # 2026-11-23T00:00:00Z
rng = random.Random(20261123)


def minute(hh, mm):
    return DAY + hh * 3600 + mm * 60


def traffic(t, peak):
    h = (t - DAY) / 3600.0
    day = max(0.0, math.sin(math.pi * (h - 6.0) / 16.0)) if 6.0 <= h <= 22.0 else 0.0
    return int(round(30 + peak * day ** 1.5 + rng.gauss(0, 3 + 0.02 * peak * day)))


def poisson(lam):
    # Knuth; fine for small lambdas.
    l, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= l:
            return k
        k += 1


series = {}


def add(service, metric, stat, t, v):
    series.setdefault((service, metric, stat), []).append([t, round(v, 3)])


for i in range(1440):
    t = DAY + 60 * i
    # payments
    req = max(traffic(t, 1500), 5)
    err = poisson(req * 0.0004) if req > 200 else 0
    if t in (minute(2, 13), minute(3, 47), minute(4, 20)):
        err = 1
    if minute(11, 20) <= t <= minute(11, 21):
        err = int(round(req * 0.08))
    if minute(15, 42) <= t <= minute(15, 53):
        err = int(round(req * rng.uniform(0.046, 0.058)))
    if not (minute(13, 5) <= t <= minute(13, 7)):
        add("payments", "Requests", "Sum", t, req)
        add("payments", "Errors", "Sum", t, err)
    # checkout
    creq = max(traffic(t, 1200), 4)
    cerr = poisson(creq * 0.0003) if creq > 200 else 0
    if minute(4, 30) <= t <= minute(4, 31):
        creq, cerr = 8, 2
    add("checkout", "Requests", "Sum", t, creq)
    add("checkout", "Errors", "Sum", t, cerr)
    p99 = rng.gauss(210, 25)
    if minute(19, 5) <= t <= minute(19, 24):
        p99 = rng.gauss(1400, 120)
    add("checkout", "Latency", "p99", t, max(p99, 50))

for (service, metric, stat), points in sorted(series.items()):
    print(json.dumps({
        "namespace": "Shop",
        "metric": metric,
        "dimensions": {"Service": service},
        "stat": stat,
        "period": 60,
        "points": points,
    }, separators=(",", ":")))
