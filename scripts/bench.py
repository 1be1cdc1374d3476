#!/usr/bin/env python3
"""Benchmarks offhours passes against a local moto server.

Seeds tagged Auto Scaling groups and plain instances in one account and region, then
times passes of the release binary at simulated moments (--now): the first pass
(registers every group's actions, adopts every instance), a steady-state pass, the
20:00 transition pass (stops every instance), and a steady-state pass after it.
Reports wall time, client CPU (user+sys, from wait4), peak RSS and the API calls by
operation, as a Markdown table, and checks the targets: the first pass makes at most 1.1x
the call floor (its reads, one put per newly scheduled group, one resize per group due
now, ceil(stops/100) stop calls, and the fewest tag calls: ceil(groups/50)
CreateOrUpdateTags, 50 tags a call, plus one CreateTags per distinct tag set and 1,000
instances); a steady-state pass makes no mutating call; and a transition pass at most
ceil(changed/batch) StopInstances calls plus one CreateTags per distinct recording tag
and 1,000 instances. Exits 1 if one is missed. --mixed seeds five schedules and five
group sizes instead of one of each.

--matrix runs every combination of 500, 2,000 and 5,000 instances with 50 and 500 groups,
each on a fresh moto, and ends with a summary. Run through scripts/bench.
"""
import math
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

