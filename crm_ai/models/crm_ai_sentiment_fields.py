"""Sentiment fields, shared by leads and partners (written by ``engine_sentiment``), and
each analysed message's own result."""

from odoo import _, api, fields, models

from .crm_ai_driver import RECORD_STATES
from .engine_sentiment import SENTIMENT_LABELS, WORSENED_BY, describe_trend

SALES = "sales_team.group_sale_salesman"


def sentiment_fields(company_dependent=False, groups=None, excerpt_groups=None):
    """The sentiment columns of a target model (company-dependent on partners: one value
    per company, as the customer value, without the (value IS NOT NULL) index Odoo would
    add to each; ``groups``: who reads them; ``excerpt_groups``: who reads the excerpt and
    its words as stored, when they may come from records other readers cannot open)."""
    cd = {"company_dependent": True, "index": False} if company_dependent else {}
    if groups:
        cd["groups"] = groups
    excerpt = {**cd, "groups": excerpt_groups} if excerpt_groups else cd
    return {
        "ai_sentiment": fields.Float(
            "Sentiment", digits=(3, 2), readonly=True, copy=False, aggregator="avg", **cd,
            help="How the customer's own words read, from -1 (very negative) to +1 (very positive): the "
                 "recency-weighted average of the English texts with a sentiment (a text's weight halves every "
                 "30 days). Empty when nothing the customer wrote could be read."),
        "ai_sentiment_label": fields.Selection(
            SENTIMENT_LABELS, "Sentiment Label", readonly=True, copy=False, **cd,
            **({} if company_dependent else {"index": True}),
            help="Positive / Neutral / Negative; Unsupported language: the customer wrote in a language "
                 "the engine cannot read (only English is); No customer text: nothing written by the customer."),
        "ai_sentiment_excerpt": fields.Text(
            "Sentiment Excerpt (stored)" if excerpt_groups else "Why (sentiment)", readonly=True, copy=False, **excerpt,
            help="The customer's words that weigh most negatively in the sentiment."),
        "ai_sentiment_evidence": fields.Char(
            "Sentiment Evidence (stored)" if excerpt_groups else "Words Behind It", readonly=True, copy=False, **excerpt,
            help="The words or phrases of that excerpt that drove its sentiment, strongest first."),
        "ai_sentiment_count": fields.Integer("Texts Read", readonly=True, copy=False, **cd),
        "ai_sentiment_date": fields.Datetime("Latest Customer Text", readonly=True, copy=False, **cd),
        "ai_sentiment_trend": fields.Float(
            "Sentiment Change", digits=(3, 2), readonly=True, copy=False, **cd,
            help="How much the sentiment moved when the customer last wrote (new value minus previous)."),
        "ai_sentiment_state": fields.Selection(RECORD_STATES, "Sentiment Status", readonly=True, copy=False, **cd),
        "ai_sentiment_scored_date": fields.Datetime("Sentiment Scored On", readonly=True, copy=False, **cd),
        "ai_sentiment_model_id": fields.Many2one(
            "crm.ai.model", "Sentiment Model", readonly=True, copy=False,
            **({**cd, "ondelete": "set null"} if not company_dependent else {**cd, "index": "btree_not_null"})),
        "ai_sentiment_worsened": fields.Boolean(
            "Sentiment Worsened", compute="_compute_ai_sentiment_worsened", search="_search_ai_sentiment_worsened",
            **({"groups": groups} if groups else {})),
        "ai_sentiment_trend_label": fields.Char("Sentiment Trend", compute="_compute_ai_sentiment_worsened",
                                                **({"groups": groups} if groups else {})),
    }


class CrmAiSentimentMixin(models.AbstractModel):
    """Display helpers of the sentiment fields (the fields are declared per model)."""

    _name = "crm.ai.sentiment.mixin"
    _description = "CRM AI: sentiment display"

    @api.depends("ai_sentiment_trend", "ai_sentiment_label")
    @api.depends_context("company")
    def _compute_ai_sentiment_worsened(self):
        for record in self:
            trend = record.ai_sentiment_trend if record.ai_sentiment_label in ("positive", "neutral", "negative") \
                else None
            record.ai_sentiment_worsened = trend is not None and trend <= -WORSENED_BY
            record.ai_sentiment_trend_label = describe_trend(self.env, trend) if trend else ""

    def _search_ai_sentiment_worsened(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(_("Unsupported search on sentiment worsened."))
        worsened = [("ai_sentiment_trend", "<=", -WORSENED_BY)]
        return worsened if (operator == "=") == value else ["!", *worsened]


class MailMessage(models.Model):
    _name = "mail.message"
    _inherit = ["mail.message", "crm.ai.scored.mixin"]

    # salespeople only: a portal user reads messages of its own documents, not what CRM AI made of them
    ai_sentiment_score = fields.Float("Sentiment", readonly=True, copy=False, digits=(3, 2), groups=SALES)
    ai_sentiment_label = fields.Selection(SENTIMENT_LABELS, "Sentiment Label", readonly=True, copy=False, groups=SALES)
    ai_sentiment_language = fields.Char("Language (detected)", readonly=True, copy=False, groups=SALES)
    ai_sentiment_excerpt = fields.Text("Sentiment Excerpt", readonly=True, copy=False, groups=SALES)
    ai_sentiment_evidence = fields.Char("Sentiment Evidence", readonly=True, copy=False, groups=SALES,
                                        help="The words or phrases that drove this message's sentiment.")
    ai_sentiment_version = fields.Integer("Sentiment Reader Version", readonly=True, copy=False, groups=SALES,
                                          help="The version of the chain that read this message (an earlier "
                                               "one's reading is read again).")

    def write(self, vals):
        result = super().write(vals)
        if "body" in vals and self.ids:
            # the old reading must not outlive the text (an edit, or a "deleted" message)
            self.env.cr.execute(
                """UPDATE mail_message SET ai_sentiment_score = NULL, ai_sentiment_label = NULL,
                          ai_sentiment_language = NULL, ai_sentiment_excerpt = NULL, ai_sentiment_evidence = NULL
                    WHERE id IN %s AND ai_sentiment_label IS NOT NULL""", [tuple(self.ids)])
            self.invalidate_recordset(["ai_sentiment_score", "ai_sentiment_label", "ai_sentiment_language",
                                       "ai_sentiment_excerpt", "ai_sentiment_evidence"])
        return result

    def _to_store(self, store, /, *, fields=None, **kwargs):
        """The chatter also shows a customer message's sentiment (positive or negative
        only, to salespeople), read with the messages: no query per message."""
        super()._to_store(store, fields=fields, **kwargs)
        if not self or not self.env.user.has_group(SALES):
            return
        # sudo: the label is the engine's; the user already reads these messages
        for message, label in zip(self, self.sudo().mapped("ai_sentiment_label")):
            if label in ("positive", "negative"):
                store.add(message, {"ai_sentiment_label": label})
