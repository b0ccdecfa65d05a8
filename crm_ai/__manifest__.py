{
    "name": "CRM AI",
    "summary": "Calibrated win probability for every open lead and repeat-purchase propensity for every "
               "customer, with the reasons; named RFM customer segments; a model registry with quality gate.",
    "version": "18.0.3.2.0",
    "category": "Sales/CRM",
    "author": "crm_ai contributors",
    "website": "https://github.com/crm-ai/crm_ai",
    "license": "LGPL-3",
    "depends": ["crm", "sale_crm"],
    "external_dependencies": {
        # What the engines import (ml/).  lightfm is imported only when a recommendation model
        # trains; if its compiled extension fails at that moment, the engine serves item-item.
        "python": ["scikit-learn", "scipy", "pandas", "joblib", "textblob", "vaderSentiment", "py3langid",
                   "lightfm"],
    },
    "data": [
        "security/crm_ai_security.xml",
        "security/ir.model.access.csv",
        "data/ir_config_parameter_data.xml",
        "data/ir_cron_data.xml",
        "views/crm_ai_model_views.xml",
        "views/crm_lead_views.xml",
        "views/crm_ai_segment_views.xml",
        "views/crm_ai_recommendation_views.xml",
        "views/res_partner_views.xml",
        "views/crm_ai_settings_views.xml",
        "views/res_config_settings_views.xml",
        "views/crm_ai_menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "crm_ai/static/src/**/*",
        ],
        "web.assets_tests": [
            "crm_ai/static/tests/tours/**/*",
        ],
    },
    "images": ["static/description/icon.png"],
    "application": True,  # listed under the Apps menu's default filter
    "installable": True,
    "development_status": "Beta",
}
