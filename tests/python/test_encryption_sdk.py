"""The AWS Encryption SDK for Python (master-key-provider API) using Trent as its KMS."""

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import Algorithm, CommitmentPolicy
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError
from cryptography.exceptions import InvalidSignature, InvalidTag

from conftest import AKID_A, AKID_B, REGION, SECRET_A, SECRET_B

CONTEXT = {"purpose": "python-e2e", "tenant": "acme"}


def botocore_session(tmp_path, endpoint: str, akid: str, secret: str) -> botocore.session.Session:
    """A botocore session whose KMS clients go to Trent.

    The Encryption SDK builds its own KMS clients from the session, so the endpoint comes from a
    shared config file (`endpoint_url`, honoured by botocore) given to this session alone.
    """
    config = tmp_path / f"aws-config-{akid}"
    config.write_text(f"[default]\nregion = {REGION}\nendpoint_url = {endpoint}\nmax_attempts = 1\n")
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config))
    session.set_credentials(akid, secret)
    return session


@pytest.fixture
def sdk():
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture
def key(kms) -> dict:
    return kms.create_key(Description="encryption sdk")["KeyMetadata"]


def record_kms_calls(session: botocore.session.Session) -> list:
    """`(operation, error code or None)` for every KMS call made by clients created from `session` from now on."""
    calls = []

    def after_call(parsed, model, **_):
        calls.append((model.name, parsed.get("Error", {}).get("Code")))

    session.register("after-call.kms", after_call)
    return calls


@pytest.fixture
def session(tmp_path, trent):
    session = botocore_session(tmp_path, trent.endpoint, AKID_A, SECRET_A)
    session.kms_calls = record_kms_calls(session)
    return session


@pytest.fixture
def provider(session, key):
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key["Arn"]], botocore_session=session)


def edk_ciphertext_offset(message: bytes, key_arn: str) -> int:
    """Where the first encrypted data key's ciphertext (the KMS ciphertext blob) starts in `message`.

    In the message header each encrypted data key is: provider id length + id, provider info
    length + info (the key ARN for aws-kms), ciphertext length (2 bytes) + ciphertext.
    """
    info = key_arn.encode()
    at = message.index(info) + len(info)
    return at + 2


def test_round_trip_names_the_trent_key(sdk, session, provider, key, kms):
    plaintext = b"The Encryption SDK wraps its data key with Trent.\x00\xff" * 100

    ciphertext, enc_header = sdk.encrypt(source=plaintext, key_provider=provider, encryption_context=CONTEXT)
    assert plaintext[:50] not in ciphertext
    edks = list(enc_header.encrypted_data_keys)
    assert len(edks) == 1
    assert edks[0].key_provider.provider_id == "aws-kms"
    assert edks[0].key_provider.key_info == key["Arn"].encode()
    for k, v in CONTEXT.items():
        assert enc_header.encryption_context[k] == v
    assert enc_header.algorithm.is_committing()

    decrypted, dec_header = sdk.decrypt(source=ciphertext, key_provider=provider)
    assert decrypted == plaintext
    assert [e.key_provider.key_info for e in dec_header.encrypted_data_keys] == [key["Arn"].encode()]
    assert {k: dec_header.encryption_context[k] for k in CONTEXT} == CONTEXT
    assert session.kms_calls == [("GenerateDataKey", None), ("Decrypt", None)]

    # The wrapped data key is an ordinary Trent ciphertext: Trent itself can unwrap it, but only with
    # the message's encryption context.
    edk = edks[0].encrypted_data_key
    unwrapped = kms.decrypt(CiphertextBlob=edk, EncryptionContext=dict(enc_header.encryption_context))
    assert unwrapped["KeyId"] == key["Arn"]
    assert len(unwrapped["Plaintext"]) == 32
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=edk)


def test_streaming_multi_frame_round_trip(sdk, provider):
    plaintext = bytes(range(256)) * 64  # 16 KiB in 1 KiB frames
    with sdk.stream(mode="e", source=plaintext, key_provider=provider, encryption_context=CONTEXT, frame_length=1024) as enc:
        ciphertext = enc.read()
    with sdk.stream(mode="d", source=ciphertext, key_provider=provider) as dec:
        assert dec.read() == plaintext


def test_tampered_body_fails_to_decrypt(sdk, provider):
    plaintext = b"do not touch" * 20
    # Without a signature the message ends with the final frame: ... encrypted content, 16-byte tag.
    ciphertext, _ = sdk.encrypt(
        source=plaintext, key_provider=provider, encryption_context=CONTEXT, algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    )
    assert sdk.decrypt(source=ciphertext, key_provider=provider)[0] == plaintext
    tampered = bytearray(ciphertext)
    tampered[-16 - len(plaintext) // 2] ^= 0x01
    with pytest.raises(InvalidTag):
        sdk.decrypt(source=bytes(tampered), key_provider=provider)

    # With the default (signed) suite, a changed signature is caught too.
    signed, _ = sdk.encrypt(source=plaintext, key_provider=provider, encryption_context=CONTEXT)
    tampered = bytearray(signed)
    tampered[-1] ^= 0x01
    with pytest.raises(InvalidSignature):
        sdk.decrypt(source=bytes(tampered), key_provider=provider)


def test_tampered_wrapped_data_key_is_refused_by_trent(sdk, session, provider, key):
    ciphertext, _ = sdk.encrypt(source=b"payload", key_provider=provider, encryption_context=CONTEXT)
    assert session.kms_calls == [("GenerateDataKey", None)]
    assert sdk.decrypt(source=ciphertext, key_provider=provider)[0] == b"payload"
    assert session.kms_calls[1:] == [("Decrypt", None)]

    at = edk_ciphertext_offset(ciphertext, key["Arn"])
    tampered = bytearray(ciphertext)
    tampered[at + 40] ^= 0x01
    # Trent answers InvalidCiphertextException, which the SDK reports as a failure to decrypt the data key.
    with pytest.raises(DecryptKeyError):
        sdk.decrypt(source=bytes(tampered), key_provider=provider)
    assert session.kms_calls[2:] == [("Decrypt", "InvalidCiphertextException")]


def test_another_account_cannot_decrypt(sdk, provider, tmp_path, trent, key):
    ciphertext, _ = sdk.encrypt(source=b"for account A only", key_provider=provider, encryption_context=CONTEXT)
    b_session = botocore_session(tmp_path, trent.endpoint, AKID_B, SECRET_B)
    b_calls = record_kms_calls(b_session)
    other = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key["Arn"]], botocore_session=b_session)
    with pytest.raises(DecryptKeyError):
        sdk.decrypt(source=ciphertext, key_provider=other)
    assert b_calls == [("Decrypt", "AccessDeniedException")]


def test_disabled_key_cannot_encrypt(sdk, session, provider, kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(AWSEncryptionSDKClientError):
        sdk.encrypt(source=b"x", key_provider=provider, encryption_context=CONTEXT)
    assert session.kms_calls == [("GenerateDataKey", "DisabledException")]
