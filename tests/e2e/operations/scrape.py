"""Reads Prometheus text exposition on stdin with the Prometheus client's own parser and prints
its samples as JSON lines: {"name": ..., "labels": {...}, "value": ...}. A malformed exposition
fails the parse (and the test that called it)."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(json.dumps({"name": s.name, "type": family.type, "labels": s.labels, "value": s.value}))
