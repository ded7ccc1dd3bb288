"""Live run events over WebSocket: upstream's protocol on an API Gateway WebSocket API.

`events` builds upstream's event kinds and shapes; `protocol` parses requests and writes
replies; `outbox` posts to connections (API Gateway's management API); `sessions` is what
each WebSocket route does; `run_stream` numbers, keeps and delivers a run's events inside
RunFunction.
"""
