#!/usr/bin/env python3
"""Benchmarks offhours passes against a local moto server.

Seeds N tagged Auto Scaling groups in one account and region, then times a transition
pass (everything to register) and a steady-state pass (nothing to do) of the release
binary. Reports wall time, client CPU (user+sys, from wait4), peak RSS and the API
calls by operation, as a Markdown table. Run through scripts/bench.
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
NOW = "2026-12-16T10:00:00+09:00"


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


def seed(endpoint, groups):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
    ec2, asg = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)
    ec2.create_launch_template(LaunchTemplateName="bench-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    for i in range(groups):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"dev-{i:05d}",
            LaunchTemplate={"LaunchTemplateName": "bench-lt"},
            MinSize=1, MaxSize=2, DesiredCapacity=1,
            AvailabilityZones=["us-east-1a"],
            Tags=[{"Key": "Schedule", "Value": "office-hours", "PropagateAtLaunch": False}],
        )


def measured(binary, config, endpoint, command):
    """Runs the binary and reads its own rusage with wait4."""
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true", RUST_LOG="offhours=warn")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([binary, "--config", config, command, "--output", "json", "--now", NOW],
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
    ap.add_argument("--binary", required=True)
    ap.add_argument("--moto", required=True)
    a = ap.parse_args()
    proc, endpoint = start_moto(a.moto)
    try:
        t = time.monotonic()
        seed(endpoint, a.groups)
        print(f"seeded {a.groups} groups in {time.monotonic() - t:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "offhours.yaml")
            with open(config, "w") as f:
                f.write(CONFIG)
            rows = []
            for label in ["transition", "steady state", "steady state"]:
                report, wall, ru = measured(a.binary, config, endpoint, "reconcile")
                cpu = ru.ru_utime + ru.ru_stime
                rows.append((label, report, wall, cpu, ru.ru_maxrss / 1024))
            print(f"| pass | groups | changes | wall (s) | client CPU (s) | CPU per group (µs) | peak RSS (MiB) | API calls |")
            print(f"|---|---|---|---|---|---|---|---|")
            for label, report, wall, cpu, rss in rows:
                calls = ", ".join(f"{k} {v}" for k, v in sorted(report["api_calls"].items()))
                print(f"| {label} | {report['summary']['resources']} | {report['summary']['changes']} | {wall:.2f} | {cpu:.3f} | {cpu / max(1, a.groups) * 1e6:.0f} | {rss:.1f} | {calls} |")
            steady = rows[-1][1]
            mutating = [k for k in steady["api_calls"] if not k.split(".")[-1].startswith(("Describe", "List", "Get"))]
            print(f"\nsteady-state mutating calls: {mutating or 'none'}")
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
