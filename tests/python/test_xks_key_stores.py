"""EXTERNAL_KEY_STORE custom key stores end to end: boto3 against `trent serve`, which reaches a
real `trent xks-proxy` (started here) over HTTPS with SigV4.

Trent trusts the proxy's throwaway CA and uses its port through `[xks_client]`
(`XksProxyUriEndpoint` cannot carry a port). Covered: create (the proxy's health is checked at
create: a wrong secret, a wrong path and a stopped proxy are refused with AWS's XKS errors),
describe (`XksProxyConfiguration`, never the secret), connect (CONNECTED, or FAILED with
`XKS_PROXY_NOT_REACHABLE` when the proxy is stopped and `INVALID_CREDENTIALS` when it no longer
accepts the store's credential; CONNECTED again once it does), rename, disconnect, delete, GenerateRandom refused, parameter
validation. Keys in such a store (Origin EXTERNAL_KEY_STORE + XksKeyId): create and its
GetKeyMetadata checks, double encryption through the proxy for Encrypt, Decrypt,
GenerateDataKey*, ReEncrypt, `Unavailable` while disconnected, the proxy stopped or the
external key deleted (KMSInvalidStateException), tampered ciphertext. The proxy over its
PKCS#11 backend (SoftHSM2): a token key encrypts and decrypts through Trent; disabled or
destroyed in the token, KMSInvalidStateException. UpdateCustomKeyStore of the XksProxy*
parameters (AWS's state rules, the proxy checked first, credential rotation while connected);
the endpoint allowlist; the periodic health check.
"""

import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from test_custom_key_stores import softhsm_module
from test_xks_proxy import AKID, SECRET, XksProxy


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def client_config(proxy, allowed=("localhost",)) -> str:
    """`[xks_client]` for `proxy`: its CA and port; `allowed`: the endpoint allowlist (the
    proxy is on loopback, which Trent refuses unless listed). Health checks every second."""
    port = proxy.base.split("localhost:", 1)[1].split("/", 1)[0]
    return (
        f"[xks_client]\nca_bundle = {json.dumps(str(proxy.ca))}\nport = {port}\ntimeout_ms = 5000\n"
        f"allowed_proxy_hosts = {json.dumps(list(allowed))}\nhealth_check_interval_s = 1\n"
    )


@pytest.fixture
def xks(tmp_path, start_trent):
    proxy = XksProxy(tmp_path / "proxy")
    server = start_trent(tmp_path / "trent" / "data", extra_config=client_config(proxy))
    yield proxy, server.client()
    proxy.stop()


