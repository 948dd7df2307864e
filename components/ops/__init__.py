"""Operations on a model deployment, applied as reviewed edits of the stack file.

Lazy (PEP 562): importing a submodule such as :mod:`servestack.ops.live` does not import
the engine runner (and with it pulumi), so the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = (
    "OperationRefused",
    "OperationStatus",
    "Workspace",
    "get_operation",
    "status",
    "update_model_deployment",
)
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'servestack.ops' has no attribute {name!r}")
    return getattr(importlib.import_module("servestack.ops.operations"), name)


if TYPE_CHECKING:
    from servestack.ops.operations import (
        OperationRefused as OperationRefused,
    )
    from servestack.ops.operations import (
        OperationStatus as OperationStatus,
    )
    from servestack.ops.operations import (
        Workspace as Workspace,
    )
    from servestack.ops.operations import (
        get_operation as get_operation,
    )
    from servestack.ops.operations import (
        status as status,
    )
    from servestack.ops.operations import (
        update_model_deployment as update_model_deployment,
    )
