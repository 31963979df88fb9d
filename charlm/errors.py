"""The one exception type that means "the user gave us something we cannot use".

Anything raised as `UsageError` reaches the person as a single line
(what is wrong, then what to do) and exit status 2, never as a traceback.
"""


class UsageError(Exception):
    """Bad input: a path, file, flag, checkpoint or prompt we cannot use."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem
