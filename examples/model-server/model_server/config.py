"""Settings read from the environment (all optional)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # Shown in /predict's answer and in the model_info series.
    model_id: str = "iris-logreg"
    model_version: str = "dev"
    # Fault injection for a "bad canary". error_rate: fraction of /predict requests answered
    # 500, spread evenly (request n fails when floor(n*rate) > floor((n-1)*rate), so after
    # n requests exactly floor(n*rate) have failed). extra_latency_ms: sleep added to every
    # /predict; latency_jitter_ms: plus a uniform random 0..jitter ms from an RNG seeded
    # with seed.
    error_rate: float = 0.0
    extra_latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    seed: int = 0
    # Loading is done in the background after start-up; /ready answers 503 until it is done.
    # load_delay_s: wait this long first. load_gate: wait until this file exists (for tests
    # that need to see the 503 window for certain).
    load_delay_s: float = 0.0
    load_gate: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env

        def num(name: str, default: float, lo: float, hi: float | None = None) -> float:
            raw = e.get(name, "").strip()
            if not raw:
                return default
            try:
                v = float(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if not (v >= lo and (hi is None or v <= hi)):
                bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise ConfigError(f"{name}={raw!r} is out of range {bound}")
            return v

        return cls(
            model_id=e.get("MODEL_ID", "").strip() or cls.model_id,
            model_version=e.get("MODEL_VERSION", "").strip() or cls.model_version,
            error_rate=num("MODEL_SERVER_ERROR_RATE", 0.0, 0.0, 1.0),
            extra_latency_ms=num("MODEL_SERVER_EXTRA_LATENCY_MS", 0.0, 0.0, 60_000.0),
            latency_jitter_ms=num("MODEL_SERVER_LATENCY_JITTER_MS", 0.0, 0.0, 60_000.0),
            seed=int(num("MODEL_SERVER_SEED", 0.0, 0.0)),
            load_delay_s=num("MODEL_SERVER_LOAD_DELAY_S", 0.0, 0.0, 3600.0),
            load_gate=e.get("MODEL_SERVER_LOAD_GATE", "").strip() or None,
        )


class FaultInjector:
    """Decides, request by request, whether /predict fails and how long it sleeps first.

    Deterministic: the failures are spread evenly over the request sequence and the jitter
    comes from a seeded RNG, so a test knows what to expect.
    """

    def __init__(self, settings: Settings) -> None:
        import random

        self._rate = settings.error_rate
        self._base_s = settings.extra_latency_ms / 1000.0
        self._jitter_s = settings.latency_jitter_ms / 1000.0
        self._rng = random.Random(settings.seed)
        self._n = 0

    def next(self) -> tuple[bool, float]:
        """(fail?, seconds to sleep) for the next /predict request."""
        self._n += 1
        n, r = self._n, self._rate
        fail = int(n * r) > int((n - 1) * r)
        delay = self._base_s
        if self._jitter_s > 0:
            delay += self._rng.uniform(0.0, self._jitter_s)
        return fail, delay
