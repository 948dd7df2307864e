"""Every label and annotation key servestack writes or selects on, in one place.

Keys are contract: a Deployment's selector is immutable, and tools (the review tool, the
forbidden-edit guard, the live status) find servestack's objects by them.
"""

from __future__ import annotations

PREFIX = "servestack.io"

# --- standard keys -----------------------------------------------------------------------
NAME = "app.kubernetes.io/name"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "servestack"
NAMESPACE_NAME = "kubernetes.io/metadata.name"
#: The label the Gateway API asks implementations to put on a Gateway's own pods (GEP-1762).
GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name"
INGRESS_BANDWIDTH = "kubernetes.io/ingress-bandwidth"
EGRESS_BANDWIDTH = "kubernetes.io/egress-bandwidth"

# --- servestack labels -----------------------------------------------------------------
MODEL_TYPE = f"{PREFIX}/model-type"
ENVIRONMENT = f"{PREFIX}/environment"
PROCESSING = f"{PREFIX}/processing"
TRACK = f"{PREFIX}/track"
MODEL_VERSION = f"{PREFIX}/model-version"
GPU = f"{PREFIX}/gpu"
NODE_POOL = f"{PREFIX}/node-pool"
#: A `local` pool's node: its capacity type (`spot`, `on-demand`), as the clouds label theirs.
CAPACITY_TYPE = f"{PREFIX}/capacity-type"
#: User tags become ``tags.servestack.io/<key>`` labels on metadata (never on pods).
TAG_PREFIX = f"tags.{PREFIX}/"

#: The Kubernetes provider's annotation naming an object's server-side apply field manager.
FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager"
#: The one field manager of every object servestack applies to a cluster. Without it the
#: provider makes up a random one per create, so an object created again after a kill (an
#: update whose checkpoint was never written) would have two managers, and a changed value
#: a 409 conflict between them.
FIELD_MANAGER = MANAGER
#: The Kubernetes provider's annotation that lets an object's apply take a field another
#: manager owns, instead of failing with a 409 conflict.
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
#: The Pulumi type of a Kubernetes Deployment.
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"


def applied_annotations(type_token: str) -> dict[str, str]:
    """The annotations an object servestack applies to a cluster carries for the provider
    (render mode: none), by its Pulumi type (``kubernetes:apps/v1:Deployment``).

    A Deployment's also forces its apply: an autoscaler's controller owns ``spec.replicas``
    once it has changed the count (kube-controller-manager, through the scale subresource),
    so a Deployment leaving its autoscaler (``active: false``, ``autoscaling`` removed or
    disabled) would meet a 409 conflict applying its own count (measured on the local
    cluster). servestack is the one manager of every field it declares.
    """
    found = {FIELD_MANAGER_ANNOTATION: FIELD_MANAGER}
    if type_token == DEPLOYMENT_TYPE:
        found[PATCH_FORCE_ANNOTATION] = "true"
    return found


# --- servestack annotations -------------------------------------------------------------
CLUSTER = f"{PREFIX}/cluster"
DESCRIPTION = f"{PREFIX}/description"
#: A `local` pool's node: the capacity of the machine it stands for (JSON). The local
#: cluster's kwok stage copies it into the Node's status (the provider cannot write status).
CAPACITY = f"{PREFIX}/capacity"
#: A `local` pool's node: what it offers pods (JSON), its capacity less the kubelet's
#: reserves (servestack.config.capacity); the kwok stage makes it the Node's allocatable.
ALLOCATABLE = f"{PREFIX}/allocatable"

# --- the local control plane's own (`make cluster`), not the components' ---------------
# Its tool runs without servestack installed, so it spells these keys out; the repository's
# unit tests fail when a key it uses is not one of this module's.
#: Label of the local cluster's own system node, which belongs to no servestack node pool.
SYSTEM_POOL = f"{PREFIX}/pool"
#: Annotation that nudges a CRD stuck before Established.
ESTABLISH_NUDGE = f"{PREFIX}/establish-nudge"


def tag(key: str) -> str:
    return f"{TAG_PREFIX}{key}"
