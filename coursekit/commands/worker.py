"""coursekit worker: grade notebooks for `coursekit autograde --scheduler` on this machine (one Dask worker)."""
from __future__ import annotations

import argparse

from coursekit.cluster import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scheduler", help="address of the Dask scheduler, e.g. tls://HOST:8786")
    parser.add_argument("--certificates", required=True, metavar="FOLDER",
                        help="folder holding the cluster's ca.pem, worker.pem and worker.key "
                             "(from `coursekit cluster certs`)")
    parser.add_argument("--name", default=None, help="this worker's name on the scheduler's dashboard")
    parser.add_argument("--wait", type=float, default=86400.0,
                        help="seconds to wait for a grading run to publish its environment (default: a day)")


def run(args: argparse.Namespace) -> int:
    return serve(args.scheduler, args.certificates, name=args.name, wait=args.wait)
