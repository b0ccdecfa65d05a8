"""The engine contract: what an engine declares, and the hooks the shared driver calls.

An engine is a small Python class registered with :func:`register_engine`.  It says
*what* to compute (its task key, target model, record columns, metric, baseline,
parameters) and implements a few hooks: which records it scores, how it trains and
how it turns a batch of records into column values.  *How* work is run (companies
isolated from each other, batches, commits, progress, row locks, conflicts, time
budget, stale detection, refused models, the registry and the quality gate) is the
driver's (``crm.ai.driver``), identical for every engine.  The pure maths lives in
``crm_ai/ml/`` and never imports Odoo.

A new engine is therefore one file here (plus its fields on the target model and
its views)::

    @register_engine
    class MyEngine(CrmAiEngine):
        task = "my_task"
        ...
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta

from odoo import fields
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

#: Salespeople who read every lead and every sale order of their companies ("All Documents").
#: They see the exact figures a customer's values rest on (revenue, orders, won deals); users
#: limited to their own documents see the values (segment, propensity) and the reasons'
#: direction, not figures made of colleagues' leads and orders, which Odoo hides from them.
ALL_SALES = "sales_team.group_sale_salesman_all_leads"


def reads_all_sales(env):
    """Whether the real user (sudo or not) reads every lead and sale order of his companies."""
    return env.user._is_superuser() or env.user.has_group(ALL_SALES)


#: task key -> engine class, in registration order (the crons visit them in this order).
ENGINES = {}
#: Malformed parameter values already logged (each is logged once per process).
_LOGGED_BAD_PARAMS = set()


class ModelRefused(Exception):
    """A stored model cannot be used here: bad signature, another task / company /
    version, a library mismatch, an unpickling error or an input that no longer exists.
    The driver handles every case the same way (state "refused", records "stale",
    retraining requested)."""


def register_engine(cls):
    """Class decorator: make ``cls`` known to the driver, the registry and Settings."""
    if not cls.task or not cls.target_model:
        raise ValueError(f"{cls.__name__} must set task and target_model")
    ENGINES[cls.task] = cls
    return cls


def unregister_engine(task):
    """Forget an engine (tests register temporary ones)."""
    ENGINES.pop(task, None)


def engine_selection():
    return [(task, cls.label or task) for task, cls in ENGINES.items()]


# -- parameters ------------------------------------------------------------------------
def _parse_bool(raw):
    # The Settings checkbox deletes the parameter when unticked (Odoo stores False as "no row").
    return str(raw).strip().lower() not in ("", "0", "false", "no", "off")


def _parse_date(raw):
    value = fields.Date.to_date(raw.strip())
    if not value:
        raise ValueError("empty date")
    return value


def _parse_names(raw):
    return [name.strip() for name in raw.split(",") if name.strip()]


class Param:
    """One typed engine parameter stored as ``ir.config_parameter`` ``crm_ai.<task>.<name>``.

    ``kind``: ``int``, ``float``, ``bool``, ``date``, ``names`` (comma separated list),
    ``str``, or a callable parsing the raw text.  An absent value gives ``default``; a
    malformed or out-of-range one gives ``default`` too and is logged once.
    """

    PARSERS = {"int": int, "float": float, "bool": _parse_bool, "date": _parse_date,
               "names": _parse_names, "str": str}

    def __init__(self, kind, default, *, minimum=None, maximum=None, choices=None):
        self.kind, self.default = kind, default
        self.minimum, self.maximum, self.choices = minimum, maximum, choices

    def parse(self, raw):
        """The value of ``raw`` (text), or ValueError."""
        value = (self.kind if callable(self.kind) else self.PARSERS[self.kind])(raw)
        if isinstance(value, float) and not math.isfinite(value):  # "nan" passes every comparison
            raise ValueError(f"{value} is not a number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is above the maximum {self.maximum}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {sorted(map(str, self.choices))}")
        return value

    def read(self, env, key):
        raw = env["ir.config_parameter"].sudo().get_param(key)
        if raw is None or raw is False:
            return self.default(env) if callable(self.default) else self.default
        try:
            return self.parse(raw)
        except (ValueError, TypeError) as error:
            if (key, raw) not in _LOGGED_BAD_PARAMS:
                _LOGGED_BAD_PARAMS.add((key, raw))
                _logger.warning("crm_ai: parameter %s=%r is not usable (%s): using the default", key, raw, error)
            return self.default(env) if callable(self.default) else self.default


# -- training results --------------------------------------------------------------------
@dataclass
class TrainResult:
    """What an engine's ``train`` hands to the driver.

    ``status``: "trained", or "insufficient_data" (then only ``message`` matters).
    Metrics are measured on the engine's holdout: ``metrics`` for the new model,
    ``baseline_metrics`` for its baseline on the same holdout (``other_baselines``: ``{label:
    metrics}`` of further simple answers, shown next to it), ``champion_score`` for the
    active model's primary metric on that holdout (None: none, or not measurable).
    """

    status: str
    message: str = ""
    estimator: object = None
    metrics: dict = field(default_factory=dict)
    baseline_metrics: dict = field(default_factory=dict)
    other_baselines: dict = field(default_factory=dict)
    champion_score: float = None
    gate_note: str = ""
    counts: dict = field(default_factory=dict)
    n_train: int = 0
    n_holdout: int = 0
    date_from: object = None
    holdout_date_from: object = None
    holdout_date_to: object = None
    train_date_to: object = None
    hyperparameters: str = ""
    #: how the model was chosen among candidates (engine-specific JSON, shown by the registry)
    selection: dict = field(default_factory=dict)
    importance: list = field(default_factory=list)
    feature_names: list = field(default_factory=list)


class CrmAiEngine:
    """Base class of every crm_ai engine (see the module docstring).

    Class attributes an engine sets:

    - ``task``, ``label``: registry key and its name for people.
    - ``target_model``: the model whose records get scores (``crm.lead``, ``res.partner``).
    - ``state_field``, ``date_field``, ``model_field``: the target's status selection
      (pending / scored / insufficient_data / stale), score date and model many2one.
      ``value_fields``: the other columns the engine writes (cleared when there is no model).
    - ``trains``: False for an engine that needs no training (e.g. a lexicon): the
      driver still registers one row per ``untrained_version`` so admins see what scored,
      with the benchmark figures it declares in ``untrained_metrics``.
    - ``primary_metric`` / ``primary_metric_label`` / ``higher_is_better``: what the
      quality gate compares; ``baseline_label``: what the engine is measured against.
    - ``libraries``: what its stored models need (checked on load, nothing else is).
    - ``params``: ``{name: Param}``, read with :meth:`param`; ``enabled`` is standard.
    - ``batch_size``, ``rescore_after``.
    - ``shared_records``: whether records without a company get a model of their own
      (leads may have no company; a customer's orders always have one).  An engine
      writing company-dependent fields (one value per company on a shared record, e.g.
      a partner's segment) sets it to False.
    """

    task = None
    label = None
    target_model = None
    state_field = date_field = model_field = None
    value_fields = ()
    trains = True
    untrained_version = None
    untrained_metrics = None
    primary_metric = "auc"
    primary_metric_label = "AUC"
    higher_is_better = True
    baseline_label = None
    libraries = ("scikit-learn", "numpy")
    params = {"enabled": Param("bool", True)}
    batch_size = 5000
    rescore_after = timedelta(days=1)
    shared_records = True

    def __init__(self, env, company):
        self.env = env
        self.company = company

    # -- configuration -----------------------------------------------------------------
    @classmethod
    def module(cls):
        """The addon declaring the engine: it is driven only in databases where that
        addon is installed (this registry is shared by every database of the process)."""
        parts = cls.__module__.split(".")
        return parts[2] if parts[:2] == ["odoo", "addons"] and len(parts) > 2 else parts[0]

    @classmethod
    def drives(cls, company):
        """Whether this engine has work for ``company`` (empty: records without one)."""
        return bool(company) or cls.shared_records

    @classmethod
    def param_key(cls, name):
        return f"crm_ai.{cls.task}.{name}"

    def param(self, name):
        return self.params[name].read(self.env, self.param_key(name))

    @property
    def records(self):
        return self.env[self.target_model]

    @property
    def table(self):
        return self.records._table

    # -- columns ------------------------------------------------------------------------
    def column_sql(self, alias, name):
        """The value of column ``name`` of row ``alias`` for this engine's company:
        the column itself, or for a company-dependent field (a jsonb column
        ``{company_id: value}``) the company's value, typed as Odoo reads it."""
        field = self.records._fields[name]
        column = SQL.identifier(alias, name)
        if not field.company_dependent:
            return column
        return SQL("(%s->%s->>0)::%s", column, str(self.company.id), SQL(field._column_type[1]))

    def assign_sql(self, qualifier, name, value):
        """``name = value`` in an UPDATE of this engine's company's value; ``qualifier``
        names the updated row (its table or alias).  For a company-dependent field only
        the company's key changes, and NULL removes it (as Odoo stores "no value")."""
        field = self.records._fields[name]
        if not field.company_dependent:
            return SQL("%s = %s", SQL.identifier(name), value)
        value = SQL("(%s)::%s", value, SQL(field._column_type[1]))
        if field.type == "datetime":  # the text Odoo reads back (no "T", no microseconds)
            value = SQL("to_char(%s, 'YYYY-MM-DD HH24:MI:SS')", value)
        current = SQL("COALESCE(%s, '{}'::jsonb)", SQL.identifier(qualifier, name))
        key = str(self.company.id)
        return SQL("%s = CASE WHEN %s IS NULL THEN %s - %s ELSE %s || jsonb_build_object(%s, %s) END",
                   SQL.identifier(name), value, current, key, current, key, value)

    # -- hooks: scoring --------------------------------------------------------------------
    def scope_sql(self, alias):
        """SQL condition on ``alias`` (a row of the target table): the records this
        engine scores for ``self.company``."""
        raise NotImplementedError

    def changed_sql(self, alias):
        """Extra SQL condition meaning "changed since scored" (beyond ``write_date``),
        or None."""
        return None

    def check_estimator(self, estimator):
        """Raise :class:`ModelRefused` when ``estimator`` cannot score here (e.g. an
        input field was removed since it was trained)."""

    def score(self, ids, estimator, model, now):
        """``{column: [value per id]}`` for the records ``ids`` (in that order)."""
        raise NotImplementedError

    def after_write(self, written_ids):
        """Called in the same transaction once a batch's scores are written, with the
        ids actually written (rows users held are skipped): e.g. to log a change."""

    def after_clear(self):
        """Called in the same transaction once the company's records lost their values
        (no model: not enough data, or none good enough), e.g. to clear copies of them."""

    def untrained_estimator(self):
        """The estimator of an engine that does not train."""
        raise NotImplementedError

    # -- hooks: training ---------------------------------------------------------------------
    def data_shortfall(self):
        """A message saying why there is too little data to train, or None.

        Cheap (a COUNT): the score cron calls it to say "not enough data" at once."""
        return None

    def train(self, champion, champion_record):
        """Fit, measure and explain a new model; returns a :class:`TrainResult`.

        ``champion`` is the active model's estimator (None when there is none or it was
        refused); the engine measures it on its own holdout (``champion_score``), fairly.
        """
        raise NotImplementedError

    # -- helpers for engines --------------------------------------------------------------------
    def company_sql(self, column):
        """``column IS NOT DISTINCT FROM <company>`` (records without a company share a model)."""
        return SQL("%s IS NOT DISTINCT FROM %s", column, self.company.id or None)
