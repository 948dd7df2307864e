"""Model storage (``model.storage``): the weights' volume, its read-only mount, and for an
object-store URI the init container that fetches it.

A PVC is mounted as it is (read-only). A URI is fetched before the model container starts
into an emptyDir of ``size``, which the pod's ephemeral storage counts: the model
container's ``ephemeral-storage`` request and limit grow by it.
"""

from __future__ import annotations

from typing import Any

from servestack.config.models import DEFAULT_FETCH_IMAGE, DeploymentSpec, ModelStorage
from servestack.config.quantities import format_memory, memory_bytes
from servestack.manifests.provenance import opt, src

Manifest = dict[str, Any]

VOLUME = "model"
FETCHER = "fetch-model"
#: Fixed: fetching streams to disk; the model container's resources are the user's.
FETCH_RESOURCES = {"cpu": "500m", "memory": "1Gi"}


def storage(spec: DeploymentSpec) -> ModelStorage | None:
    return spec.model.storage


def source_field(s: ModelStorage) -> str:
    """The field the weights' volume, mount and MODEL_PATH exist because of."""
    return "model.storage.pvc" if s.pvc is not None else "model.storage.uri"


def volume(s: ModelStorage, after: tuple[str, ...] = ()) -> Manifest:
    """``after``: fields of the volumes before it (their presence decides its position)."""
    if s.pvc is not None:
        source: Manifest = {
            "persistentVolumeClaim": {
                "claimName": src(s.pvc, "model.storage.pvc"),
                "readOnly": True,
            }
        }
    else:
        source = {"emptyDir": {"sizeLimit": src(s.size, "model.storage.size")}}
    return opt({"name": VOLUME, **source}, source_field(s), via=after)


def mount(s: ModelStorage, after: tuple[str, ...] = ()) -> Manifest:
    """The same mount whichever the source: it exists because the section does."""
    return src(
        {
            "name": VOLUME,
            "mountPath": src(s.mount_path, "model.storage.mountPath"),
            "readOnly": True,
        },
        via=after,
        when=["model.storage.pvc", "model.storage.uri"],
    )


def ephemeral(spec: DeploymentSpec) -> str | None:
    """The model container's ephemeral storage: ``resources.storage`` plus a fetched
    model's emptyDir (None when neither is set)."""
    s = storage(spec)
    fetched = memory_bytes(s.size) if s is not None and s.uri is not None and s.size else 0
    own = memory_bytes(spec.resources.storage) if spec.resources.storage else 0
    if not fetched and not own:
        return None
    return format_memory(own + fetched)


def init_container(
    spec: DeploymentSpec, security: Manifest, scratch: list[Manifest]
) -> Manifest | None:
    """The fetcher of ``model.storage.uri``, with the model container's security context."""
    s = storage(spec)
    if s is None or s.uri is None:
        return None
    image = s.fetch_image or DEFAULT_FETCH_IMAGE
    return opt(
        {
            "name": FETCHER,
            "image": src(image, "model.storage.fetchImage"),
            "args": [src(s.uri, "model.storage.uri"), src(s.mount_path, "model.storage.mountPath")],
            "resources": {"requests": dict(FETCH_RESOURCES), "limits": dict(FETCH_RESOURCES)},
            # As the model container: a tag can move, and the fetcher must not run stale code.
            "imagePullPolicy": "Always",
            "securityContext": security,
            "volumeMounts": [
                *scratch,
                {"name": VOLUME, "mountPath": src(s.mount_path, "model.storage.mountPath")},
            ],
        },
        "model.storage.uri",
    )
