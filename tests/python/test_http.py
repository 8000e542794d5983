"""The awsJson1.1 wire protocol at the HTTP level: raw requests, signed with botocore's SigV4 or not at all."""

import datetime
import json
import unittest.mock
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import AKID_A, REGION, SECRET_A

JSON_11 = "application/x-amz-json-1.1"


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def error_type(self) -> str:
        # `__type` may carry a namespace prefix (`com.amazonaws.kms#NotFoundException`).
        return self.json()["__type"].rsplit("#", 1)[-1]


def send(url: str, body: bytes, headers: dict, method: str = "POST") -> Response:
    req = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def signed_headers(endpoint: str, target: str, body: bytes, akid=AKID_A, secret=SECRET_A, when=None) -> dict:
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": JSON_11, "X-Amz-Target": target},
    )
    auth = SigV4Auth(Credentials(akid, secret), "kms", REGION)
    if when is not None:
        # botocore stamps X-Amz-Date from its clock; sign as of another time by pinning that clock.
        with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(request)
    else:
        auth.add_auth(request)
    return dict(request.headers.items())


def call(endpoint: str, target: str, body: bytes, **kw) -> Response:
    return send(endpoint + "/", body, signed_headers(endpoint, target, body, **kw))


def test_a_signed_call_succeeds_and_has_a_request_id(endpoint):
    r = call(endpoint, "TrentService.ListKeys", b"{}")
    assert r.status == 200, r.body
    assert r.headers["Content-Type"].startswith(JSON_11)
    assert r.json()["Keys"] == []
    assert r.headers.get("x-amzn-RequestId")

    created = call(endpoint, "TrentService.CreateKey", b'{"Description":"raw"}')
    assert created.status == 200, created.body
    key_id = created.json()["KeyMetadata"]["KeyId"]
    listed = call(endpoint, "TrentService.ListKeys", b"{}").json()
    assert [k["KeyId"] for k in listed["Keys"]] == [key_id]


def test_unsigned_request_is_missing_authentication_token(endpoint):
    r = send(endpoint + "/", b"{}", {"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"})
    assert r.status == 400
    assert r.error_type == "MissingAuthenticationTokenException"
    assert r.headers.get("x-amzn-RequestId")


def test_malformed_json_with_a_valid_signature_is_serialization_exception(endpoint):
    for body in [b"{not json", b"[1, 2", b'{"KeyId": }']:
        r = call(endpoint, "TrentService.DescribeKey", body)
        assert r.status == 400, body
        assert r.error_type == "SerializationException", (body, r.body)
        assert r.headers.get("x-amzn-RequestId")


def test_wrongly_typed_field_is_serialization_exception(endpoint):
    r = call(endpoint, "TrentService.GenerateRandom", b'{"NumberOfBytes": "thirty-two"}')
    assert r.status == 400
    assert r.error_type == "SerializationException", r.body


def test_unknown_operation(endpoint):
    r = call(endpoint, "TrentService.FlyToTheMoon", b"{}")
    assert r.status == 400
    assert r.error_type == "UnknownOperationException", r.body
    assert r.headers.get("x-amzn-RequestId")


def test_body_changed_after_signing_is_invalid_signature(endpoint):
    body = b'{"NumberOfBytes": 16}'
    headers = signed_headers(endpoint, "TrentService.GenerateRandom", body)
    r = send(endpoint + "/", b'{"NumberOfBytes": 17}', headers)
    assert r.status == 400
    assert r.error_type == "InvalidSignatureException", r.body

    # The untouched request is fine.
    ok = send(endpoint + "/", body, headers)
    assert ok.status == 200, ok.body


def test_target_changed_after_signing_is_invalid_signature(endpoint):
    headers = signed_headers(endpoint, "TrentService.ListKeys", b"{}")
    headers["X-Amz-Target"] = "TrentService.CreateKey"
    r = send(endpoint + "/", b"{}", headers)
    assert r.status == 400
    assert r.error_type == "InvalidSignatureException", r.body
    # ...and no key was created.
    assert call(endpoint, "TrentService.ListKeys", b"{}").json()["Keys"] == []


def message(r: Response) -> str:
    doc = r.json()
    return doc.get("message") or doc.get("Message") or ""


def test_signatures_outside_the_five_minute_window_are_rejected(endpoint):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    stale = call(endpoint, "TrentService.ListKeys", b"{}", when=now - datetime.timedelta(hours=1))
    assert stale.status == 400
    assert stale.error_type == "InvalidSignatureException", stale.body
    assert "Signature expired" in message(stale)

    future = call(endpoint, "TrentService.ListKeys", b"{}", when=now + datetime.timedelta(hours=1))
    assert future.status == 400
    assert future.error_type == "InvalidSignatureException", future.body
    assert "not yet current" in message(future)

    # A little clock skew is tolerated.
    slightly_off = call(endpoint, "TrentService.ListKeys", b"{}", when=now - datetime.timedelta(minutes=2))
    assert slightly_off.status == 200, slightly_off.body


def test_error_body_shape(endpoint):
    body = json.dumps({"KeyId": "00000000-0000-0000-0000-000000000000"}).encode()
    r = call(endpoint, "TrentService.DescribeKey", body)
    assert r.status == 400
    assert r.headers["Content-Type"].startswith(JSON_11)
    assert r.error_type == "NotFoundException"
    assert "does not exist" in message(r)


def test_every_response_has_a_distinct_request_id(endpoint):
    responses = [
        call(endpoint, "TrentService.ListKeys", b"{}"),
        call(endpoint, "TrentService.Nope", b"{}"),
        call(endpoint, "TrentService.ListKeys", b"{oops"),
        call(endpoint, "TrentService.ListKeys", b"{}", secret="wrong"),
        send(endpoint + "/", b"{}", {"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"}),
        send(endpoint + "/", b"", {}, method="GET"),
    ]
    ids = [r.headers.get("x-amzn-RequestId") for r in responses]
    assert all(ids), [(r.status, r.headers.items()) for r in responses]
    assert len(set(ids)) == len(ids)

