"""Errors that the CLI shows as one sentence, without a traceback."""


class BrainbenchError(Exception):
    """A problem the user can fix; its message is one clear sentence saying how."""


class UnknownNameError(BrainbenchError, KeyError):
    """A model, dataset or metric name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(BrainbenchError):
    """Two plugins registered the same name."""


class MissingDataError(BrainbenchError):
    """A data file or weight file is not where it should be."""
