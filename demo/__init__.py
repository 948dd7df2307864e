"""`make demo`: the main job on the embedded default, in two parts.

1. Render mode (:mod:`.render`): `pulumi up` of the dev stack to manifests in `out/dev/`,
   with a local file backend, and one edit of each effect class previewed by the engine.
2. The local cluster (:mod:`.cluster`): the same stack brought up on the control plane of
   `make cluster` on 127.0.0.1, one edit of each effect class applied and observed on the
   live objects, a stop and a start.

``SERVESTACK_DEMO=render`` runs part 1 only (no cluster binaries needed).
"""
