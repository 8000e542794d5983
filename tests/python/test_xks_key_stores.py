"""EXTERNAL_KEY_STORE custom key stores end to end: boto3 against `trent serve`, which reaches a
real `trent xks-proxy` (started here) over HTTPS with SigV4.

Trent trusts the proxy's throwaway CA and uses its port through `[xks_client]`
(`XksProxyUriEndpoint` cannot carry a port). Covered: create (the proxy's health is checked at
create: a wrong secret, a wrong path and a stopped proxy are refused with AWS's XKS errors),
describe (`XksProxyConfiguration`, never the secret), connect (CONNECTED, or FAILED with
`XKS_PROXY_NOT_REACHABLE` when the proxy is stopped and `INVALID_CREDENTIALS` when it no longer
accepts the store's credential; CONNECTED again once it does), rename, disconnect, delete, GenerateRandom refused, parameter
validation.
"""

import json

import pytest
from botocore.exceptions import ClientError

from test_xks_proxy import AKID, SECRET, XksProxy


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def xks(tmp_path, start_trent):
    proxy = XksProxy(tmp_path / "proxy")
    port = proxy.base.split("localhost:", 1)[1].split("/", 1)[0]
    extra = f"[xks_client]\nca_bundle = {json.dumps(str(proxy.ca))}\nport = {port}\ntimeout_ms = 5000\n"
    server = start_trent(tmp_path / "trent" / "data", extra_config=extra)
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
