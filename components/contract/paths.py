"""The one path dialect, as the contract speaks it (the field-effect table, review, ops).

It is defined with the config whose fields it names, in :mod:`servestack.config.paths`, so
that config's own messages use it without importing upwards; this module re-exports it.
"""

from __future__ import annotations

from servestack.config.paths import ANY as ANY
from servestack.config.paths import COLLECTIONS as COLLECTIONS
from servestack.config.paths import FieldPath as FieldPath
from servestack.config.paths import deployment as deployment
from servestack.config.paths import node_pool as node_pool
