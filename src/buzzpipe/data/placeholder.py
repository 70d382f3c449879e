"""Generate the small placeholder survey shipped with buzzpipe (``placeholder_survey.csv``).

A stand-in until the calibrated synthetic survey (issue 3) lands: 400 firms in the five
Norwegian city-regions, written in a Norwegian-style questionnaire layout (codes 1 = yes, 2 = no,
9 = don't know) and read through ``survey/mappings/norway.toml``. Only two published facts guide
it, loosely: about 80% of firms have a partner in their own region and about 45% one abroad, and
one more kind of international partner multiplies the odds of product innovation by about 1.26.
Everything else is assumed for illustration. It is NOT calibrated: do not read findings from it.

Regenerate (the same bytes every time, fixed seed)::

    python -m buzzpipe.data.placeholder
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2010
N_FIRMS = 400
FILE = Path(__file__).with_name("placeholder_survey.csv")

# codes of the layout (the mapping file norway.toml translates them)
REGION_CODES = {1: "Oslo", 2: "Bergen", 3: "Stavanger", 4: "Trondheim", 5: "Kristiansand"}
REGION_PROBABILITIES = (0.42, 0.2, 0.16, 0.14, 0.08)  # assumed: roughly by city size
INDUSTRY_CODES = {
    1: "manufacturing",
    2: "construction",
    3: "retail",
    4: "accommodation_food",
    5: "transport",
    6: "business_services",
}
INDUSTRY_PROBABILITIES = (0.2, 0.15, 0.2, 0.08, 0.1, 0.27)  # assumed
SCALE_CODES = {"regional": "region", "national": "norge", "international": "utland"}
PARTNER_CODES = {
    "suppliers": "lev",
    "customers": "kunde",
    "competitors": "konk",
    "consultants": "konsulent",
    "universities": "univ",
    "research_institutes": "forsk",
    "group": "konsern",
}
# assumed probability of a partner type at a scale for a firm of average openness
PARTNER_RATES = {
    "regional": (0.5, 0.5, 0.25, 0.3, 0.15, 0.12, 0.15),
    "national": (0.45, 0.4, 0.15, 0.2, 0.15, 0.12, 0.15),
    "international": (0.2, 0.16, 0.05, 0.05, 0.04, 0.04, 0.1),
}
YES, NO, DONT_KNOW = 1, 2, 9


def generate(n_firms: int = N_FIRMS, seed: int = SEED) -> pd.DataFrame:
    """A survey in the Norwegian-style layout (user codes, not yet canonical)."""
    rng = np.random.default_rng(seed)
    firms = pd.DataFrame({"lopenr": np.arange(1, n_firms + 1)})
    firms["byregion"] = rng.choice(list(REGION_CODES), size=n_firms, p=REGION_PROBABILITIES)
    firms["bransje"] = rng.choice(list(INDUSTRY_CODES), size=n_firms, p=INDUSTRY_PROBABILITIES)
    firms["ansatte"] = np.round(10 + np.exp(rng.normal(3.0, 1.0, size=n_firms))).astype(int)
    foreign = rng.random(n_firms) < 0.2
    firms["utenlandsk_eierandel"] = np.where(foreign, np.round(rng.uniform(0.1, 1, n_firms), 2), 0)
    openness = rng.normal(0, 1, size=n_firms)
    firms["apenhet"] = np.clip(np.round(3 + openness), 1, 5).astype(int)
    international_breadth = np.zeros(n_firms)
    for scale, rates in PARTNER_RATES.items():
        for partner_type, rate in zip(PARTNER_CODES, rates, strict=True):
            logit = np.log(rate / (1 - rate)) + 0.8 * openness
            said_yes = rng.random(n_firms) < 1 / (1 + np.exp(-logit))
            if scale == "international" and partner_type != "group":
                international_breadth += said_yes
            answer = np.where(said_yes, YES, NO)
            answer[rng.random(n_firms) < 0.02] = DONT_KNOW
            column = f"samarb_{PARTNER_CODES[partner_type]}_{SCALE_CODES[scale]}"
            firms[column] = answer
    log_size = np.log(firms["ansatte"].to_numpy())
    product_logit = -0.35 + 0.23 * international_breadth + 0.15 * (log_size - 3) + 0.2 * openness
    product = rng.random(n_firms) < 1 / (1 + np.exp(-product_logit))
    process = rng.random(n_firms) < 1 / (1 + np.exp(-(-1.0 + 0.15 * international_breadth)))
    market_logit = -0.5 + 0.3 * international_breadth
    new_to_market = product & (rng.random(n_firms) < 1 / (1 + np.exp(-market_logit)))
    firms["produkt"] = np.where(product, YES, NO)
    firms["prosess"] = np.where(process, YES, NO)
    firms["nytt_marked"] = np.where(new_to_market, YES, NO)
    unknown_market = rng.random(n_firms) < 0.02
    firms.loc[unknown_market & product, "nytt_marked"] = DONT_KNOW
    return firms


def main() -> None:
    """Write the shipped file (atomically)."""
    from buzzpipe.atomic_write import write_text

    write_text(FILE, generate().to_csv(index=False, lineterminator="\n"))
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
