"""survey stage: the firm-survey model, readers, mappings, validation, derived measures.

See ../shared/DESIGN.md ("The survey model") and the README section on the data layer.
"""

from buzzpipe.survey.mapping import Mapping, load_mapping
from buzzpipe.survey.model import Survey
from buzzpipe.survey.readers import read_edge_list, read_survey

__all__ = ["Mapping", "Survey", "load_mapping", "read_edge_list", "read_survey"]
