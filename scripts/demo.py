#!/usr/bin/env python3
"""The offhours demo: a small organization in a local moto server, walked through a
simulated fortnight with --now. Run through scripts/demo; needs no AWS account.
"""
import json
import os
import socket
import subprocess
import sys
import shutil
import tempfile
import time

import boto3

REGIONS = ["ap-northeast-2", "us-east-1"]
TEAMS = {0: "platform", 1: "payments", 2: "search"}


def say(text=""):
    print(text, flush=True)


def banner(text):
    say()
    say("=" * 78)
    say(text)
    say("=" * 78)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if sys.argv[1] == "--seed":
        # Seeds the demo's organization into a running moto and writes its config: for the
        # status page's browser test (tests/status_browser.rs).
        endpoint, d = sys.argv[2], sys.argv[3]
        accounts, dev_ou = seed(endpoint)
        print(json.dumps({"accounts": accounts, "config": write_config(d, dev_ou)}))
        return
    global BIN, MOTO
    BIN, MOTO = sys.argv[1], sys.argv[2]
    port = free_port()
    moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        run(f"http://127.0.0.1:{port}")
    finally:
        moto.terminate()
        moto.wait()
        say("\nmoto stopped; nothing is left running.")


def client(endpoint, service, region, creds=None):
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="demo", aws_secret_access_key="demo")
    if creds:
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    return boto3.client(service, **kw)


def seed(endpoint):
    """The demo's organization: 3 accounts x 2 regions of servers, groups and databases."""
    org = client(endpoint, "organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    dev_ou = org.create_organizational_unit(ParentId=root, Name="dev")["OrganizationalUnit"]["Id"]
    accounts = ["123456789012"]
    for name in ["team-payments", "team-search"]:
        a = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=a, SourceParentId=root, DestinationParentId=dev_ou)
        accounts.append(a)
    sts = client(endpoint, "sts", "us-east-1")
    seeded = []
    for i, acct in enumerate(accounts):
        creds = None
        if acct != "123456789012":
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/OrganizationAccountAccessRole",
                                    RoleSessionName="demo")["Credentials"]
        for region in REGIONS:
            ec2 = client(endpoint, "ec2", region, creds)
            asg = client(endpoint, "autoscaling", region, creds)
            tags = lambda *kv: [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in kv]}]
            ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=2, MaxCount=2,
                              TagSpecifications=tags(("Schedule", "office-hours"), ("Name", "dev-server"),
                                                     ("Team", TEAMS[i])))
            ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                              TagSpecifications=tags(("Name", "forgot-the-tag")))
            ec2.create_launch_template(LaunchTemplateName="demo", LaunchTemplateData={"ImageId": "ami-12c6146b"})
            asg.create_auto_scaling_group(
                AutoScalingGroupName="dev-web", LaunchTemplate={"LaunchTemplateName": "demo"},
                MinSize=1, MaxSize=4, DesiredCapacity=2, AvailabilityZones=[f"{region}a"],
                Tags=[{"Key": "Schedule", "Value": "office-hours", "PropagateAtLaunch": False},
                      {"Key": "Team", "Value": TEAMS[i], "PropagateAtLaunch": False}])
            if i == 2 and region == REGIONS[1]:
                asg.create_auto_scaling_group(
                    AutoScalingGroupName="batch-untagged", LaunchTemplate={"LaunchTemplateName": "demo"},
                    MinSize=1, MaxSize=1, DesiredCapacity=1, AvailabilityZones=[f"{region}a"],
                    Tags=[{"Key": "Team", "Value": "search", "PropagateAtLaunch": False}])
            if region == REGIONS[0]:
                # A development database: RDS stops and starts with the servers.
                client(endpoint, "rds", region, creds).create_db_instance(
                    DBInstanceIdentifier="dev-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                    AllocatedStorage=20, MasterUsername="demo", MasterUserPassword="demo-password",
                    Tags=[{"Key": "Schedule", "Value": "office-hours"}])
            seeded.append((acct, region))
        if i == 1:
            ec2 = client(endpoint, "ec2", REGIONS[0], creds)
            ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                              TagSpecifications=tags(("Schedule", "ofice-hours"), ("Name", "typo-in-tag")))
            late = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                     TagSpecifications=tags(("Schedule", "office-hours"), ("Name", "release-night")))
            late_id = late["Instances"][0]["InstanceId"]
            ec2.create_tags(Resources=[late_id], Tags=[{"Key": "offhours:override",
                                                        "Value": "running until 2026-12-18T23:00+09:00"}])
    return accounts, dev_ou


def write_config(d, dev_ou):
    """The shipped config, pointed at the demo's organization; returns its path in `d`."""
    cfg = os.path.join(d, "offhours.yaml")
    shipped = open(os.path.join(os.path.dirname(__file__), "..", "config", "offhours.yaml")).read()
    shipped = shipped.replace("mode: self", "mode: organization").replace(
        "regions: [ap-northeast-2]", "regions: [ap-northeast-2, us-east-1]").replace(
        "targets: []", f"targets: ['{dev_ou}']")
    # The calendar files the shipped config names (company days, release nights).
    config_dir = os.path.join(os.path.dirname(__file__), "..", "config")
    for name in os.listdir(config_dir):
        if name.endswith(".ics"):
            shutil.copy(os.path.join(config_dir, name), d)
    # moto stamps launches with the real clock, which may lie after the simulated fortnight:
    # no launch grace period, or servers "launched in the future" would never stop.
    shipped += "\ninstances:\n  grace_minutes: 0\ndatabases:\n  grace_minutes: 0\n"
    open(cfg, "w").write(shipped)
    return cfg


