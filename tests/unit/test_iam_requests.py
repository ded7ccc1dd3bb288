"""An AWS call as the IAM requests AWS authorizes for it (flowdeploy.local.iam_requests)."""

from __future__ import annotations

from flowdeploy.local.iam_requests import IamRequest, Names, requests_for

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table"
QUEUE = "arn:aws:sqs:us-east-1:123456789012"
NAMES = Names({"arn:aws:kms:us-east-1:123456789012:key/1234abcd": "key-canonical"})


def actions(service: str, operation: str, params: dict[str, object]) -> list[tuple[str, str]]:
    return [(r.action, r.resource) for r in requests_for(service, operation, params, NAMES)]


def test_a_transaction_is_authorized_item_by_item() -> None:
    items = [
        {"Put": {"TableName": "A", "Item": {}}},
        {"Update": {"TableName": "B", "Key": {}}},
        {"Delete": {"TableName": "A", "Key": {}}},
        {"ConditionCheck": {"TableName": "B", "Key": {}}},
    ]
    assert actions("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", f"{TABLE}/A"),
        ("dynamodb:UpdateItem", f"{TABLE}/B"),
        ("dynamodb:DeleteItem", f"{TABLE}/A"),
        ("dynamodb:ConditionCheckItem", f"{TABLE}/B"),
    ]


def test_batches_once_per_table_and_queries_on_their_index() -> None:
    batch = {"RequestItems": {"A": {}, "B": {}}}
    assert actions("dynamodb", "BatchGetItem", batch) == [
        ("dynamodb:BatchGetItem", f"{TABLE}/A"),
        ("dynamodb:BatchGetItem", f"{TABLE}/B"),
    ]
    query = {"TableName": "A", "IndexName": "ByUser"}
    assert actions("dynamodb", "Query", query) == [("dynamodb:Query", f"{TABLE}/A/index/ByUser")]


def test_sqs_batch_calls_are_their_single_actions_on_the_queue_of_the_url() -> None:
    url = {"QueueUrl": "http://127.0.0.1:5000/123456789012/FlowRunQueue", "Entries": []}
    assert actions("sqs", "SendMessageBatch", url) == [("sqs:SendMessage", f"{QUEUE}:FlowRunQueue")]
    assert actions("sqs", "DeleteMessageBatch", url) == [
        ("sqs:DeleteMessage", f"{QUEUE}:FlowRunQueue")
    ]


def test_a_message_move_task_needs_what_sqs_does_with_the_callers_permissions() -> None:
    move = {"SourceArn": f"{QUEUE}:Dead", "DestinationArn": f"{QUEUE}:Live"}
    assert actions("sqs", "StartMessageMoveTask", move) == [
        ("sqs:StartMessageMoveTask", f"{QUEUE}:Dead"),
        ("sqs:ReceiveMessage", f"{QUEUE}:Dead"),
        ("sqs:DeleteMessage", f"{QUEUE}:Dead"),
        ("sqs:GetQueueAttributes", f"{QUEUE}:Dead"),
        ("sqs:SendMessage", f"{QUEUE}:Live"),
    ]


def test_kms_calls_carry_their_encryption_context_as_condition_keys() -> None:
    params = {
        "KeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
        "EncryptionContext": {"user_id": "u", "wallet_id": "w"},
    }
    (request,) = requests_for("kms", "Decrypt", params, NAMES)
    assert request == IamRequest("kms:Decrypt", "key-canonical")
    assert request.context == {
        "kms:CallerAccount": "123456789012",
        "kms:EncryptionContext:user_id": "u",
        "kms:EncryptionContext:wallet_id": "w",
        "kms:EncryptionContextKeys": ["user_id", "wallet_id"],
    }
    (by_alias,) = requests_for("kms", "Encrypt", {"KeyId": "alias/flowdeploy/wallets"}, NAMES)
    assert by_alias.context["kms:RequestAlias"] == "alias/flowdeploy/wallets"


def test_parameters_secrets_objects_and_unknown_calls() -> None:
    assert actions("ssm", "GetParameter", {"Name": "/flowdeploy/jwt-secret"}) == [
        ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/flowdeploy/jwt-secret")
    ]
    assert actions("s3", "GetObject", {"Bucket": "b", "Key": "k/1"}) == [
        ("s3:GetObject", "arn:aws:s3:::b/k/1")
    ]
    assert actions("s3", "ListObjectsV2", {"Bucket": "b"}) == [("s3:ListBucket", "arn:aws:s3:::b")]
    # Judged against "*": allowed only where a policy allows it on any resource.
    assert actions("events", "PutEvents", {"Entries": []}) == [("events:PutEvents", "*")]


def test_a_post_to_a_connection_is_manage_connections_on_its_stage_method_and_connection() -> None:
    from flowdeploy.local.iam_requests import management_requests

    names = Names({"localws": "WebSocketApi"})
    arn = "arn:aws:execute-api:us-east-1:123456789012:WebSocketApi/ws"
    aws = "https://localws.execute-api.us-east-1.amazonaws.com/ws/@connections/L0SM9cOFvHcCIhw%3D"
    local = "http://127.0.0.1:3000/ws/@connections/L0SM9cOFvHcCIhw%3D"
    for url in (aws, local):  # moto's mock in-process, and the local stack's own server
        assert management_requests(url, "POST", names) == [
            IamRequest("execute-api:ManageConnections", f"{arn}/POST/@connections/L0SM9cOFvHcCIhw=")
        ]
    assert management_requests(local, "DELETE", names)[0].resource.startswith(f"{arn}/DELETE/")
