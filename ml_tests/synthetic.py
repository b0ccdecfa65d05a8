"""Synthetic leads with a known generating model, shared by the engine tests."""
import numpy as np
import pandas as pd

SOURCES = {"referral": 1.5, "web": 0.0, "cold_call": -1.5}
TAGS = {"vip": 1.0, "price_sensitive": -1.0, "services": 0.0}


def make_leads(n=2000, seed=0):
    rng = np.random.RandomState(seed)
    source = rng.choice(list(SOURCES), n, p=[0.2, 0.5, 0.3])
    revenue = np.round(rng.lognormal(9, 1, n), -1)
    revenue[rng.rand(n) < 0.05] = np.nan
    tags = [tuple(t for t in TAGS if rng.rand() < 0.3) for _ in range(n)]
    email_ok = rng.rand(n) < 0.8
    logit = (-0.5 + np.array([SOURCES[s] for s in source])
             + np.array([sum(TAGS[t] for t in ts) for ts in tags])
             + 0.8 * email_ok - 0.4
             - 0.3 * np.nan_to_num((np.log(revenue) - 9) ** 2, nan=1.0))
    y = (rng.rand(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"source": source, "revenue": revenue, "tags": tags, "email_ok": email_ok,
                      "noise": rng.choice(["a", "b", "c"], n)})
    return X, y, 1 / (1 + np.exp(-logit))


COLUMNS = dict(categorical=["source", "noise"], multilabel=["tags"], numeric=["revenue"], boolean=["email_ok"])
