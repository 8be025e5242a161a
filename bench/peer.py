#!/usr/bin/env python3
"""The peer: the script a data engineer would write instead of unionsnap.

wechatpy (pinned in the Makefile's BENCH_DEPS) lists every Official Account's
followers (`user.iter_followers`), reads their profiles 100 at a time on 8
threads (`user.get_batch`), and pandas dedupes the people on UnionID and
writes Parquet: the followers, and the audience (members, resolved, people)
per account and over all of them. It knows nothing of yesterday, so every
day costs the same calls — as such scripts do.

    peer.py JOB_TOML SECRETS_ENV BASE_URL OUT_DIR

reads the accounts (appid and the secret's environment variable) from the
job file the simulator writes (`simulate --write-job`) and prints one JSON
line: {"seconds": ..., "members": ..., "people": ...}.
"""
import json
import os
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from wechatpy import WeChatClient
from wechatpy.session.memorystorage import MemoryStorage

THREADS = 8
BATCH = 100


def secrets(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                key, value = line[len("export "):].split("=", 1)
                values[key] = value.strip("'\"")
    return values


def accounts(job_path, secrets_path):
    with open(job_path, "rb") as f:
        job = tomllib.load(f)
    env = secrets(secrets_path)
    for account in job["accounts"]:
        if account.get("kind") != "official_account" or "appid" not in account:
            continue
        yield account["id"], account["appid"], env[account["secret"]["env"]]


class Client(WeChatClient):
    """wechatpy's client with its token URL on the simulator too (wechatpy
    hard-codes https://api.weixin.qq.com for the token)."""

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid,
                    "secret": self.secret})


def followers(base_url, account_id, appid, secret):
    client = Client(appid, secret, session=MemoryStorage())
    client.API_BASE_URL = base_url + "/cgi-bin/"
    client.fetch_access_token()
    openids = list(client.user.iter_followers())
    batches = [openids[i:i + BATCH] for i in range(0, len(openids), BATCH)]
    with ThreadPoolExecutor(THREADS) as pool:
        profiles = [user for batch in pool.map(client.user.get_batch, batches) for user in batch]
    frame = pd.DataFrame(
        [(account_id, p["openid"], p.get("unionid") or None, p.get("subscribe_time"))
         for p in profiles if p.get("subscribe") == 1],
        columns=["account_id", "openid", "unionid", "subscribe_time"])
    return frame


def main():
    job, secrets_env, base_url, out = sys.argv[1:5]
    start = time.monotonic()
    frames = [followers(base_url, *account) for account in accounts(job, secrets_env)]
    members = pd.concat(frames, ignore_index=True)
    os.makedirs(out, exist_ok=True)
    members.to_parquet(os.path.join(out, "followers.parquet"), index=False)
    # People: one per UnionID; a member without one is a person of their own.
    resolved = members.dropna(subset=["unionid"])
    people = resolved["unionid"].nunique() + int(members["unionid"].isna().sum())
    per_account = members.groupby("account_id").agg(
        members=("openid", "nunique"), resolved=("unionid", "count")).reset_index()
    per_account.loc[len(per_account)] = ["*", len(members), len(resolved)]
    per_account["people"] = [None] * (len(per_account) - 1) + [people]
    per_account.to_parquet(os.path.join(out, "audience.parquet"), index=False)
    print(json.dumps({"seconds": time.monotonic() - start, "members": len(members),
                      "people": people}))


if __name__ == "__main__":
    main()
