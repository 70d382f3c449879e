"""Names of the firm-survey model: scales, partner types, outcomes, controls, column names.

Every stage spells survey columns through these helpers, so a name lives in one place.
"""

SCALES: tuple[str, ...] = ("regional", "national", "international")
PARTNER_TYPES: tuple[str, ...] = (
    "suppliers",
    "customers",
    "competitors",
    "consultants",
    "universities",
    "research_institutes",
    "group",
)
# Contacts with the firm's own business group are left out of breadth by default.
GROUP_PARTNER_TYPE = "group"
OUTCOMES: tuple[str, ...] = ("product", "process", "new_to_market")
NOVELTY = "product_novelty"  # 0 none, 1 new to the firm, 2 new to the market
REQUIRED_CONTROLS: tuple[str, ...] = ("employees", "industry", "region")
# foreign_share is optional: a survey without it is modelled without it, with a note.
OPTIONAL_CONTROLS: tuple[str, ...] = ("firm_age", "education", "openness")
WEIGHT = "weight"
FIRM_ID = "firm_id"
REGIMES: tuple[str, ...] = ("none", "local_only", "global_only", "both")
LINK_COLUMNS: tuple[str, ...] = (
    "firm_id",
    "partner_id",
    "partner_type",
    "partner_region",
    "partner_country",
)


def collab_column(scale: str, partner_type: str) -> str:
    """Column of the 0/1 indicator 'collaborated with partner_type at scale'."""
    return f"collab_{scale}_{partner_type}"


def parse_collab_column(name: str) -> tuple[str, str] | None:
    """Split ``collab_<scale>_<partner_type>`` at the first underscore after ``collab_``."""
    if not name.startswith("collab_"):
        return None
    scale, separator, partner_type = name[len("collab_") :].partition("_")
    if not separator or not scale or not partner_type:
        return None
    return scale, partner_type


def breadth_column(scale: str, *, with_group: bool = False) -> str:
    """Column of breadth at a scale: the number of partner types collaborated with there."""
    return f"breadth_{scale}_with_group" if with_group else f"breadth_{scale}"


def any_column(scale: str) -> str:
    """Column of the 0/1 flag 'any partner at this scale'."""
    return f"any_{scale}"


# Added by the data layer (issue 2): further names of the survey model.
COUNTRY = "country"  # optional firm column: the firm's own country (edge-list surveys)
REGION = "region"
INDUSTRY = "industry"
CATEGORICAL_CONTROLS: tuple[str, ...] = (REGION, INDUSTRY)
NUMERIC_CONTROLS: tuple[str, ...] = (
    "employees",
    "foreign_share",
    "firm_age",
    "education",
    "openness",
)
REQUIRED_OUTCOMES: tuple[str, ...] = ("product",)
REGIME = "regime"
LINK_SCALE = "scale"  # the scale a link is classified into (missing when it cannot be told)
PIPELINE_EXPOSURE = "pipeline_exposure"
PIPELINE_EXPOSURE_UNKNOWN_SHARE = "pipeline_exposure_unknown_share"
DONT_KNOW = "missing"  # the code-table value meaning "don't know" in mapping files


def breadth_scale(name: str) -> tuple[str, bool] | None:
    """Split ``breadth_<scale>`` or ``breadth_<scale>_with_group`` into (scale, with_group)."""
    if not name.startswith("breadth_"):
        return None
    rest = name[len("breadth_") :]
    if rest.endswith("_with_group"):
        rest, with_group = rest[: -len("_with_group")], True
    else:
        with_group = False
    if not rest or "_" in rest:
        return None
    return rest, with_group
