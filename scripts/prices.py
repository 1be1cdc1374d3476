#!/usr/bin/env python3
"""Refreshes src/savings/prices.csv, the bundled On-Demand price table of `report savings`,
from the AWS Price List Query API (pricing:GetProducts; needs AWS credentials and boto3).

    python3 scripts/prices.py > src/savings/prices.csv

It keeps the table's regions and instance types and asks for each: Linux, shared tenancy,
no pre-installed software, no license, capacity status Used (the filters of AWS's "Price List Query
API" examples for EC2). A type AWS does not price in a region is left out. Review the diff
before committing, and change the date line.
"""
import csv
import datetime
import json
import pathlib
import sys

import boto3

TABLE = pathlib.Path(__file__).resolve().parent.parent / "src" / "savings" / "prices.csv"


def price(client, region, itype):
    filters = {
        "regionCode": region,
        "instanceType": itype,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    out = client.get_products(
        ServiceCode="AmazonEC2",
        Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        MaxResults=10,
    )
    if len(out["PriceList"]) > 1:
        print(f"{len(out['PriceList'])} products match {itype} in {region}; taking the first", file=sys.stderr)
    for item in out["PriceList"]:
        product = json.loads(item)
        for term in product["terms"].get("OnDemand", {}).values():
            for dim in term["priceDimensions"].values():
                if dim["unit"] == "Hrs":
                    return float(dim["pricePerUnit"]["USD"])
    return None


def main():
    rows = [r for r in csv.reader(l for l in TABLE.read_text().splitlines() if not l.startswith("#"))][1:]
    # The Price List Query API answers in us-east-1 (and a few other regions).
    client = boto3.client("pricing", region_name="us-east-1")
    today = datetime.date.today().isoformat()
    print("# Amazon EC2 On-Demand prices, USD per hour, Linux, shared tenancy, no pre-installed software,")
    print("# as published on the Amazon EC2 On-Demand Pricing page (aws.amazon.com/ec2/pricing/on-demand/)")
    print(f"# and the AWS Price List API; table dated {today}. Refresh: scripts/prices.py (README, Savings).")
    print("region,type,usd_per_hour")
    for region, itype, _ in rows:
        p = price(client, region, itype)
        if p is None:
            print(f"no price for {itype} in {region}; left out", file=sys.stderr)
        else:
            print(f"{region},{itype},{p:g}")


if __name__ == "__main__":
    main()
