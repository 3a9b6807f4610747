"""coursekit cluster: the TLS certificates of a grading cluster, and its scheduler.

  coursekit cluster certs [FOLDER]          new CA and certificates (default: .coursekit/cluster)
  coursekit cluster scheduler FOLDER        a Dask scheduler that accepts only the cluster's certificates
"""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import fail


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    certs = actions.add_parser("certs", help="write a new CA certificate and the scheduler's, workers' and "
                                             "client's certificates and keys into an empty folder")
    certs.add_argument("folder", nargs="?", default=None,
                       help="where (default: the course's .coursekit/cluster, where autograde looks)")
    certs.add_argument("--days", type=int, default=365, help="validity in days (default: 365)")
    scheduler = actions.add_parser("scheduler", help="run a Dask scheduler that requires TLS with the "
                                                     "cluster's certificates")
    scheduler.add_argument("folder", help="folder holding ca.pem, scheduler.pem and scheduler.key")
    scheduler.add_argument("--host", default="0.0.0.0", help="interface to listen on (default: all)")
    scheduler.add_argument("--port", type=int, default=8786, help="port (default: 8786)")


def run(args: argparse.Namespace) -> int:
    from coursekit.course import Course, CourseError

    try:
        if args.action == "certs":
            from coursekit.cluster_tls import generate_certificates

            folder = Path(args.folder) if args.folder else Course.open(args.course_dir).root / ".coursekit" / "cluster"
            generate_certificates(folder, days=args.days)
            print(f"cluster certificates in {folder}: give ca.pem, worker.pem and worker.key to each worker "
                  "machine (owner-only), scheduler.* to the scheduler; client.* stay with autograde")
            return 0
    except CourseError as err:
        return fail(str(err))
    from coursekit.cluster import run_scheduler

    return run_scheduler(args.folder, args.host, args.port)
