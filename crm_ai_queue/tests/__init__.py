# queue_job 18.0.4's test helpers register themselves in SETATTR_SOURCES, which Odoo 18.0
# builds from before 2025 do not have (Odoo's check of where tests patch classes): an empty
# registry there is what such a build would have, and changes nothing on a newer one.
import odoo.tests.common

if not hasattr(odoo.tests.common, "SETATTR_SOURCES"):
    odoo.tests.common.SETATTR_SOURCES = {}

from . import test_score_jobs, test_security_rpc, test_train_jobs
