"""Operations on a model deployment, applied as reviewed edits of the stack file."""

from servestack.ops.operations import (
    OperationRefused,
    Workspace,
    get_operation,
    status,
    update_model_deployment,
)

__all__ = ["OperationRefused", "Workspace", "get_operation", "status", "update_model_deployment"]
