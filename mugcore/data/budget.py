"""What reading one untrusted file may allocate in all: the restricted unpickler and the HDF5
reader charge each allocation here before making it, so that a small file cannot make the
reader take gigabytes. Each reader says how its refusal reads (`refuse`)."""

from collections.abc import Callable


class Budget:
    def __init__(self, limit: int, refuse: Callable[[str], Exception]) -> None:
        self.limit = limit
        self.used = 0
        self._refuse = refuse  # what -> the error to raise once `limit` would be passed

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, nbytes: int, what: str) -> None:
        self.used += nbytes
        if self.used > self.limit:
            raise self._refuse(what)
