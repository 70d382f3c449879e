"""Edge-list surveys: validate firm-partner links, classify them into scales, derive exposure.

A link is classified against its firm's own region and country: another country is
``international``; the same country and region is ``regional``; the same country, another region
is ``national``. A survey without the regional scale (CIS-style) calls every own-country link
``national``. Where a partner is itself a surveyed firm, its missing region or country is taken
from the firms file. A link whose scale cannot be told leaves the matching collaboration answers
"don't know" (missing) rather than guessing.
"""

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey.column_types import bad_rows, id_keys, row_error
from buzzpipe.survey.measures import nullable_integers
from buzzpipe.survey.schema import (
    FIRM_ID,
    GROUP_PARTNER_TYPE,
    LINK_COLUMNS,
    LINK_SCALE,
    PIPELINE_EXPOSURE,
    PIPELINE_EXPOSURE_UNKNOWN_SHARE,
    collab_column,
)


def validate_links(
    links: pd.DataFrame,
    firm_keys: pd.Series,
    partner_types: tuple[str, ...],
    *,
    source: str,
    first_row: int = 1,
) -> pd.DataFrame:
    """The canonical link columns, checked: known firms, known partner types."""
    if not isinstance(links, pd.DataFrame):
        raise InputError("links are not a table", file=source, expected="a data frame of links")
    missing = [c for c in LINK_COLUMNS if c not in links.columns]
    if missing:
        raise InputError(
            "missing column",
            file=source,
            column=missing[0],
            expected="link columns " + ", ".join(LINK_COLUMNS),
        )
    result = links.loc[:, list(LINK_COLUMNS)].reset_index(drop=True).copy()
    firm = id_keys(result[FIRM_ID])
    no_firm = firm.isna().to_numpy()
    if no_firm.any():
        raise InputError(
            "link without a firm id",
            file=source,
            column=FIRM_ID,
            rows=bad_rows(no_firm, first_row),
            expected="the id of a surveyed firm",
        )
    unknown_firm = ~firm.isin(set(firm_keys)).to_numpy()
    if unknown_firm.any():
        raise row_error(
            "link to an unknown firm",
            result[FIRM_ID],
            unknown_firm,
            file=source,
            column=FIRM_ID,
            first_row=first_row,
            expected="a firm id present in the firms file",
        )
    types = result["partner_type"].astype("object")
    types = types.where(types.notna(), None).map(lambda v: v.strip() if isinstance(v, str) else v)
    unknown_type = ~types.isin(set(partner_types)).to_numpy()
    if unknown_type.any():
        raise row_error(
            "unknown partner type",
            result["partner_type"],
            unknown_type,
            file=source,
            column="partner_type",
            first_row=first_row,
            expected="one of " + ", ".join(partner_types),
        )
    result["partner_type"] = types.astype("str")
    return result


def classify_links(
    links: pd.DataFrame,
    firms: pd.DataFrame,
    *,
    countries: pd.Series,
    scales: tuple[str, ...],
) -> pd.DataFrame:
    """Per link: its scale (or missing) and which scales it could be when the scale is unknown.

    ``countries`` holds each firm's country as text, aligned with ``firms``. Returns a frame with
    the ``scale`` column and one boolean ``possible_<scale>`` column per scale.
    """
    firm_key = id_keys(firms[FIRM_ID])
    region_of = dict(zip(firm_key, id_keys(firms["region"].astype("object")), strict=True))
    country_of = dict(zip(firm_key, countries, strict=True))
    link_firm = id_keys(links[FIRM_ID])
    partner = id_keys(links["partner_id"])
    own_region = link_firm.map(region_of)
    own_country = link_firm.map(country_of)
    partner_region = id_keys(links["partner_region"])
    partner_country = id_keys(links["partner_country"])
    # a surveyed partner's own file entries fill what the link leaves blank
    partner_region = partner_region.where(partner_region.notna(), partner.map(region_of))
    partner_country = partner_country.where(partner_country.notna(), partner.map(country_of))

    country_known = partner_country.notna().to_numpy()
    region_known = partner_region.notna().to_numpy()
    same_country = country_known & (partner_country == own_country).to_numpy()
    other_country = country_known & ~same_country
    same_region = region_known & (partner_region == own_region).to_numpy()
    has_regional = "regional" in scales

    scale = np.full(len(links), None, dtype=object)
    possible = {s: np.zeros(len(links), dtype=bool) for s in scales}
    if "international" in scales:
        scale[other_country] = "international"
    if has_regional:
        scale[same_country & same_region] = "regional"
        if "national" in scales:
            scale[same_country & region_known & ~same_region] = "national"
        # own country, region unknown: regional or national
        unknown_region = same_country & ~region_known
        possible["regional"] |= unknown_region
        if "national" in scales:
            possible["national"] |= unknown_region
        # country unknown but the same region: the same region implies the same country
        scale[~country_known & same_region] = "regional"
        unknown_all = ~country_known & ~same_region
    else:
        if "national" in scales:
            scale[same_country] = "national"
        unknown_all = ~country_known
    for s in scales:
        possible[s] |= unknown_all
    frame = pd.DataFrame({LINK_SCALE: pd.Series(scale, dtype="object")}, index=links.index)
    for s in scales:
        frame[f"possible_{s}"] = possible[s]
    return frame


