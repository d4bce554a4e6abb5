#!/usr/bin/env python3
"""Generates examples/demo/day.jsonl: the replayed day behind `firebell demo`.

Deterministic (fixed seed). One minute resolution, 2026-11-23 00:00-24:00 UTC,
two services (payments, checkout) in the `Shop` namespace:

  Requests (Sum), Errors (Sum) per service; Latency p99 (ms) for checkout,
  and for the checkout latency SLO its SampleCount (one datapoint per
  request) and its percentile rank PR(:800) (the percentage of requests at
  or under 800 ms) at 1 minute, 15 minutes and 1 hour (CloudWatch computes
  a percentile rank per period; a replay cannot re-aggregate it, so each
  period the SLO's rules read is a series of its own, the requests-weighted
  mean of the minutes). Drawn from a second generator, so the other series
  stay as they were.

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
# The latency SLO's series: their own generator (the others' draws unchanged).
slo_rng = random.Random(20261124)


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


def add(service, metric, stat, t, v, period=60):
    series.setdefault((service, metric, stat, period), []).append([t, round(v, 3)])


fast_minutes = []  # (t, requests, percent at or under 800 ms)


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
    # Share of checkout requests at or under 800 ms: nearly all, but about
    # half during the 19:05-19:24 degradation.
    fast = min(100.0, slo_rng.gauss(99.9, 0.08))
    if minute(19, 5) <= t <= minute(19, 24):
        fast = slo_rng.gauss(45.0, 4.0)
    fast = round(fast, 3)
    add("checkout", "Latency", "SampleCount", t, creq)
    add("checkout", "Latency", "PR(:800)", t, fast)
    fast_minutes.append((t, creq, fast))

# PR(:800) over 15 minutes and an hour: the requests-weighted mean.
for period in (900, 3600):
    buckets = {}
    for t, n, fast in fast_minutes:
        b = buckets.setdefault(t - (t - DAY) % period, [0, 0.0])
        b[0] += n
        b[1] += n * fast
    for t in sorted(buckets):
        n, weighted = buckets[t]
        if n > 0:
            add("checkout", "Latency", "PR(:800)", t, weighted / n, period)

for (service, metric, stat, period), points in sorted(series.items()):
    print(json.dumps({
        "namespace": "Shop",
        "metric": metric,
        "dimensions": {"Service": service},
        "stat": stat,
        "period": period,
        "points": points,
    }, separators=(",", ":")))
