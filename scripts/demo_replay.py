# Replays a few weeks of lead scoring on the demo database (piped into ``odoo-bin shell``
# by scripts/run, after training): every open lead is scored as it was 28, 21, 14 and 7
# days ago (its age and the messages it had then) with the active model, through the
# engine and the driver's writer, so the propensity history, the 7-day trend and the
# "what changed" panel show right after set-up.  The real scoring run comes after it.
from datetime import timedelta

from odoo.tools import SQL, split_every

REPLAY_DAYS = (28, 21, 14, 7)
TASK = "lead_propensity"

driver = env["crm.ai.driver"].sudo()  # noqa: F821
env.cr.execute("SELECT (now() AT TIME ZONE 'UTC')::timestamp")  # noqa: F821
now = env.cr.fetchone()[0]  # noqa: F821
replayed = 0
for company in env["res.company"].search([]):  # noqa: F821
    engine = driver._ai_engine(TASK, company)
    model = driver._ai_scoring_model(engine)
    if not engine.drives(company) or not model:
        continue
    estimator = driver._ai_load(engine, model)
    for days in REPLAY_DAYS:
        at = now - timedelta(days=days)
        # the engine's own scope (open leads of the company), created by then
        env.cr.execute(SQL("SELECT l.id FROM crm_lead l WHERE %s AND l.create_date < %s ORDER BY l.id",  # noqa: F821
                           engine.scope_sql("l"), at))
        ids = [row[0] for row in env.cr.fetchall()]  # noqa: F821
        for batch in split_every(engine.batch_size, ids, list):
            replayed += driver._ai_write_scores(engine, model, batch, engine.score(batch, estimator, model, at), at)
    env.cr.commit()  # noqa: F821
print(f"crm_ai demo: {replayed} lead scores replayed over {len(REPLAY_DAYS)} past weeks")
