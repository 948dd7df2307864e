"""A real Kubernetes control plane on 127.0.0.1 for local tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake kubelets), built by
tools/build-cluster.sh. Standard library only (plus the `openssl` command for certificates).

The command line of tools/cluster.py; the paragraph above is its --help description.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from .common import HOST, ClusterError, _log
from .karpenter import generate_instance_types
from .lifecycle import down, up
from .paths import kubeconfig_path, repo_root
from .report import status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/cluster.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="repo root (default: this repo)")
    sub = p.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start (or find running) and print the export line")
    p_up.add_argument("--timeout", type=float, default=120)
    p_up.add_argument(
        "--karpenter",
        nargs="?",
        const="",
        default=None,
        metavar="INSTANCE_TYPES",
        help="also run Karpenter's kwok provider (for cluster provider karpenter), with this "
        "instance types file (default: generated from servestack's machine table)",
    )
    p_down = sub.add_parser("down", help="stop by recorded pids")
    p_down.add_argument("--purge", action="store_true", help="also remove .cluster/")
    p_status = sub.add_parser("status", help="running?, ports, memory, nodes")
    p_status.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print the export line")
    args = p.parse_args(argv)
    root = (args.root or repo_root()).resolve()
    try:
        if args.cmd == "up":
            types = None
            if args.karpenter is not None:
                types = Path(args.karpenter) if args.karpenter else None
                if types is None:
                    (root / ".cluster").mkdir(parents=True, exist_ok=True)
                    types = generate_instance_types(
                        root, root / ".cluster" / "karpenter-instance-types.json"
                    )
            info = up(root, timeout=args.timeout, karpenter=types)
            print(info.export_line())
        elif args.cmd == "down":
            down(root, purge=args.purge)
        elif args.cmd == "env":
            print(f"export KUBECONFIG={kubeconfig_path(root)}")
        elif args.cmd == "status":
            st = status(root)
            if args.json:
                print(json.dumps(st, indent=1))
            else:
                print(f"running: {'yes' if st['running'] else 'no'}  ({st['run_dir']})")
                for name, c in st["components"].items():
                    port = st["ports"].get(name) or st["ports"].get(f"{name}-health", "")
                    print(
                        f"  {name:<24} pid {c['pid']:<8} {'alive' if c['alive'] else 'dead ':<6}"
                        f" {HOST}:{port:<6} rss {c['rss_mib']:.0f} MiB"
                    )
                if st["components"]:
                    print(
                        f"  etcd peer port {st['ports'].get('etcd-peer')}; "
                        f"total rss {st['rss_mib_total']:.0f} MiB"
                    )
                for n in st["nodes"]:
                    a = n["allocatable"]
                    print(
                        f"  node {n['name']}: {'Ready' if n['ready'] else 'NotReady'}"
                        f" pool={n['pool']} cpu={a.get('cpu')} memory={a.get('memory')}"
                        f" pods={a.get('pods')}"
                    )
                if st["running"]:
                    print(f"export KUBECONFIG={st['kubeconfig']}")
            return 0 if st["running"] else 1
    except (ClusterError, subprocess.CalledProcessError) as e:
        _log(f"error: {e}")
        return 1
    return 0
