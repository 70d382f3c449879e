"""Data shipped with buzzpipe: the small placeholder survey and the script that makes it."""

from pathlib import Path

PLACEHOLDER_SURVEY = Path(__file__).with_name("placeholder_survey.csv")
