"""18.0.3.0 -> 18.0.3.1: customer sentiment excerpts now carry the message they quote.

The customer form shows a partner's excerpt only to users who may read that message
(``ai_sentiment_message``).  Partners scored before the upgrade have an excerpt but no
message id: their sentiment is marked to score again (its state removed for those
companies) so the next run fills it, rather than leaving their excerpts unquoted until
the daily rescore.
"""


def mark_excerpts_without_message(cr):
    """Remove the company keys of ``ai_sentiment_state`` (pending: scored again) where the
    company's excerpt has no message id; returns the partners touched.  Partners the
    engine no longer scores (archived) stay as they are: their excerpt is not quoted."""
    missing = """SELECT e.key FROM jsonb_each(p.ai_sentiment_excerpt) e
                  WHERE jsonb_typeof(e.value) = 'string' AND p.ai_sentiment_state ? e.key
                    AND jsonb_typeof(COALESCE(p.ai_sentiment_message, '{}'::jsonb) -> e.key) IS DISTINCT FROM 'number'"""
    cr.execute(f"""
        UPDATE res_partner p
           SET ai_sentiment_state = p.ai_sentiment_state - ARRAY({missing})
         WHERE jsonb_typeof(p.ai_sentiment_state) = 'object' AND jsonb_typeof(p.ai_sentiment_excerpt) = 'object'
           AND (jsonb_typeof(p.ai_sentiment_message) = 'object' OR p.ai_sentiment_message IS NULL)
           AND EXISTS ({missing})
    """)
    return cr.rowcount


def migrate(cr, version):
    if version:
        mark_excerpts_without_message(cr)