CONFIG = """\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25, 2027-01-01]
schedules:
  office-hours:
    running: ["Mon-Fri 08:00-20:00"]
    holidays: kr
regions: [us-east-1]
# moto stamps launches with the real clock, which may be past the simulated --now.
instances:
  grace_minutes: 0
"""
# --mixed: real variety, so that memoization cannot serve every group from one entry:
# five schedules (three zones, a midnight-crossing window, stopped windows, two calendars)
# and groups of five sizes; instances cycle through the schedules too.
CONFIG_MIXED = """\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25, 2027-01-01]
  company:
    dates: [2026-12-24, 2026-12-31]
schedules:
  office-hours:
    running: ["Mon-Fri 08:00-20:00"]
    holidays: kr
  late-shift:
    running: ["Mon-Fri 10:00-22:30", "Sat 09:00-13:00"]
    holidays: [kr, company]
  us-east-office:
    running: ["Mon-Fri 08:00-19:00"]
    timezone: America/New_York
  weekend-off:
    stopped: ["Fri 20:00-Mon 08:00"]
    holidays: kr
  night-batch:
    running: ["Mon-Sun 22:00-06:00"]
    timezone: Europe/London
regions: [us-east-1]
instances:
  grace_minutes: 0
"""
MIXED_SCHEDULES = ["office-hours", "late-shift", "us-east-office", "weekend-off", "night-batch"]
MIXED_SIZES = [(1, 2, 1), (2, 4, 3), (0, 10, 5), (1, 1, 1), (3, 6, 4)]
BATCH = 100
PASSES = [
    ("first pass", "2026-12-16T12:00:00+09:00"),
    ("steady state", "2026-12-16T12:05:00+09:00"),
    ("20:00 transition", "2026-12-16T20:01:00+09:00"),
    ("steady state", "2026-12-16T20:06:00+09:00"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(moto):
    port = free_port()
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto did not start")


def seed(endpoint, groups, instances, per_reservation, mixed=False):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
    ec2, asg = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)
    # One instance per RunInstances call, as teams launch them: moto pages DescribeInstances
    # by reservation, so this gives pages of at most 1,000 instances, as AWS does.
    left, k = instances, 0
    while left > 0:
        n = min(left, per_reservation)
        value = MIXED_SCHEDULES[k % len(MIXED_SCHEDULES)] if mixed else "office-hours"
        ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=n, MaxCount=n,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": value}]}])
        left -= n
        k += 1
    ec2.create_launch_template(LaunchTemplateName="bench-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    for i in range(groups):
        lo, hi, want = MIXED_SIZES[i % len(MIXED_SIZES)] if mixed else (1, 2, 1)
        # Sizes and schedules vary independently (5 x 5 combinations, then repeats).
        value = MIXED_SCHEDULES[(i // len(MIXED_SIZES)) % len(MIXED_SCHEDULES)] if mixed else "office-hours"
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"dev-{i:05d}",
            LaunchTemplate={"LaunchTemplateName": "bench-lt"},
            MinSize=lo, MaxSize=hi, DesiredCapacity=want,
            AvailabilityZones=["us-east-1a"],
            Tags=[{"Key": "Schedule", "Value": value, "PropagateAtLaunch": False}],
        )


# Starts the binary from a fresh, small interpreter and reports its rusage. A child forked
# straight from this process would start as a copy of it (boto3 loaded, about 66 MiB), and
# ru_maxrss keeps the high-water mark from before exec: every pass would read at least that.
WRAPPER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "utime": ru.ru_utime, "stime": ru.ru_stime,
               "maxrss": ru.ru_maxrss}, f)
"""


class Usage:
    def __init__(self, d):
        self.ru_utime, self.ru_stime, self.ru_maxrss, self.code = d["utime"], d["stime"], d["maxrss"], d["code"]


def measured(binary, config, endpoint, command, now):
    """Runs the binary and reads its own rusage with wait4 (in a small wrapper)."""
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true", RUST_LOG="offhours=warn",
                   # the key that seals saved sizes; a real deployment keeps it in a secret
                   OFFHOURS_STATE_KEY=os.environ.get("OFFHOURS_STATE_KEY", "bench-state-key-not-secret"))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as usage:
        start = time.monotonic()
        subprocess.run([sys.executable, "-S", "-c", WRAPPER, usage.name,
                        binary, "--config", config, command, "--output", "json", "--now", now],
                       stdout=out, stderr=err, env=env, check=True)
        wall = time.monotonic() - start
        ru = Usage(json.load(open(usage.name)))
        out.seek(0)
        err.seek(0)
        if ru.code != 0:
            sys.exit(f"{command} failed: {err.read().decode()[-2000:]}")
        return json.loads(out.read()), wall, ru


def instance_tag_calls(report):
    """The fewest CreateTags/DeleteTags calls a report's instance tag changes need: one call
    sets the same tags on up to 1,000 instances, so one per distinct tag set and 1,000."""
    sets = {}
    for c in report["changes"]:
        if c["resource_type"] == "instance" and c["change"] in ("set-tags", "remove-tags"):
            key = (c["change"], json.dumps(c.get("tags") or c.get("keys"), sort_keys=True))
            sets[key] = sets.get(key, 0) + 1
    return sum(math.ceil(n / 1000) for n in sets.values())


def mutating(report):
    return {k: v for k, v in report["api_calls"].items() if not k.split(".")[-1].startswith(("Describe", "List", "Get"))}


def one(a, groups, instances):
    """Seeds, runs the passes, prints the table; returns (rows, misses)."""
    proc, endpoint = start_moto(a.moto)
    try:
        t = time.monotonic()
        seed(endpoint, groups, instances, a.per_reservation, a.mixed)
        print(f"seeded {groups} groups and {instances} instances in {time.monotonic() - t:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "offhours.yaml")
            with open(config, "w") as f:
                f.write(CONFIG_MIXED if a.mixed else CONFIG)
            rows = []
            for label, now in PASSES:
                report, wall, ru = measured(a.binary, config, endpoint, "reconcile", now)
                cpu = ru.ru_utime + ru.ru_stime
                rows.append((label, report, wall, cpu, ru.ru_maxrss / 1024))
            print(f"| pass | resources | changes | wall (s) | client CPU (s) | CPU per resource (µs) | peak RSS (MiB) | API calls |")
            print(f"|---|---|---|---|---|---|---|---|")
            for label, report, wall, cpu, rss in rows:
                calls = ", ".join(f"{k} {v}" for k, v in sorted(report["api_calls"].items()))
                n = max(1, report["summary"]["resources"])
                print(f"| {label} | {n} | {report['summary']['changes']} | {wall:.2f} | {cpu:.3f} | {cpu / n * 1e6:.0f} | {rss:.1f} | {calls} |")
            misses = []
            for label, report, *_ in rows:
                m = mutating(report)
                if label == "first pass":
                    kinds = [c["change"] for c in report["changes"]]
                    reads = sum(report["api_calls"].values()) - sum(m.values())
                    puts = len({c["resource_id"] for c in report["changes"] if c["change"] == "put-scheduled-actions"})
                    tagged_groups = len({c["resource_id"] for c in report["changes"]
                                         if c["resource_type"] == "auto-scaling-group"
                                         and c["change"] in ("save-capacity", "set-tags")})
                    resized = sum(1 for k in kinds if k == "set-capacity")
                    stops = sum(1 for k in kinds if k in ("stop-instance", "hibernate-instance"))
                    instance_tags = instance_tag_calls(report)
                    floor = reads + puts + resized + math.ceil(stops / BATCH) + math.ceil(tagged_groups / 50) + instance_tags
                    made = sum(report["api_calls"].values())
                    print(f"\n{label}: {made} calls, floor {floor} ({reads} reads + {puts} puts + {resized} resizes + "
                          f"ceil({stops}/{BATCH}) stops + ceil({tagged_groups}/50) group tag calls + "
                          f"{instance_tags} instance tag calls, one per distinct tag set and 1,000 instances): {made / floor:.3f}x")
                    if made > 1.1 * floor:
                        misses.append(f"{label}: {made} calls, over 1.1x the floor of {floor}")
                if label.startswith("steady"):
                    print(f"\n{label}: mutating calls: {m or 'none'}")
                    if m:
                        misses.append(f"{label}: mutating calls {m}")
                if label.startswith("20:00"):
                    stopped = sum(1 for c in report["changes"] if c["change"] in ("stop-instance", "hibernate-instance"))
                    allowed = math.ceil(stopped / BATCH) + instance_tag_calls(report)
                    made = sum(m.values())
                    print(f"\n{label}: {stopped} stopped with {made} mutating calls (at most {allowed}: "
                          f"ceil({stopped}/{BATCH}) StopInstances + one CreateTags per tag set and 1,000 instances)")
                    if made > allowed:
                        misses.append(f"{label}: {made} mutating calls for {stopped} stops, over {allowed}")
            return rows, misses
    finally:
        proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--instances", type=int, default=0)
    ap.add_argument("--per-reservation", type=int, default=1, help="instances per RunInstances call")
    ap.add_argument("--matrix", action="store_true", help="500/2,000/5,000 instances x 50/500 groups")
    ap.add_argument("--mixed", action="store_true", help="five schedules and five group sizes instead of one of each")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--moto", required=True)
    a = ap.parse_args()
    sizes = [(g, i) for i in (500, 2000, 5000) for g in (50, 500)] if a.matrix else [(a.groups, a.instances)]
    summary, misses = [], []
    for groups, instances in sizes:
        print(f"\n### {instances} instances + {groups} groups\n", flush=True)
        rows, m = one(a, groups, instances)
        misses += m
        summary.append((groups, instances, rows))
    if len(summary) > 1:
        print("\n### Summary: client CPU per resource (µs) and peak RSS (MiB), by pass\n")
        print("| instances | groups | resources | first | steady | 20:00 transition | steady | peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for groups, instances, rows in summary:
            n = max(1, rows[0][1]["summary"]["resources"])
            per = " | ".join(f"{cpu / n * 1e6:.0f}" for _, _, _, cpu, _ in rows)
            print(f"| {instances} | {groups} | {n} | {per} | {max(r[4] for r in rows):.1f} |")
    print("\ncall targets (first pass: within 1.1x the floor; steady: no mutating call; transition: within its batches): " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
    sys.exit(1 if misses else 0)


if __name__ == "__main__":
    main()
