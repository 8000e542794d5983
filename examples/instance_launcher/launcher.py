"""An integrated service for Trent, written only against Trent's public protocol
(docs/integrated-services.md): an "instance launcher" playing EC2 Auto Scaling, EBS and a small
object store, as in seed 004.

It holds the credentials of three registered services (`[[integrated_service]]` in trent.toml,
files `<data_dir>/services/<name>.credentials`):

* `autoscaling.amazonaws.com` — LaunchInstance: assumes the customer account's
  `AWSServiceRoleForAutoScaling` and, as that role, checks the key (DescribeKey: only symmetric
  keys encrypt volumes) and creates a grant for the volume's EBS role
  (`AWSServiceRoleForEc2`), which Trent sees with `kms:GrantIsForAWSResource: true`;
* `ec2.amazonaws.com` — the volume itself: as `AWSServiceRoleForEc2`, using only that grant,
  generates the volume's data key (LaunchInstance) and decrypts it (ReadVolume). Revoking the
  grant makes the volume unreadable — the seed's warning;
* `storage.example.internal` — PutObject/GetObject with forward access: the customer signs its
  request to this service with SigV4 (service name `storage.example.internal`); the launcher
  forwards that signed request to Trent with its own KMS call, which Trent then authorizes as
  the customer with `kms:ViaService = storage.example.internal`.

The API: `POST /` with a JSON body `{"Action": ..., ...}`, answered with JSON. LaunchInstance
and ReadVolume take the customer's `Account` as given: a real service authenticates its callers
first (for instance with a forwarded call, as the object store does). Run it with
`python launcher.py --trent URL --data-dir DIR [--listen 127.0.0.1:8600]`.
"""

import argparse
import base64
import configparser
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AUTOSCALING = "autoscaling.amazonaws.com"
EC2 = "ec2.amazonaws.com"
STORAGE = "storage.example.internal"
FORWARDED_HEADER = "X-Trent-Forwarded-Request"
# What the volume's EBS role may do with the key (a subset of the Auto Scaling grant's, so the
# cross-account variant can delegate it).
VOLUME_OPERATIONS = ["Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey"]


def read_credentials(data_dir: Path, service: str) -> tuple[str, str]:
    """The service's credentials, from the file `trent serve` wrote."""
    parser = configparser.ConfigParser()
    parser.read(data_dir / "services" / f"{service}.credentials")
    return parser["trent"]["aws_access_key_id"], parser["trent"]["aws_secret_access_key"]


