"""crm_ai's machine-learning engines: pure Python (numpy, pandas, scikit-learn).

Never imports Odoo: DataFrames in, arrays out, so every engine is tested with plain
pytest.  Imports inside this package are relative so ``ml`` loads on its own.
"""

from .customer_value import (
    RepeatPurchaseModel,
    RFMQuintileBaseline,
    RFMSegmenter,
    customer_features,
    purchase_labels,
    rfm_grid_names,
    time_travel_frame,
    training_cutoffs,
)
from .features import LeadFeatureEncoder
from .metrics import (
    GATE_AUC_RATIO,
    GATE_RATIO,
    HOLDOUT_FRACTION,
    binary_metrics,
    calibration_error,
    quality_gate,
    reliability_bins,
    time_ordered_split,
)
from .persistence import ArtifactError, dumps_signed, library_versions, loads_signed
from .pls_baseline import OdooPLSBaseline
from .propensity import LeadPropensityModel, format_reason

__all__ = [
    "RFMQuintileBaseline", "RFMSegmenter", "RepeatPurchaseModel", "customer_features", "purchase_labels", "rfm_grid_names",
    "time_travel_frame", "training_cutoffs",
    "ArtifactError", "GATE_AUC_RATIO", "GATE_RATIO", "HOLDOUT_FRACTION", "LeadFeatureEncoder",
    "LeadPropensityModel", "OdooPLSBaseline", "binary_metrics", "reliability_bins", "dumps_signed",
    "calibration_error", "format_reason", "library_versions", "loads_signed", "quality_gate",
    "time_ordered_split",
]
