"""The built-in placeholder survey: reproducible from its script, readable, roughly shaped."""

from buzzpipe.data import PLACEHOLDER_SURVEY
from buzzpipe.data.placeholder import generate
from buzzpipe.survey.builtin import builtin_survey


def test_shipped_file_is_what_the_script_writes():
    assert generate().to_csv(index=False, lineterminator="\n") == PLACEHOLDER_SURVEY.read_text()


def test_builtin_survey_has_the_published_shape_roughly():
    survey = builtin_survey()
    analysis = survey.analysis_frame()
    assert len(survey) == 400
    assert list(analysis["region"].cat.categories) == [
        "Oslo",
        "Bergen",
        "Stavanger",
        "Trondheim",
        "Kristiansand",
    ]
    # published: about 80% with a regional partner, 45% abroad, 48% product innovators;
    # the placeholder is only loosely shaped after them (400 firms: +-5 points)
    assert abs(analysis["any_regional"].mean() - 0.80) < 0.05
    assert abs(analysis["any_international"].mean() - 0.45) < 0.05
    assert abs(analysis["product"].mean() - 0.476) < 0.05