def slr_arn(account: str, service: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/aws-service-role/{service}/{name}"


def forwarded_value(method: str, uri: str, headers: list[tuple[str, str]], body: bytes) -> str:
    """The `X-Trent-Forwarded-Request` header: the customer's signed request, as received."""
    document = {"method": method, "uri": uri, "headers": headers, "body": base64.b64encode(body).decode()}
    return base64.b64encode(json.dumps(document).encode()).decode()


class Launcher:
    def __init__(self, trent_endpoint: str, region: str, credentials: dict[str, tuple[str, str]]):
        self.endpoint = trent_endpoint
        self.region = region
        self.credentials = credentials
        self.volumes: dict[str, dict] = {}
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()

    # --- clients -------------------------------------------------------------------------

    def client(self, api: str, akid: str, secret: str, token: str | None = None, forwarded: str | None = None):
        session = boto3.session.Session(
            aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token, region_name=self.region
        )
        client = session.client(api, endpoint_url=self.endpoint, config=Config(retries={"total_max_attempts": 1}))
        if forwarded is not None:
            # Added before signing, so the service's own signature covers it too.
            def add(request, **_):
                request.headers[FORWARDED_HEADER] = forwarded

            client.meta.events.register_first(f"before-sign.{api}", add)
        return client

    def service_client(self, service: str, api: str, forwarded: str | None = None):
        akid, secret = self.credentials[service]
        return self.client(api, akid, secret, forwarded=forwarded)

    def as_role(self, service: str, role_arn: str, api: str = "kms"):
        """A client acting as `role_arn`, which only `service` may assume."""
        creds = self.service_client(service, "sts").assume_role(
            RoleArn=role_arn, RoleSessionName=service.split(".")[0]
        )["Credentials"]
        return self.client(api, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    # --- Auto Scaling + EBS (service-linked roles) ---------------------------------------

    def launch_instance(self, account: str, key_id: str, data: bytes) -> dict:
        autoscaling = self.as_role(AUTOSCALING, slr_arn(account, AUTOSCALING, "AWSServiceRoleForAutoScaling"))
        key = autoscaling.describe_key(KeyId=key_id)["KeyMetadata"]
        if key["KeySpec"] != "SYMMETRIC_DEFAULT":
            raise ValueError("only symmetric keys may encrypt volumes")
        volume_id = "vol-" + uuid.uuid4().hex[:17]
        ebs_role = slr_arn(account, EC2, "AWSServiceRoleForEc2")
        grant = autoscaling.create_grant(
            KeyId=key["Arn"],
            GranteePrincipal=ebs_role,
            Operations=VOLUME_OPERATIONS,
            Name=volume_id,
        )
        ebs = self.as_role(EC2, ebs_role)
        data_key = ebs.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256", GrantTokens=[grant["GrantToken"]])
        nonce = os.urandom(12)
        sealed = AESGCM(data_key["Plaintext"]).encrypt(nonce, data, volume_id.encode())
        with self.lock:
            self.volumes[volume_id] = {
                "account": account,
                "encrypted_key": data_key["CiphertextBlob"],
                "nonce": nonce,
                "sealed": sealed,
            }
        return {"InstanceId": "i-" + uuid.uuid4().hex[:17], "VolumeId": volume_id, "GrantId": grant["GrantId"]}

    def read_volume(self, volume_id: str) -> bytes:
        with self.lock:
            volume = self.volumes[volume_id]
        ebs = self.as_role(EC2, slr_arn(volume["account"], EC2, "AWSServiceRoleForEc2"))
        data_key = ebs.decrypt(CiphertextBlob=volume["encrypted_key"])["Plaintext"]
        return AESGCM(data_key).decrypt(volume["nonce"], volume["sealed"], volume_id.encode())

    # --- the object store (forward access) -----------------------------------------------

    def put_object(self, forwarded: str, key_id: str, name: str, data: bytes) -> None:
        kms = self.service_client(STORAGE, "kms", forwarded=forwarded)
        blob = kms.encrypt(KeyId=key_id, Plaintext=data, EncryptionContext={"object": name})["CiphertextBlob"]
        with self.lock:
            self.objects[name] = blob

    def get_object(self, forwarded: str, name: str) -> bytes:
        with self.lock:
            blob = self.objects[name]
        kms = self.service_client(STORAGE, "kms", forwarded=forwarded)
        return kms.decrypt(CiphertextBlob=blob, EncryptionContext={"object": name})["Plaintext"]

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict]:
        request = json.loads(body or b"{}")
        action = request.get("Action")
        try:
            if action == "LaunchInstance":
                data = base64.b64decode(request["Data"])
                return 200, self.launch_instance(request["Account"], request["KeyId"], data)
            if action == "ReadVolume":
                return 200, {"Data": base64.b64encode(self.read_volume(request["VolumeId"])).decode()}
            # The object store's calls are the customer's: its signed request goes along.
            forwarded = forwarded_value(method, uri, headers, body)
            if action == "PutObject":
                self.put_object(forwarded, request["KeyId"], request["Name"], base64.b64decode(request["Data"]))
                return 200, {}
            if action == "GetObject":
                return 200, {"Data": base64.b64encode(self.get_object(forwarded, request["Name"])).decode()}
            return 400, {"Error": f"unknown action {action!r}"}
        except ClientError as e:
            return 403, {"Error": e.response["Error"]["Code"], "Message": e.response["Error"]["Message"]}
        except (KeyError, ValueError) as e:
            return 400, {"Error": str(e)}

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        launcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = launcher.handle("POST", self.path, list(self.headers.items()), body)
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trent", required=True, help="Trent's endpoint URL")
    parser.add_argument("--data-dir", required=True, type=Path, help="Trent's data directory")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--listen", default="127.0.0.1:8600")
    args = parser.parse_args()
    credentials = {s: read_credentials(args.data_dir, s) for s in [AUTOSCALING, EC2, STORAGE]}
    host, port = args.listen.rsplit(":", 1)
    server = Launcher(args.trent, args.region, credentials).serve(host, int(port))
    print(f"instance launcher on http://{host}:{server.server_address[1]}/", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
