from . import test_propensity_training
from . import test_propensity_scoring
from . import test_model_registry
from . import test_settings
from . import test_security
from . import test_tour
from . import test_engine_framework
from . import test_migration
