"""What every stage shares: errors, registries, model folders, small I/O helpers.

In: nothing of the pipeline's own data. Out: the pieces the stages are built from.

- :mod:`~speechface.core.errors`: the exceptions (all derive from ``SpeechfaceError``);
- :mod:`~speechface.core.registry`: one registry per family (estimators, features, spaces,
  translators, expression), filled by a decorator;
- :mod:`~speechface.core.hub`: ``PretrainedModel``, the one base of every model family (model
  folders: local, packaged, Hub), with :mod:`~speechface.core.config_schema` checking their
  ``config.json``;
- :mod:`~speechface.core.results`: ``Prediction``, the result of a speech estimator;
- :mod:`~speechface.core.threads`, ``_io`` (atomic writes, bounded reads), ``_hparams``
  (``Network``: recorded constructor arguments).
"""
