from . import (
    test_customer_value,
    test_engine_framework,
    test_migration,
    test_model_registry,
    test_propensity_scoring,
    test_propensity_training,
    test_recommend,
    test_security,
    test_security_rpc,
    test_sentiment,
    test_settings,
    test_tour,
)
