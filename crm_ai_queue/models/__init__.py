from . import crm_ai_driver
