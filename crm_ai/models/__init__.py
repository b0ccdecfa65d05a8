from . import (
    crm_ai_driver,
    crm_ai_engine,
    crm_ai_field,
    crm_ai_model,
    crm_ai_scored_mixin,
    crm_ai_settings,
    crm_ai_training,
    crm_lead,
    engine_lead_propensity,
    res_config_settings,
    res_partner,
)