def run(endpoint):
    banner("1. A small organization in moto: 3 accounts x 2 regions")
    accounts, dev_ou = seed(endpoint)
    say(f"accounts {', '.join(accounts)}; regions {', '.join(REGIONS)}")
    say("each scope: 2 dev servers tagged office-hours, 1 untagged server, 1 group dev-web (2/4/2) tagged office-hours")
    say(f"each account in {REGIONS[0]}: a PostgreSQL database dev-db tagged office-hours")
    say(f"account {accounts[2]} in {REGIONS[1]}: an untagged group batch-untagged")
    say(f"account {accounts[1]}: a server tagged `ofice-hours` (typo), and one with an override: running until 23:00")

    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d, dev_ou)
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="demo",
                   AWS_SECRET_ACCESS_KEY="demo", AWS_EC2_METADATA_DISABLED="true", RUST_LOG="offhours=warn",
                   # the key that seals saved sizes; a real deployment keeps it in a secret
                   OFFHOURS_STATE_KEY=os.environ.get("OFFHOURS_STATE_KEY", "demo-state-key-not-secret"))

        def offhours(*args):
            r = subprocess.run([BIN, "--config", cfg, *args], env=env, capture_output=True, text=True)
            if r.returncode == 2 and args[:1] != ("policy",):
                # Invalid input (the demo's config no longer loads): stop here, loudly.
                sys.exit(f"offhours {' '.join(args)} refused its input:\n{r.stderr}")
            return r.stdout + (r.stderr if r.returncode not in (0, 3) else "")

        def step(title, now):
            banner(f"{title}  (--now {now})")
            out = offhours("reconcile", "--now", now, "--output", "json")
            try:
                r = json.loads(out)
            except ValueError:
                say(out)
                return
            s = r["summary"]
            say(f"{s['scopes']} scopes, {s['resources']} resources: {s['applied']} changes applied, "
                f"{s['failed']} failed, {s['errors']} bad tags, {s['violations']} untagged or invalid")
            counts = {}
            for c in r["changes"]:
                counts[(c["resource_type"], c["change"])] = counts.get((c["resource_type"], c["change"]), 0) + 1
            for (rt, ch), n in sorted(counts.items()):
                say(f"  {n:3d} x {rt:<19} {ch}")
            for e in r["errors"]:
                say(f"  bad tag: {e['resource_id']} ({e['tag_value']}): {e['error'][:90]}")
            for n in r["notes"]:
                if "group" not in n["note"]:
                    say(f"  note: {n['resource_id']}: {n['note'][:100]}")
            mutating = [k for k in r["api_calls"] if not k.split(".")[-1].startswith(("Describe", "List", "Get"))]
            say(f"  mutating API calls: {', '.join(mutating) if mutating else 'none'}")

        banner("2. The schedule: office-hours (Mon-Fri 08:00-20:00 Asia/Seoul, off on Korean holidays)")
        say(offhours("explain", "office-hours", "--from", "2026-12-18T19:00:00+09:00", "--count", "6"))

        step("3. Friday 19:59: first pass registers scheduled actions, adopts servers", "2026-12-18T19:59:00+09:00")
        step("4. Friday 20:00: dev servers stop (group actions fire in AWS)", "2026-12-18T20:00:30+09:00")
        step("5. Friday 20:05: steady state, nothing to do", "2026-12-18T20:05:00+09:00")
        step("6. Friday 23:00: the override ends, that server stops", "2026-12-18T23:00:30+09:00")
        step("7. Saturday noon: the weekend, nothing starts", "2026-12-19T12:00:00+09:00")
        step("8. Monday 08:00: everything starts", "2026-12-21T08:00:30+09:00")
        step("9. Thursday 20:00: stop before Christmas", "2026-12-24T20:00:30+09:00")
        step("10. Friday 25 December 08:00: a Korean public holiday, nothing starts", "2026-12-25T08:00:30+09:00")
        step("11. Monday 28 December 08:00: back to work", "2026-12-28T08:00:30+09:00")

        banner("12. The group's registered actions (moto never fires them; AWS does)")
        asg = client(endpoint, "autoscaling", REGIONS[0])
        for a in asg.describe_scheduled_actions(AutoScalingGroupName="dev-web")["ScheduledUpdateGroupActions"]:
            when = a.get("Recurrence") or a.get("StartTime")
            say(f"  {a['ScheduledActionName']:<48} {str(when):<16} {a.get('TimeZone', 'UTC'):<11} "
                f"min={a.get('MinSize')} max={a.get('MaxSize')} desired={a.get('DesiredCapacity')}"
                + (f" until {a['EndTime']}" if a.get("EndTime") else ""))

        banner("13. The org policy: the SCP offhours keeps attached to the dev OU")
        say(offhours("policy", "render", "--kind", "scp"))
        banner("14. An untagged RunInstances in a dev account, as CloudTrail logs it")
        event = os.path.join(d, "event.json")
        json.dump({"userIdentity": {"type": "AssumedRole",
                                    "arn": f"arn:aws:sts::{accounts[1]}:assumed-role/Developer/alice",
                                    "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{accounts[1]}:role/Developer"}}},
                   "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": REGIONS[0],
                   "recipientAccountId": accounts[1],
                   "requestParameters": {"tagSpecificationSet": {"items": [{"resourceType": "instance",
                                                                            "tags": [{"key": "Name", "value": "x"}]}]}}},
                  open(event, "w"))
        say(offhours("policy", "check", "--event", event))


if __name__ == "__main__":
    main()
