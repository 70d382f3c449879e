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
REQUIRED_CONTROLS: tuple[str, ...] = ("employees", "foreign_share", "industry", "region")
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
