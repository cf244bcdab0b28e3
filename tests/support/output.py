"""Capturing what the functions print (EMF documents and Powertools' JSON logs on stdout;
read them with :mod:`tests.support.emf`)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from market_proxy.observability import logger


@contextmanager
def captured(*, everything: bool = False) -> Iterator[io.StringIO]:
    """Everything printed to stdout and stderr during the block, Powertools' logs included
    (its handler holds the stream it was created with, so it is pointed here as well).

    With ``everything``, every logger of the process logs at DEBUG into it too (as a Lambda
    function whose log level is set to DEBUG would), libraries' loggers included.
    """
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    root = logging.getLogger()
    levels = (root.level, logger.log_level)
    to_buffer = logging.StreamHandler(buffer)
    if everything:
        root.addHandler(to_buffer)
        root.setLevel(logging.DEBUG)
        logger.setLevel(logging.DEBUG)
    try:
        with redirect_stdout(buffer), redirect_stderr(buffer):
            yield buffer
    finally:
        handler.setStream(previous)
        if everything:
            root.removeHandler(to_buffer)
            root.setLevel(levels[0])
            logger.setLevel(levels[1])
