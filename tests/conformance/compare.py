"""Compares conformance results taken directly against a server and through Warden.

    python3 compare.py OUT_DIR KNOWN_DIFFERENCES

Exits 1 if any scenario passes directly but fails through the gateway, or any check succeeds
directly but fails through it, unless listed in KNOWN_DIFFERENCES. Other differences (for example
a check that is SUCCESS directly and INFO through the gateway) are printed as notes.
"""

import glob
import json
import os
import re
import sys

out, known_file = sys.argv[1], sys.argv[2]
known = set()
for line in open(known_file):
    line = line.strip()
    if line and not line.startswith("#"):
        known.add(line)


def load(run_dir):
    scenarios = {}
    for path in glob.glob(os.path.join(run_dir, "server-*", "checks.json")):
        name = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", os.path.basename(os.path.dirname(path)))
        checks = json.load(open(path))
        scenarios[name] = {c.get("id"): c.get("status") for c in checks}
    return scenarios


failures, notes = [], []
for req in ("2025-11-25", "2026-07-28"):
    direct = load(os.path.join(out, f"direct-{req}"))
    gateway = load(os.path.join(out, f"gateway-{req}"))
    if not direct:
        failures.append(f"{req}: no direct results")
        continue
    passed_direct = passed_gateway = 0
    for scenario, checks in sorted(direct.items()):
        through = gateway.get(scenario)
        direct_ok = "FAILURE" not in checks.values()
        passed_direct += direct_ok
        if through is None:
            if f"{req} {scenario}" not in known:
                failures.append(f"{req} {scenario}: not run through the gateway")
            continue
        gateway_ok = "FAILURE" not in through.values()
        passed_gateway += gateway_ok
        if direct_ok and not gateway_ok and f"{req} {scenario}" not in known:
            bad = [c for c, s in through.items() if s == "FAILURE"]
            failures.append(f"{req} {scenario}: passes directly, fails through the gateway ({', '.join(map(str, bad))})")
        for check, status in checks.items():
            g = through.get(check)
            if g == status:
                continue
            if status == "SUCCESS" and g == "FAILURE" and f"{req} {scenario} {check}" not in known and direct_ok is False:
                failures.append(f"{req} {scenario} {check}: SUCCESS directly, FAILURE through the gateway")
            else:
                notes.append(f"{req} {scenario} {check}: {status} directly, {g} through the gateway")
    print(f"{req}: {passed_direct}/{len(direct)} scenarios pass directly, {passed_gateway}/{len(gateway)} through the gateway")

for n in notes:
    print("note:", n)
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
