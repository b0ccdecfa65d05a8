{
    "name": "CRM AI: Job Queue",
    "summary": "Runs CRM AI's scoring and training as OCA queue_job jobs, spread over Odoo workers and servers.",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "author": "crm_ai contributors",
    "website": "https://github.com/crm-ai/crm_ai",
    "license": "LGPL-3",
    # Installed by itself as soon as crm_ai and queue_job are both there: installing queue_job
    # is the whole set-up.  crm_ai never imports queue_job; without it, it works inline.
    "depends": ["crm_ai", "queue_job"],
    "auto_install": True,
    "data": [
        "data/queue_job_data.xml",
    ],
    "images": ["static/description/icon.png"],
    "installable": True,
    "development_status": "Beta",
}
