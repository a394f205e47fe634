"""The ``speechface`` command line: every sub-command, registered in one list.

In: command-line arguments. Out: the stages run on files.
:mod:`~speechface.cli.main` holds the parser and ``predict``/``models``; ``train``, ``evaluate``
and ``calibrate`` are in :mod:`~speechface.cli.train` (the only inference-side importer of
:mod:`speechface.training`); ``animate`` in :mod:`~speechface.cli.animate`, ``stream`` in
:mod:`~speechface.cli.stream`, ``prepare`` in :mod:`~speechface.cli.prepare`. Every command is
a parser and a handler calling library functions of the stages.
"""

from .main import (
    COMMANDS,
    add_common_options,
    add_models_parser,
    add_predict_parser,
    build_parser,
    check_device,
    main,
)

__all__ = ["main", "build_parser", "COMMANDS", "add_predict_parser", "add_models_parser",
           "check_device", "add_common_options"]
