"""Error types. Every user mistake raises a subclass of :class:`FewshotError`;
the CLI prints its message on one line and exits non-zero, without a traceback.

Library messages name the parameter and its value as ``name=value`` (``out=runs/a exists; ...``), never a
command-line flag; the CLI turns each ``name=`` of one of its options into the flag (``--out runs/a exists``).
"""


class FewshotError(Exception):
    """Root of all errors caused by user input (bad files, parameters, configs); ``param`` names the parameter at
    fault where there is one."""

    exit_code = 2

    def __init__(self, message: str = "", *, param: str | None = None):
        super().__init__(message)
        self.param = param


class ConfigError(FewshotError):
    """Invalid configuration value, YAML file or command-line flag."""


class DataError(FewshotError):
    """Missing, unreadable or inconsistent audio data or manifest."""


class EpisodeError(FewshotError):
    """Episodes cannot be sampled or a frozen episode file does not match."""


class CheckpointError(FewshotError):
    """A run folder or checkpoint is missing, corrupt or incompatible."""


class DistributedError(FewshotError):
    """Another process of a distributed run failed or was stopped."""

    exit_code = 1


class CollectiveError(FewshotError):
    """A user error found by one process of a torchrun job and raised by every process together: rank 0
    prints it (``reported_elsewhere`` is false there), and every rank stops only after it is printed."""

    def __init__(self, cause: FewshotError, *, reported_elsewhere: bool):
        super().__init__(str(cause))
        self.cause, self.reported_elsewhere = cause, reported_elsewhere
        self.exit_code = cause.exit_code
