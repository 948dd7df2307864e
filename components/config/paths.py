"""Field paths: the one way a config field is named to users.

Every message, diff row, explanation, operation result and allowance names a field as
``deployments.<name>.<camelPath>`` (``deployments.bert-api.autoscaling.minReplicas``),
``nodePools.<name>.<camelPath>`` or ``<stackKey>.<camelPath>`` (``cluster.name``). The
field-effect table uses the same dialect with the placeholder ``<name>``
(``deployments.<name>.autoscaling.minReplicas``), so a concrete path and its table row
differ only in that one segment. Item names are DNS labels, so they never hold a dot.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Stack keys whose value is a list of named items.
COLLECTIONS = ("deployments", "nodePools")
#: The placeholder for "any item" in table paths.
ANY = "<name>"


@dataclass(frozen=True, order=True)
class FieldPath:
    """A config field, concrete (``deployments.bert.replicas``) or generic (``<name>``)."""

    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        return cls(tuple(text.split("."))) if text else cls(())

    @classmethod
    def of(cls, *parts: str) -> FieldPath:
        """Join segments, each of which may itself be dotted (``of("deployments", n, "a.b")``)."""
        out: list[str] = []
        for p in parts:
            if p:
                out.extend(str(p).split("."))
        return cls(tuple(out))

    @classmethod
    def item(cls, collection: str, name: str | None, *rest: str) -> FieldPath:
        """A field of one named deployment or node pool."""
        return cls.of(collection, name or ANY, *rest)

    def __str__(self) -> str:
        return ".".join(self.parts)

    def __truediv__(self, other: str) -> FieldPath:
        return FieldPath.of(*self.parts, other)

    @property
    def collection(self) -> str | None:
        return self.parts[0] if self.parts and self.parts[0] in COLLECTIONS else None

    @property
    def item_name(self) -> str | None:
        """The deployment or node pool this field belongs to (None for stack keys)."""
        if self.collection and len(self.parts) > 1 and self.parts[1] != ANY:
            return self.parts[1]
        return None

    @property
    def rest(self) -> str:
        """The path inside the item (``autoscaling.minReplicas``), or the whole stack path."""
        return ".".join(self.parts[2:] if self.collection else self.parts)

    def generic(self) -> FieldPath:
        """The table form: the item's name replaced by ``<name>``."""
        if self.collection and len(self.parts) > 1:
            return FieldPath((self.parts[0], ANY, *self.parts[2:]))
        return self

    def named(self, name: str) -> FieldPath:
        """The concrete form for one item."""
        if self.collection and len(self.parts) > 1:
            return FieldPath((self.parts[0], name, *self.parts[2:]))
        return self

    def parent(self) -> FieldPath:
        return FieldPath(self.parts[:-1])

    def startswith(self, prefix: FieldPath) -> bool:
        return self.parts[: len(prefix.parts)] == prefix.parts


def deployment(name: str | None, *rest: str) -> str:
    """``deployments.<name>.<rest>`` as text, for messages."""
    return str(FieldPath.item("deployments", name, *rest))


def node_pool(name: str | None, *rest: str) -> str:
    """``nodePools.<name>.<rest>`` as text, for messages."""
    return str(FieldPath.item("nodePools", name, *rest))
