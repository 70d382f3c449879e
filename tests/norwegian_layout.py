"""A survey file in a Norwegian-style questionnaire layout, for the tests of mappings and readers.

400 firms in the five Norwegian city-regions with the layout's own column names and codes
(1 = yes, 2 = no, 9 = don't know), read through the shipped mapping ``norway.toml``. Loosely
shaped after two published facts (about 80% of firms with a partner in their own region, about 45%
with one abroad); everything else is assumed. It is not calibrated: the calibrated surveys are
``bp.synthesize``'s. (It was shipped in the package as a placeholder survey until the calibrated
synthetic survey landed; it lives on here as test data, the same draws from the same seed.)
"""

import numpy as np
import pandas as pd

SEED = 2010
N_FIRMS = 400


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


def write_csv(path, n_firms: int = N_FIRMS, seed: int = SEED):
    """Write the layout as CSV (the same bytes for the same size and seed); returns the path."""
    path.write_text(generate(n_firms, seed).to_csv(index=False, lineterminator="\n"))
    return path


def write_edge_list(folder):
    """The hand-made network of ``survey_builders.network`` as an edge-list survey in this
    layout: ``bedrifter.csv`` (firms; firm 4's product answer is 9, don't know) and
    ``lenker.csv`` (links; Norwegian partner regions as the firms' region codes, foreign ones
    as names). Returns the two paths."""
    from survey_builders import network

    firms, links = network()
    firms_file, links_file = folder / "bedrifter.csv", folder / "lenker.csv"
    firms.rename(
        columns={
            "firm_id": "lopenr",
            "region": "byregion",
            "industry": "bransje",
            "employees": "ansatte",
            "foreign_share": "utenlandsk_eierandel",
            "product": "produkt",
        }
    ).assign(
        byregion=[1, 1, 2, 1], produkt=[1, 2, 1, 9], prosess=2, nytt_marked=2, apenhet=3
    ).to_csv(firms_file, index=False)
    links.assign(partner_region=links["partner_region"].replace({"Oslo": 1, "Bergen": 2})).rename(
        columns={"firm_id": "lopenr", "partner_id": "partner", "partner_country": "partner_land"}
    ).assign(partnertype=links["partner_type"].map(PARTNER_CODES)).drop(
        columns="partner_type"
    ).to_csv(links_file, index=False)
    return firms_file, links_file
