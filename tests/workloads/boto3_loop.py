"""A long-running boto3 job: one client for its whole life, calling STS until
it has seen WANT different access keys (credfwd refreshes) or DEADLINE passes.
Prints one JSON line per new key; exits 0 only if every call succeeded and it
saw enough keys."""
import json
import sys
import time

import boto3

started = time.time()
want, deadline = int(sys.argv[1]), started + float(sys.argv[2])
session = boto3.Session()
client = session.client("sts")
credentials = session.get_credentials()  # the object the client signs with
seen = []
calls = 0
while time.time() < deadline:
    arn = client.get_caller_identity()["Arn"]
    calls += 1
    key = credentials.get_frozen_credentials().access_key
    if not seen or seen[-1] != key:
        seen.append(key)
        print(json.dumps({"key": key, "arn": arn, "calls": calls, "method": credentials.method, "after": round(time.time() - started, 1)}), flush=True)
    if len(seen) >= want:
        sys.exit(0)
    time.sleep(0.2)
sys.exit(1)
