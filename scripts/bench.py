#!/usr/bin/env python3
"""Benchmarks offhours passes against a local moto server.

Seeds tagged Auto Scaling groups and plain instances in one account and region, then
times passes of the release binary at simulated moments (--now): the first pass
(registers every group's actions, adopts every instance), a steady-state pass, the
20:00 transition pass (stops every instance), and a steady-state pass after it.
Reports wall time, client CPU (user+sys, from wait4), peak RSS and the API calls by
operation, as a Markdown table. Run through scripts/bench.
"""
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
"""
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


def seed(endpoint, groups, instances):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
    ec2, asg = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)
    left = instances
    while left > 0:
        n = min(left, 500)
        ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=n, MaxCount=n,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office-hours"}]}])
        left -= n
    ec2.create_launch_template(LaunchTemplateName="bench-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    for i in range(groups):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"dev-{i:05d}",
            LaunchTemplate={"LaunchTemplateName": "bench-lt"},
            MinSize=1, MaxSize=2, DesiredCapacity=1,
            AvailabilityZones=["us-east-1a"],
            Tags=[{"Key": "Schedule", "Value": "office-hours", "PropagateAtLaunch": False}],
        )


def measured(binary, config, endpoint, command, now):
    """Runs the binary and reads its own rusage with wait4."""
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true", RUST_LOG="offhours=warn")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([binary, "--config", config, command, "--output", "json", "--now", now],
                                stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{command} failed: {err.read().decode()[-2000:]}")
        return json.loads(out.read()), wall, ru


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--instances", type=int, default=0)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--moto", required=True)
    a = ap.parse_args()
    proc, endpoint = start_moto(a.moto)
    try:
        t = time.monotonic()
        seed(endpoint, a.groups, a.instances)
        print(f"seeded {a.groups} groups and {a.instances} instances in {time.monotonic() - t:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "offhours.yaml")
            with open(config, "w") as f:
                f.write(CONFIG)
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
            for label, report, *_ in rows:
                if label.startswith("steady"):
                    mutating = [k for k in report["api_calls"] if not k.split(".")[-1].startswith(("Describe", "List", "Get"))]
                    print(f"\n{label}: mutating calls: {mutating or 'none'}")
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
