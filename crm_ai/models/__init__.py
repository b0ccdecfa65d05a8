from . import crm_ai_model
from . import crm_lead
from . import res_config_settings