def collaboration_from_links(
    links: pd.DataFrame,
    classified: pd.DataFrame,
    firm_keys: pd.Series,
    *,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
) -> pd.DataFrame:
    """The collab_<scale>_<partner_type> matrix (Int8) from links; index aligned with firm_keys.

    1 where the firm has a link of that type at that scale; missing where it has only links of
    that type whose scale might be that one; 0 otherwise (a firm without links has no partners).
    """
    position = pd.Series(np.arange(len(firm_keys)), index=firm_keys.to_numpy())
    rows = position.loc[id_keys(links[FIRM_ID]).to_numpy()].to_numpy()
    types = links["partner_type"].to_numpy()
    scale = classified[LINK_SCALE].to_numpy()
    columns = {}
    for partner_type in partner_types:
        of_type = types == partner_type
        for s in scales:
            yes = np.zeros(len(firm_keys), dtype=bool)
            maybe = np.zeros(len(firm_keys), dtype=bool)
            yes[rows[of_type & (scale == s)]] = True
            maybe[rows[of_type & classified[f"possible_{s}"].to_numpy()]] = True
            values = np.where(yes, 1.0, np.where(maybe, np.nan, 0.0))
            columns[collab_column(s, partner_type)] = nullable_integers(
                values, pd.RangeIndex(len(firm_keys))
            )
    return pd.DataFrame(columns)


def pipeline_exposure(
    links: pd.DataFrame,
    firm_keys: pd.Series,
    has_pipeline: pd.Series,
    *,
    local_scale: str,
) -> pd.DataFrame:
    """Each firm's exposure to pipelines through its local partners.

    pipeline_exposure = share of the firm's distinct local partners (links at ``local_scale``,
    the firm's own business group left out) that are surveyed firms with at least one
    international partner, among those whose status is known. The partners whose status is not
    known (not surveyed, no id, or a missing answer) are reported as a share of all local
    partners in pipeline_exposure_unknown_share. Both are missing for a firm with no local partner.
    """
    keys = firm_keys.to_numpy()
    status = dict(zip(keys, has_pipeline.to_numpy(dtype="float64", na_value=np.nan), strict=True))
    local = (links[LINK_SCALE] == local_scale).to_numpy() & (
        links["partner_type"].to_numpy() != GROUP_PARTNER_TYPE
    )
    firm = id_keys(links[FIRM_ID])[local]
    partner = id_keys(links["partner_id"])[local]
    table = pd.DataFrame({"firm": firm.to_numpy(), "partner": partner.to_numpy()})
    named = table[table["partner"].notna()].drop_duplicates()
    named = named[named["partner"] != named["firm"]]
    anonymous = table[table["partner"].isna()]
    partner_status = named["partner"].map(status).astype("float64")
    named = named.assign(
        known=partner_status.notna().to_numpy(), pipeline=(partner_status == 1).to_numpy()
    )
    per_firm = named.groupby("firm").agg(
        partners=("partner", "size"), known=("known", "sum"), pipeline=("pipeline", "sum")
    )
    anonymous_count = anonymous.groupby("firm").size()
    partners = (
        per_firm["partners"].reindex(keys, fill_value=0).to_numpy()
        + anonymous_count.reindex(keys, fill_value=0).to_numpy()
    )
    known = per_firm["known"].reindex(keys, fill_value=0).to_numpy().astype("float64")
    pipeline = per_firm["pipeline"].reindex(keys, fill_value=0).to_numpy().astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        exposure = np.where(known > 0, pipeline / np.maximum(known, 1), np.nan)
        unknown_share = np.where(partners > 0, (partners - known) / np.maximum(partners, 1), np.nan)
    return pd.DataFrame(
        {PIPELINE_EXPOSURE: exposure, PIPELINE_EXPOSURE_UNKNOWN_SHARE: unknown_share}
    )
