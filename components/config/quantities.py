"""Kubernetes quantities for CPU and memory, parsed once at the config edge.

Users write `cpu: 4`, `cpu: "500m"`, `memory: 16Gi` or `memory: 16` (GiB). Inside the
library every quantity is a canonical Kubernetes string plus an integer in the unit the
platform API uses (millicores, MiB).
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

_CPU_RE = re.compile(r"^(?P<num>\d+(\.\d+)?)(?P<unit>m?)$")
_MEM_RE = re.compile(r"^(?P<num>\d+(\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEM_FACTORS_BYTES = {
    None: Decimal(1),
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
    "Ti": Decimal(1024**4),
    "K": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
}


def cpu_millicores(value: object) -> int:
    """Parse a CPU amount (cores as a number, or a quantity such as "500m") to millicores.

    Raises:
        ValueError: with a message that says what is allowed.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number of cores (e.g. 4, 0.5) or millicores (e.g. '500m')")
    if isinstance(value, int | float):
        millis = Decimal(str(value)) * 1000
    elif isinstance(value, str) and (m := _CPU_RE.match(value.strip())):
        num = Decimal(m["num"])
        millis = num if m["unit"] == "m" else num * 1000
    else:
        raise ValueError("must be a number of cores (e.g. 4, 0.5) or millicores (e.g. '500m')")
    if millis != millis.to_integral_value():
        raise ValueError("is finer than one millicore")
    if millis <= 0:
        raise ValueError("must be more than 0")
    return int(millis)


def format_cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_bytes(value: object, *, bare_unit: str = "Gi") -> int:
    """Parse a memory quantity to bytes. A bare number means `bare_unit` (GiB by default).

    Raises:
        ValueError: with a message that says what is allowed.
    """
    allowed = "must be a Kubernetes quantity such as 512Mi or 16Gi, or a number of GiB"
    if isinstance(value, bool):
        raise ValueError(allowed)
    try:
        if isinstance(value, int | float):
            total = Decimal(str(value)) * _MEM_FACTORS_BYTES[bare_unit]
        elif isinstance(value, str) and (m := _MEM_RE.match(value.strip())):
            unit = m["unit"]
            factor = _MEM_FACTORS_BYTES[unit] if unit else _MEM_FACTORS_BYTES[bare_unit]
            total = Decimal(m["num"]) * factor
        else:
            raise ValueError(allowed)
    except InvalidOperation as exc:  # pragma: no cover - regex already guards digits
        raise ValueError(allowed) from exc
    if total <= 0:
        raise ValueError("must be more than 0")
    return int(total)


@functools.lru_cache(maxsize=1024)
def format_memory(n_bytes: int) -> str:
    """Shortest exact suffixed quantity for a byte count (never a bare number, which this
    config reads as GiB). Amounts not a whole number of K/Ki round up to whole KiB."""
    exact = [
        (n_bytes // int(f), u)
        for u, f in _MEM_FACTORS_BYTES.items()
        if u is not None and n_bytes % int(f) == 0
    ]
    if not exact:
        return format_memory(-(-n_bytes // 1024) * 1024)
    number, unit = min(exact, key=lambda c: (len(str(c[0])), not c[1].endswith("i")))
    return f"{number}{unit}"
