"""The local stack (`make dev`), `make invoke` and `make token`: development tools only.

Never imported by Lambda code.
"""

REGION = "us-east-1"
ACCOUNT = "123456789012"  # the account the local stack pretends to be
# Signs access tokens on the local stack only; AWS reads the secret from SSM.
DEV_JWT_SECRET = "flowdeploy-local-development-secret-not-for-aws"  # noqa: S105
