"""`make token USER=<uuid>`: print an access token the local stack accepts."""

from __future__ import annotations

import argparse
import os
import sys
import uuid

from flowdeploy.auth import issue_access_token
from flowdeploy.local import DEV_JWT_SECRET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowdeploy.local.token", description=__doc__)
    parser.add_argument("user", nargs="?", default="", help="user id (UUID); random if omitted")
    parser.add_argument("--hours", type=float, default=24.0, help="lifetime (default 24)")
    args = parser.parse_args(argv)
    try:
        user = str(uuid.UUID(args.user)) if args.user else str(uuid.uuid4())
    except ValueError:
        print(f"USER must be a UUID, got {args.user!r}", file=sys.stderr)
        return 2
    secret = os.environ.get("JWT_SECRET", DEV_JWT_SECRET).encode()
    print(issue_access_token(user, secret, int(args.hours * 3600)))
    if not args.user:
        # stdout stays the bare token, for ACCESS_TOKEN=$(make -s token).
        print(
            f"an access token for user {user} (a new random one: make token USER=<uuid> "
            "chooses it)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
