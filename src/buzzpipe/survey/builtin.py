"""The surveys and mapping files shipped with buzzpipe."""

from pathlib import Path

from buzzpipe.data import PLACEHOLDER_SURVEY
from buzzpipe.survey.model import Survey

MAPPINGS_FOLDER = Path(__file__).with_name("mappings")
# example mappings by short name: usable as ``--mapping norway`` on the command line
SHIPPED_MAPPINGS = {
    "norway": MAPPINGS_FOLDER / "norway.toml",
    "cis": MAPPINGS_FOLDER / "cis.toml",
}


def mapping_path(name_or_path: str | Path) -> Path:
    """A shipped mapping's path by short name ("norway", "cis"); any other value is a path."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_MAPPINGS:
        if not Path(name_or_path).exists():
            return SHIPPED_MAPPINGS[name_or_path]
    return Path(name_or_path)


def builtin_survey() -> Survey:
    """The small placeholder survey (400 firms, Norwegian-style layout, not calibrated).

    It stands in until the calibrated synthetic survey lands; see buzzpipe/data/placeholder.py.
    """
    from buzzpipe.survey.readers import read_survey

    return read_survey(PLACEHOLDER_SURVEY, mapping=SHIPPED_MAPPINGS["norway"])
