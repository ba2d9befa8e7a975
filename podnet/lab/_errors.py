"""The lab's one error type."""


class LabError(RuntimeError):
    """Something about the lab that the user must hear in one line."""