@pytest.fixture
def xks_pkcs11(tmp_path, start_trent, monkeypatch):
    """`trent xks-proxy` over a fresh SoftHSM2 token (its PKCS#11 backend), and a Trent using it."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "xks-ekm", "--so-pin", "so-pin-1", "--pin", "ekm-pin-1"],
        check=True, capture_output=True,
    )
    pin_file = tmp_path / "ekm.pin"
    pin_file.write_text("ekm-pin-1\n")
    proxy = XksProxy(
        tmp_path / "proxy",
        pkcs11={"module": softhsm_module(), "token_label": "xks-ekm", "pin_file": str(pin_file)},
    )
    server = start_trent(tmp_path / "trent" / "data", extra_config=client_config(proxy))
    yield proxy, server.client()
    proxy.stop()


def create(kms, name="xks-1", path="/kms/xks/v1", secret=SECRET, akid=AKID, endpoint="https://localhost"):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name,
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=endpoint,
        XksProxyUriPath=path,
        XksProxyAuthenticationCredential={"AccessKeyId": akid, "RawSecretAccessKey": secret},
    )["CustomKeyStoreId"]


def describe(kms, store_id):
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]


def test_create_describe_connect_disconnect_delete(xks):
    proxy, kms = xks
    store_id = create(kms)
    assert store_id.startswith("cks-") and len(store_id) == 21
    entry = describe(kms, store_id)
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": AKID,
        "UriEndpoint": "https://localhost",
        "UriPath": "/kms/xks/v1",
    }
    assert "CloudHsmClusterId" not in entry and "TrustAnchorCertificate" not in entry
    assert SECRET not in json.dumps(entry, default=str)

    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = describe(kms, store_id)
    assert entry["ConnectionState"] == "CONNECTED", entry
    assert "ConnectionErrorCode" not in entry
    # AWS: GenerateRandom does not draw from an external key store.
    with pytest.raises(ClientError) as e:
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId=store_id)
    assert error_code(e) == "UnsupportedOperationException"
    kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="xks-renamed")
    assert describe(kms, store_id)["CustomKeyStoreName"] == "xks-renamed"

    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert describe(kms, store_id)["ConnectionState"] == "DISCONNECTED"

    # The proxy stopped: connect fails with XKS_PROXY_NOT_REACHABLE.
    proxy.stop()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = describe(kms, store_id)
    assert (entry["ConnectionState"], entry.get("ConnectionErrorCode")) == ("FAILED", "XKS_PROXY_NOT_REACHABLE")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)

    # Restarted with another secret: FAILED, INVALID_CREDENTIALS; with the store's: CONNECTED.
    proxy.restart(secret="B" * 43 + "=")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = describe(kms, store_id)
    assert (entry["ConnectionState"], entry.get("ConnectionErrorCode")) == ("FAILED", "INVALID_CREDENTIALS")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    proxy.restart()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert describe(kms, store_id)["ConnectionState"] == "CONNECTED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)

    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_create_checks_the_proxy(xks):
    proxy, kms = xks
    with pytest.raises(ClientError) as e:
        create(kms, secret="A" * 43 + "=")
    assert error_code(e) == "XksProxyIncorrectAuthenticationCredentialException"
    with pytest.raises(ClientError) as e:
        create(kms, path="/other/kms/xks/v1")
    assert error_code(e) == "XksProxyInvalidConfigurationException"
    with pytest.raises(ClientError) as e:
        create(kms, endpoint="https://no-such-host.invalid")
    assert error_code(e) == "XksProxyUriUnreachableException"

    store_id = create(kms)
    with pytest.raises(ClientError) as e:
        create(kms)
    assert error_code(e) == "CustomKeyStoreNameInUseException"
    with pytest.raises(ClientError) as e:
        create(kms, name="xks-2")
    assert error_code(e) == "XksProxyUriInUseException"
    assert describe(kms, store_id)["ConnectionState"] == "DISCONNECTED"


def test_parameter_validation(xks):
    _, kms = xks
    for kwargs, field in [
        ({"endpoint": "https://localhost:8443"}, "xksProxyUriEndpoint"),
        ({"path": "/kms/xks/v1/extra"}, "xksProxyUriPath"),
        ({"akid": "akia-lower-case-id-1234"}, "accessKeyId"),
        ({"secret": "not a valid secret, it has spaces and is long"}, "rawSecretAccessKey"),
    ]:
        with pytest.raises(ClientError) as e:
            create(kms, **kwargs)
        assert error_code(e) == "ValidationException", kwargs
        assert field in e.value.response["Error"]["Message"]
        assert SECRET not in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(
            CustomKeyStoreName="x",
            CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyUriEndpoint="https://localhost",
            XksProxyUriPath="/kms/xks/v1",
        )
    assert error_code(e) == "ValidationException"


def connected_store(kms):
    store_id = create(kms)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert describe(kms, store_id)["ConnectionState"] == "CONNECTED"
    return store_id


def create_xks_key(kms, store_id, xks_key_id="key-1"):
    return kms.create_key(
        Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=xks_key_id
    )["KeyMetadata"]


def test_xks_key_double_encryption(xks):
    proxy, kms = xks
    store_id = connected_store(kms)
    meta = create_xks_key(kms, store_id)
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["XksKeyConfiguration"] == {"Id": "key-1"}
    assert meta["KeyState"] == "Enabled" and meta["KeyManager"] == "CUSTOMER"
    key_id = meta["KeyId"]
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["XksKeyConfiguration"] == {"Id": "key-1"}
    assert "CloudHsmClusterId" not in described

    ctx = {"purpose": "xks-test"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionContext=ctx)["CiphertextBlob"]
    assert blob[0] == 3  # the outer layer of double encryption
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert out["Plaintext"] == b"secret" and out["KeyId"] == meta["Arn"]

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=ctx)
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    wp = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=16)
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 16

    # ReEncrypt out of the store and back in.
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=other)
    assert moved["SourceKeyId"] == meta["Arn"]
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key_id)
    assert back["CiphertextBlob"][0] == 3
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"secret"

    # The proxy's layer binds the context and every byte of its ciphertext: as AWS maps a
    # proxy's InvalidCiphertextException, KMSInvalidStateException.
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "other"})
    assert error_code(e) == "KMSInvalidStateException"
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=bytes(tampered))
    assert error_code(e) == "KMSInvalidStateException"
    tampered = bytearray(blob)
    tampered[5] ^= 1  # the key id in the header: no such key
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=bytes(tampered))
    assert error_code(e) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert error_code(e) == "IncorrectKeyException"

    # Not for keys in a custom key store.
    with pytest.raises(ClientError) as e:
        kms.enable_key_rotation(KeyId=key_id)
    assert error_code(e) == "UnsupportedOperationException"


def test_xks_create_key_checks(xks):
    proxy, kms = xks
    store_id = create(kms)
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id)
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id, "no-such-key")
    assert error_code(e) == "XksKeyNotFoundException"
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id, "encrypt-only")
    assert error_code(e) == "XksKeyInvalidConfigurationException"
    create_xks_key(kms, store_id)
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id)
    assert error_code(e) == "XksKeyAlreadyInUseException"
    for kwargs in [
        {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": store_id},
        {"Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "key-2"},
        {"XksKeyId": "key-2"},
        {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": store_id, "XksKeyId": "bad/id"},
    ]:
        with pytest.raises(ClientError) as e:
            kms.create_key(**kwargs)
        assert error_code(e) == "ValidationException", kwargs
    with pytest.raises(ClientError) as e:
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="key-2", MultiRegion=True)
    assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-0123456789abcdefg", XksKeyId="key-2")
    assert error_code(e) == "CustomKeyStoreNotFoundException"


def test_xks_key_unavailable_proxy_down_key_gone(xks):
    proxy, kms = xks
    store_id = connected_store(kms)
    key_id = create_xks_key(kms, store_id)["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]

    # Disconnected: Unavailable (the stored state kept), crypto KMSInvalidStateException.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"p"), lambda: kms.decrypt(CiphertextBlob=blob)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"

    # The proxy stopped while the store is connected: every crypto call is
    # KMSInvalidStateException (AWS's mapping of an unreachable proxy); the key stays Enabled.
    proxy.stop()
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"p"), lambda: kms.decrypt(CiphertextBlob=blob)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    proxy.restart()  # on the same port
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"

    # The external key deleted in the proxy's key manager: decrypt fails.
    keys_file = proxy.config.parent / "xks-data" / "keys.json"
    keys = json.loads(keys_file.read_text())
    keys["keys"] = [k for k in keys["keys"] if k["id"] != "key-1"]
    time.sleep(0.05)
    keys_file.write_text(json.dumps(keys))
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"p")
    assert error_code(e) == "KMSInvalidStateException"

    # Deletion needs no proxy; the store keeps the key until the deletion has happened.
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(e) == "CustomKeyStoreHasCMKsException"


def test_xks_key_in_softhsm_through_the_pkcs11_proxy(xks_pkcs11):
    proxy, kms = xks_pkcs11
    store_id = connected_store(kms)
    meta = create_xks_key(kms, store_id)
    key_id = meta["KeyId"]
    ctx = {"purpose": "pkcs11"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"in the token", EncryptionContext=ctx)["CiphertextBlob"]
    assert blob[0] == 3
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"in the token"
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "other"})
    assert error_code(e) == "KMSInvalidStateException"

    # CreateKey reads the token key's attributes: encrypt-only, disabled or unknown keys fail.
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id, "encrypt-only")
    assert error_code(e) == "XksKeyInvalidConfigurationException"
    proxy.create_key("key-2")
    proxy.key_command("disable-key", "key-2")
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id, "key-2")
    assert error_code(e) == "XksKeyInvalidConfigurationException"
    with pytest.raises(ClientError) as e:
        create_xks_key(kms, store_id, "not-in-the-token")
    assert error_code(e) == "XksKeyNotFoundException"

    # The token key disabled: crypto is KMSInvalidStateException, the KMS key stays Enabled
    # (AWS: the external key's state never changes the KMS key's); enabled again: works.
    proxy.key_command("disable-key", "key-1")
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"p"), lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    proxy.key_command("enable-key", "key-1")
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"in the token"

    # Destroyed in the token: the ciphertext can never be decrypted again.
    proxy.key_command("delete-key", "key-1")
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"p"), lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"


def test_update_xks_proxy_parameters(xks):
    proxy, kms = xks
    store_id = create(kms)

    def update(**kwargs):
        return kms.update_custom_key_store(CustomKeyStoreId=store_id, **kwargs)

    # The proxy is asked (GetHealthStatus) before a change is written.
    with pytest.raises(ClientError) as e:
        update(XksProxyAuthenticationCredential={"AccessKeyId": AKID, "RawSecretAccessKey": "A" * 43 + "="})
    assert error_code(e) == "XksProxyIncorrectAuthenticationCredentialException"
    with pytest.raises(ClientError) as e:
        update(XksProxyUriPath="/other/kms/xks/v1")
    assert error_code(e) == "XksProxyInvalidConfigurationException"
    with pytest.raises(ClientError) as e:
        update(XksProxyUriEndpoint="https://10.0.0.1")
    assert error_code(e) == "XksProxyInvalidConfigurationException"
    with pytest.raises(ClientError) as e:
        update(XksProxyConnectivity="VPC_ENDPOINT_SERVICE", XksProxyVpcEndpointServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0")
    assert error_code(e) == "XksProxyVpcEndpointServiceNotFoundException"
    with pytest.raises(ClientError) as e:
        update(XksProxyUriPath="no-leading-slash/kms/xks/v1")
    assert error_code(e) == "ValidationException"
    entry = describe(kms, store_id)
    assert entry["XksProxyConfiguration"]["UriPath"] == "/kms/xks/v1"
    update(XksProxyUriEndpoint="https://localhost", XksProxyConnectivity="PUBLIC_ENDPOINT")

    # CONNECTED: endpoint and connectivity need a disconnect; the credential does not.
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    key_id = create_xks_key(kms, store_id)["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    for kwargs in [{"XksProxyUriEndpoint": "https://localhost"}, {"XksProxyConnectivity": "PUBLIC_ENDPOINT"}]:
        with pytest.raises(ClientError) as e:
            update(**kwargs)
        assert error_code(e) == "CustomKeyStoreInvalidStateException", kwargs

    # Rotation: the proxy now accepts only a new secret; the store's calls fail until the
    # store is given it, while CONNECTED.
    new_secret = "N3wSecretForTheXksProxyRotation0123456789AB="
    proxy.restart(secret=new_secret)
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "KMSInvalidStateException"
    update(XksProxyAuthenticationCredential={"AccessKeyId": AKID, "RawSecretAccessKey": new_secret})
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
    entry = describe(kms, store_id)
    assert entry["ConnectionState"] == "CONNECTED"
    assert new_secret not in json.dumps(entry, default=str)


def test_proxy_endpoint_allowlist(tmp_path, start_trent):
    proxy = XksProxy(tmp_path / "proxy")
    try:
        # Nothing listed: loopback, private, link-local and metadata endpoints are refused,
        # as AWS calls only public endpoints.
        server = start_trent(tmp_path / "trent" / "data", extra_config=client_config(proxy, allowed=()))
        kms = server.client()
        for endpoint in ["https://localhost", "https://127.0.0.1", "https://10.0.0.1", "https://169.254.169.254", "https://proxy.localhost"]:
            with pytest.raises(ClientError) as e:
                create(kms, endpoint=endpoint)
            assert error_code(e) == "XksProxyInvalidConfigurationException", endpoint
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
        # Listed: accepted.
        server = start_trent(tmp_path / "trent2" / "data", extra_config=client_config(proxy, allowed=("localhost",)))
        create(server.client())
    finally:
        proxy.stop()


def test_periodic_health_check_leaves_the_store_connected(tmp_path, start_trent, monkeypatch, capfd):
    # trent logs to stderr; trent_core's info lines include the check's recovery.
    monkeypatch.setenv("TRENT_LOG", "warn,trent_core=info")
    proxy = XksProxy(tmp_path / "proxy")
    try:
        kms = start_trent(tmp_path / "trent" / "data", extra_config=client_config(proxy)).client()
        store_id = connected_store(kms)
        key_id = create_xks_key(kms, store_id)["KeyId"]
        log = ""

        def wait_for(text: str) -> bool:
            nonlocal log
            deadline = time.time() + 15
            while time.time() < deadline:
                log += capfd.readouterr().err
                if any(text in line and store_id in line for line in log.splitlines()):
                    return True
                time.sleep(0.2)
            return False

        proxy.stop()
        # The check runs every second here: its failure is logged for the operator ...
        assert wait_for("health check failed"), log[-2000:]
        # ... and, as AWS, the store stays CONNECTED ("A CONNECTED state does not indicate
        # that external key store or its supporting components are operating"); crypto fails.
        assert describe(kms, store_id)["ConnectionState"] == "CONNECTED"
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key_id, Plaintext=b"p")
        assert error_code(e) == "KMSInvalidStateException"
        log = ""
        proxy.restart()
        assert wait_for("healthy again"), log[-2000:]
        kms.encrypt(KeyId=key_id, Plaintext=b"p")
    finally:
        proxy.stop()
