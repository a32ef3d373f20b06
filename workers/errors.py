"""Exceptions a job's compute code raises to end the job in a known way.

Free of Django so compute modules can import them without a settings module.
"""


class JobInputError(Exception):
    """The input was wrong: the user can fix it. Shown to the user as is."""


class JobCancelled(Exception):
    """The user asked to stop; raised at the next progress report.

    A runner that can keep what it had when it stopped (a training run's best
    model so far) catches it, registers its files and raises it again with
    `result`: the job still ends cancelled, with that result and those files."""

    def __init__(self, message: str = "Cancelled", result: dict | None = None):
        super().__init__(message)
        self.result = result


class TransientJobError(Exception):
    """A failure worth retrying (a service briefly away, a lost connection)."""


class ParamsError(ValueError):
    """Submitted parameters are invalid. `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class JobSystemError(Exception):
    """A failure on our side that the user should read as is (e.g. model
    weights missing on an offline worker). Not retried. `detail` is for the
    operators only (the job's error_detail in the admin): server paths, say."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail
