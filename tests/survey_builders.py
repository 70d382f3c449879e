"""The small surveys the survey-stage tests build on, in one place (tests import them by name;
``conftest.py`` adds the surveys read from files or drawn by the synthesiser as fixtures).

- ``canonical_frame``: a random survey in the canonical schema with "don't know" answers;
- ``network``: a small edge-list survey worked out by hand (every expected number of the
  edge-list tests is counted from its link table);
- ``cis_frame``: a CIS-style file (co<partner type><location> columns, product and process in
  parts) for the ``cis`` mapping;
- ``stata_ready`` and ``LABELS``: a canonical frame as Stata and SPSS files hold it (region codes
  with value labels);
- ``logit_firms``: the estimation core's firms (two normal regressors, an industry, one of 40
  regions, a log-normal size) with a logit outcome ``y`` from a given index.
"""

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from buzzpipe.survey.schema import PARTNER_TYPES, SCALES, collab_column

NA = None

REGIONS = ["Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand"]


def canonical_frame(n: int = 60, seed: int = 0, *, unknown_rate: float = 0.1) -> pd.DataFrame:
    """A random survey in the canonical schema, with some don't-know answers."""
    rng = np.random.default_rng(seed)
    product = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "firm_id": np.arange(100, 100 + n),
            "region": rng.choice(REGIONS, n),
            "industry": rng.integers(1, 5, n),
            "employees": rng.integers(11, 500, n).astype(float),
            "foreign_share": np.round(rng.random(n), 2),
            "product": product,
            "process": rng.integers(0, 2, n),
            "new_to_market": product * rng.integers(0, 2, n),
        }
    )
    for scale in SCALES:
        for partner_type in PARTNER_TYPES:
            values = rng.integers(0, 2, n).astype(float)
            values[rng.random(n) < unknown_rate] = np.nan
            frame[collab_column(scale, partner_type)] = values
    return frame


def network():
    firms = pd.DataFrame(
        {
            "firm_id": [1, 2, 3, 4],
            "region": ["Oslo", "Oslo", "Bergen", "Oslo"],
            "industry": [1, 1, 2, 2],
            "employees": [20.0, 30, 40, 50],
            "foreign_share": [0.0, 0.5, 0, 0],
            "product": [1, 0, 1, 0],
        }
    )
    links = pd.DataFrame(
        [
            # firm, partner, type, partner region, partner country
            (1, "2", "suppliers", "Oslo", "NO"),  # regional, a surveyed firm with a pipeline
            (1, "3", "customers", NA, NA),  # surveyed firm 3 is in Bergen, Norway: national
            (1, "ext-a", "universities", "Berlin", "DE"),  # international
            (1, "ext-b", "consultants", NA, "NO"),  # Norway, region unknown: regional or national
            (1, "4", "competitors", "Oslo", "NO"),  # regional, surveyed, no pipeline
            (1, "ext-d", "suppliers", "Oslo", "NO"),  # regional, not surveyed: status unknown
            (1, "2", "group", "Oslo", "NO"),  # regional group contact: left out of exposure
            (1, NA, "suppliers", "Oslo", "NO"),  # regional, no id: status unknown
            (2, "ext-c", "suppliers", "Uppsala", "SE"),  # international
            (3, "1", "customers", NA, NA),  # surveyed firm 1 is in Oslo: national for firm 3
            (3, "ext-e", "research_institutes", NA, NA),  # nothing known: any scale
        ],
        columns=["firm_id", "partner_id", "partner_type", "partner_region", "partner_country"],
    )
    return firms, links


def cis_frame(n: int, seed: int) -> pd.DataFrame:
    """A CIS-style file: co<partner type><location>, product and process split into parts."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "nuts": rng.choice([11, 12, 13], n),
            "nace": rng.choice([10, 25, 62, 72], n),
            "emp": rng.integers(10, 900, n),
            "foreign_share": rng.choice([0.0, 0.0, 0.3, 1.0], n),
            "weight": rng.uniform(1, 20, n).round(3),
            "inpdgd": rng.integers(0, 2, n),
            "inpdsv": rng.integers(0, 2, n),
            "inpspd": rng.integers(0, 2, n),
            "inpslg": rng.integers(0, 2, n),
            "inpssu": rng.integers(0, 2, n),
        }
    )
    product = (frame["inpdgd"] == 1) | (frame["inpdsv"] == 1)
    frame["newmkt"] = (product & (rng.random(n) < 0.4)).astype(int)
    for partner_type in range(1, 8):
        for location in range(1, 6):
            frame[f"co{partner_type}{location}"] = (rng.random(n) < 0.15).astype(int)
    return frame


def stata_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Stata and SPSS files hold numbers: region as codes 1..5 with value labels."""
    result = frame.copy()
    result["region"] = frame["region"].map(
        {"Bergen": 1, "Kristiansand": 2, "Oslo": 3, "Stavanger": 4, "Trondheim": 5}
    )
    return result


LABELS = {"region": {1: "Bergen", 2: "Kristiansand", 3: "Oslo", 4: "Stavanger", 5: "Trondheim"}}


def logit_firms(
    seed: int,
    n: int,
    index: Callable[[pd.DataFrame], pd.Series],
    *,
    industries: Sequence[str] = ("ict", "manufacturing", "services"),
    weight: bool = False,
) -> pd.DataFrame:
    """Firms for the estimation core's tests: ``x1``, ``x2`` (standard normal), ``industry``,
    ``region`` (one of 40 codes), ``employees`` (log-normal), with ``weight`` a sampling weight
    in [0.5, 3) and ``y`` drawn from a logit of ``index(data)``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(list(industries), n),
            "region": rng.integers(0, 40, n),
            "employees": np.exp(rng.normal(3, 1, n)),
        }
    )
    if weight:
        data["weight"] = rng.uniform(0.5, 3, n)
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-index(data)))).astype(float)
    return data
