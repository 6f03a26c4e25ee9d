"""What every leader-only component shares: it can be switched off, and then holds nothing."""

from __future__ import annotations


class LeaderOnly:
    """A component only the leader runs: disabling it (leadership lost) flushes its state, since all of it
    can be rebuilt from the state store when leadership comes back."""

    _enabled: bool

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if not enabled:
            self.flush()

    def flush(self) -> None:
        raise NotImplementedError
