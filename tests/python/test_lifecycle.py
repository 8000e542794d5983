"""Key lifecycle through boto3: rotation, scheduled deletion (across restarts), imported key
material wrapped client-side with `cryptography` under every wrapping algorithm, key states."""

import hashlib
import hmac
import json
import os
import sqlite3
import urllib.error

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

DAY = 86_400


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wraps key material the way AWS's import documentation describes for each algorithm."""
    public_key = serialization.load_der_public_key(public_key_der)
    sha = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=sha), algorithm=sha, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public_key.encrypt(material, oaep)
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        aes_key = os.urandom(32)
        return public_key.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)
    raise AssertionError(algorithm)


def import_material(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", spec="RSA_2048", **extra):
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
    # AWS's default ExpirationModel is KEY_MATERIAL_EXPIRES, which needs a ValidTo.
    if "ValidTo" not in extra:
        extra.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
        **extra,
    )


@pytest.mark.parametrize(
    "algorithm,spec",
    [
        ("RSAES_OAEP_SHA_1", "RSA_2048"),
        ("RSAES_OAEP_SHA_256", "RSA_3072"),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_4096"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_2048"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
    ],
)
def test_import_with_each_wrapping_algorithm(kms, algorithm, spec):
    meta = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport"
    assert meta["Origin"] == "EXTERNAL"
    material = os.urandom(32)
    out = import_material(kms, meta["KeyId"], material, algorithm, spec)
    assert len(out["KeyMaterialId"]) == 64
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert described["CurrentKeyMaterialId"] == out["KeyMaterialId"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"bring your own key")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"bring your own key"

    # The ciphertext is really AES-GCM under the imported material: same material re-imported into
    # the key (new wrapping parameters) still decrypts it.
    again = import_material(kms, meta["KeyId"], material, "RSAES_OAEP_SHA_256", "RSA_2048")
    assert again["KeyMaterialId"] == out["KeyMaterialId"]
    with pytest.raises(ClientError) as e:
        import_material(kms, meta["KeyId"], os.urandom(32), algorithm, spec)
    assert error_code(e) == "IncorrectKeyMaterialException"


def test_import_refusals(kms):
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_PKCS1_V1_5", WrappingKeySpec="RSA_2048")
    assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_1024")
    assert error_code(e) == "ValidationException"
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_2048")
    # Wrapped with the wrong algorithm: it does not decrypt.
    with pytest.raises(ClientError) as e:
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    assert error_code(e) == "InvalidCiphertextException"
    # A made-up token.
    with pytest.raises(ClientError) as e:
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=os.urandom(32),
            EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", os.urandom(32)),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    assert error_code(e) == "InvalidImportTokenException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "KMSInvalidStateException"
    assert e.value.response["Error"]["Message"].endswith("is pending import.")


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def spki(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_import_hmac_material(kms):
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport"
    assert meta["KeySpec"] == "HMAC_256"
    key_id = meta["KeyId"]
    # Longer than the spec's bit count is allowed (up to the hash's block size).
    material = os.urandom(48)
    out = import_material(kms, key_id, material, "RSAES_OAEP_SHA_256", "RSA_2048")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    mac = kms.generate_mac(KeyId=key_id, Message=b"imported", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(material, b"imported", hashlib.sha256).digest()
    assert kms.verify_mac(KeyId=key_id, Message=b"imported", MacAlgorithm="HMAC_SHA_256", Mac=mac)["MacValid"]
    again = import_material(kms, key_id, material, "RSA_AES_KEY_WRAP_SHA_1", "RSA_3072")
    assert again["KeyMaterialId"] == out["KeyMaterialId"]
    with pytest.raises(ClientError) as e:
        import_material(kms, key_id, os.urandom(48))
    assert error_code(e) == "IncorrectKeyMaterialException"

    # Deleting the material returns the key to PendingImport; the same material brings it back.
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as e:
        kms.generate_mac(KeyId=key_id, Message=b"imported", MacAlgorithm="HMAC_SHA_256")
    assert error_code(e) == "KMSInvalidStateException"
    import_material(kms, key_id, material)
    assert kms.generate_mac(KeyId=key_id, Message=b"imported", MacAlgorithm="HMAC_SHA_256")["Mac"] == mac

    for spec, size in [("HMAC_256", 31), ("HMAC_256", 65), ("HMAC_384", 47), ("HMAC_512", 129)]:
        other = kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
        with pytest.raises(ClientError) as e:
            import_material(kms, other["KeyId"], os.urandom(size), "RSA_AES_KEY_WRAP_SHA_256")
        assert error_code(e) == "IncorrectKeyMaterialException", (spec, size)


def test_import_ecc_signing_key(kms):
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    key_id = meta["KeyId"]
    assert meta["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as e:
        kms.get_public_key(KeyId=key_id)
    assert error_code(e) == "KMSInvalidStateException"
    private = ec.generate_private_key(ec.SECP256R1())
    out = import_material(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private)
    sig = kms.sign(KeyId=key_id, Message=b"imported ecc", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, b"imported ecc", ec.ECDSA(hashes.SHA256()))
    assert kms.verify(KeyId=key_id, Message=b"imported ecc", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")[
        "SignatureValid"
    ]
    # Re-import of the same key works; a different key on the same curve is refused.
    again = import_material(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_1", "RSA_4096")
    assert again["KeyMaterialId"] == out["KeyMaterialId"]
    with pytest.raises(ClientError) as e:
        import_material(kms, key_id, pkcs8(ec.generate_private_key(ec.SECP256R1())), "RSA_AES_KEY_WRAP_SHA_256")
    assert error_code(e) == "IncorrectKeyMaterialException"

    # Wrong curve, an RSA key, and bytes that are no PKCS#8 at all.
    fresh = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    for material in [
        pkcs8(ec.generate_private_key(ec.SECP384R1())),
        pkcs8(ec.generate_private_key(ec.SECP256K1())),
        pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        os.urandom(32),
    ]:
        with pytest.raises(ClientError) as e:
            import_material(kms, fresh["KeyId"], material, "RSA_AES_KEY_WRAP_SHA_256")
        assert error_code(e) == "IncorrectKeyMaterialException"
    assert kms.describe_key(KeyId=fresh["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"


def test_import_secp256k1_and_key_agreement(kms):
    signing = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    private = ec.generate_private_key(ec.SECP256K1())
    # An ECC private key fits RSAES-OAEP directly.
    import_material(kms, signing["KeyId"], pkcs8(private), "RSAES_OAEP_SHA_256", "RSA_2048")
    sig = kms.sign(KeyId=signing["KeyId"], Message=b"k1", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(sig, b"k1", ec.ECDSA(hashes.SHA256()))

    agreement = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    mine = ec.generate_private_key(ec.SECP384R1())
    import_material(kms, agreement["KeyId"], pkcs8(mine), "RSA_AES_KEY_WRAP_SHA_256")
    peer = ec.generate_private_key(ec.SECP384R1())
    out = kms.derive_shared_secret(KeyId=agreement["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=spki(peer))
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), mine.public_key())
    # KeyOrigin is the key's origin (issue 11: it was always AWS_KMS).
    assert out["KeyOrigin"] == "EXTERNAL"
    # Imported asymmetric and HMAC keys have no CurrentKeyMaterialId in AWS (test_import_key_asymmetric).
    assert "CurrentKeyMaterialId" not in kms.describe_key(KeyId=agreement["KeyId"])["KeyMetadata"]


def test_import_rsa_signing_key(kms):
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    key_id = meta["KeyId"]
    # An RSA private key is too large for RSAES-OAEP: AWS requires an RSA_AES_KEY_WRAP algorithm.
    for algorithm in ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]:
        with pytest.raises(ClientError) as e:
            kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_4096")
        assert error_code(e) == "ValidationException"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import_material(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private)
    sig = kms.sign(KeyId=key_id, Message=b"imported rsa", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    private.public_key().verify(
        sig,
        b"imported rsa",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    sig = kms.sign(KeyId=key_id, Message=b"imported rsa", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_384")["Signature"]
    private.public_key().verify(sig, b"imported rsa", padding.PKCS1v15(), hashes.SHA384())

    # A 3072-bit key does not fit an RSA_2048 KMS key.
    fresh = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with pytest.raises(ClientError) as e:
        import_material(
            kms,
            fresh["KeyId"],
            pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=3072)),
            "RSA_AES_KEY_WRAP_SHA_1",
        )
    assert error_code(e) == "IncorrectKeyMaterialException"


def test_import_rsa_encryption_key(kms):
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    import_material(kms, meta["KeyId"], pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"to rsa", EncryptionAlgorithm="RSAES_OAEP_SHA_256")[
        "CiphertextBlob"
    ]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert private.decrypt(blob, oaep) == b"to rsa"
    local = private.public_key().encrypt(b"from local", oaep)
    out = kms.decrypt(KeyId=meta["KeyId"], CiphertextBlob=local, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"from local"


def test_import_spec_and_wrapping_refusals(kms):
    p521 = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P521", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(
            KeyId=p521["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    assert error_code(e) == "ValidationException"
    # A larger wrapping key, or RSA_AES_KEY_WRAP, works.
    kms.get_parameters_for_import(KeyId=p521["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072")
    private = ec.generate_private_key(ec.SECP521R1())
    import_material(kms, p521["KeyId"], pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
    assert kms.get_public_key(KeyId=p521["KeyId"])["PublicKey"] == spki(private)
    # Specs whose material AWS does not let you import (ML-KEM: not among the importable key
    # types AWS lists; docs/decisions.md "ML-KEM keys").
    for spec in ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]:
        with pytest.raises(ClientError) as e:
            kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")
        assert error_code(e) == "UnsupportedOperationException"
        assert e.value.response["Error"]["Message"] == (
            f"Origin EXTERNAL is not supported for KMS keys with key spec {spec}: their key material cannot be imported."
        )
    # KeySpec and KeyUsage must still fit each other.
    with pytest.raises(ClientError) as e:
        kms.create_key(Origin="EXTERNAL", KeySpec="ECC_SECG_P256K1", KeyUsage="KEY_AGREEMENT")
    assert error_code(e) == "ValidationException"


def test_external_keys_get_the_policy_safety_check_and_grants(kms):
    account = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["Arn"].split(":")[4]
    lockout = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:Sign", "Resource": "*"}
            ],
        }
    )
    args = dict(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Policy=lockout)
    with pytest.raises(ClientError) as e:
        kms.create_key(**args)
    assert error_code(e) == "MalformedPolicyDocumentException"
    kms.create_key(BypassPolicyLockoutSafetyCheck=True, **args)

    key_id = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_224", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    material = os.urandom(28)
    import_material(kms, key_id, material, "RSAES_OAEP_SHA_1")
    grant = kms.create_grant(
        KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:root", Operations=["GenerateMac"]
    )
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]] == [grant["GrantId"]]
    mac = kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_224", GrantTokens=[grant["GrantToken"]])
    assert mac["Mac"] == hmac.new(material, b"m", hashlib.sha224).digest()


def test_imported_material_expires_on_schedule(trent, kms):
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    now = trent.advance_clock(0)["Now"]
    material = os.urandom(32)
    import_material(kms, key_id, material, ValidTo=now + 3 * DAY, ExpirationModel="KEY_MATERIAL_EXPIRES")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs(meta["ValidTo"].timestamp() - (now + 3 * DAY)) < 2
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"short-lived")["CiphertextBlob"]
    assert trent.advance_clock(2 * DAY)["Expired"] == 0
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"short-lived"
    assert trent.advance_clock(DAY + 10)["Expired"] == 1
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(e) == "KMSInvalidStateException"
    [entry] = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert entry["ImportState"] == "PENDING_IMPORT"
    import_material(kms, key_id, material)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"short-lived"
    [entry] = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert entry["ImportState"] == "IMPORTED"
    assert entry["KeyMaterialState"] == "CURRENT"
    assert entry["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"


def test_rotation_status_and_history(trent, kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 180
    assert "NextRotationDate" in status
    blobs = [kms.encrypt(KeyId=key_id, Plaintext=b"v0")["CiphertextBlob"]]
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"].endswith(key_id)
    blobs.append(kms.encrypt(KeyId=key_id, Plaintext=b"v1")["CiphertextBlob"])
    for _ in range(2):
        assert trent.advance_clock(181 * DAY)["Rotated"] == 1
        blobs.append(kms.encrypt(KeyId=key_id, Plaintext=b"vN")["CiphertextBlob"])
    ids = {kms.decrypt(CiphertextBlob=b)["KeyMaterialId"] for b in blobs}
    assert len(ids) == 4
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND", "AUTOMATIC", "AUTOMATIC"]
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT", "NON_CURRENT", "CURRENT"]
    # ReEncrypt moves an old ciphertext to the current material.
    out = kms.re_encrypt(CiphertextBlob=blobs[0], DestinationKeyId=key_id)
    assert out["DestinationKeyMaterialId"] == rotations[-1]["KeyMaterialId"]
    assert out["SourceKeyMaterialId"] != out["DestinationKeyMaterialId"]


def test_deletion_completes_after_a_crash_and_downtime(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    trent = start_trent(data_dir)
    kms = trent.client()
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    rotating = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=rotating, RotationPeriodInDays=90)
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=doomed)
    out = kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 7
    trent.advance_clock(3 * DAY)
    trent.kill_9()

    # Ten days pass while Trent is down (the operator's clock offset moves in its database).
    with sqlite3.connect(data_dir / "trent.db") as db:
        (offset,) = db.execute("SELECT value FROM service_settings WHERE name = 'clock_offset_ms'").fetchone()
        db.execute("UPDATE service_settings SET value = ? WHERE name = 'clock_offset_ms'", (offset + 100 * DAY * 1000,))

    trent = start_trent(data_dir)
    kms = trent.client()
    # Caught up at start: the deletion happened, and the overdue rotation happened once.
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=doomed)
    assert error_code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="alias/doomed")
    assert error_code(e) == "NotFoundException"
    assert [r["RotationType"] for r in kms.list_key_rotations(KeyId=rotating)["Rotations"]] == ["AUTOMATIC"]
    nothing_left = trent.advance_clock(0)
    assert (nothing_left["Deleted"], nothing_left["Rotated"], nothing_left["Expired"]) == (0, 0, 0)


def test_states_through_the_lifecycle(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    for call in [
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
        lambda: kms.update_key_description(KeyId=key_id, Description="x"),
        lambda: kms.disable_key(KeyId=key_id),
        lambda: kms.enable_key_rotation(KeyId=key_id),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
        assert e.value.response["Error"]["Message"].endswith("is pending deletion.")
    # Reads still work.
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"].endswith(key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_clock_control_needs_the_token(trent):
    with pytest.raises(urllib.error.HTTPError) as e:
        trent.advance_clock(DAY, token="not-the-token")
    assert e.value.code == 403
    token_file = trent.data_dir / "admin.token"
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_aws_cli_rotation_and_deletion(trent):
    from test_awscli import aws_json, run_aws

    endpoint = trent.endpoint
    key_id = aws_json(endpoint, "kms", "create-key")["KeyMetadata"]["KeyId"]
    run_aws(endpoint, "kms", "enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "90")
    status = aws_json(endpoint, "kms", "get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
    aws_json(endpoint, "kms", "rotate-key-on-demand", "--key-id", key_id)
    rotations = aws_json(endpoint, "kms", "list-key-rotations", "--key-id", key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    out = aws_json(endpoint, "kms", "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    failed = run_aws(endpoint, "kms", "schedule-key-deletion", "--key-id", key_id, check=False)
    assert failed.returncode != 0 and "KMSInvalidStateException" in failed.stderr
    assert trent.advance_clock(7 * DAY + 1)["Deleted"] == 1
    gone = run_aws(endpoint, "kms", "describe-key", "--key-id", key_id, check=False)
    assert gone.returncode != 0 and "NotFoundException" in gone.stderr


def test_import_parameters_and_rotated_material_survive_a_restart(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    trent = start_trent(data_dir)
    kms = trent.client()
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(
        KeyId=external, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_3072"
    )
    rotating = kms.create_key()["KeyMetadata"]["KeyId"]
    blobs = []
    for _ in range(3):
        blobs.append(kms.encrypt(KeyId=rotating, Plaintext=b"before restart")["CiphertextBlob"])
        kms.rotate_key_on_demand(KeyId=rotating)
    assert trent.terminate() == 0

    trent = start_trent(data_dir)
    kms = trent.client()
    # The wrapping private key was kept (wrapped under the root key) across the restart.
    material = os.urandom(32)
    kms.import_key_material(
        KeyId=external,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert kms.describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "Enabled"
    for blob in blobs:
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before restart"
    assert len(kms.list_key_rotations(KeyId=rotating)["Rotations"]) == 3


def test_imported_hmac_and_ecc_material_survive_a_restart(start_trent, tmp_path):
    data_dir = tmp_path / "data"
    trent = start_trent(data_dir)
    kms = trent.client()
    mac_key = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    secret = os.urandom(100)
    import_material(kms, mac_key["KeyId"], secret)
    sign_key = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    private = ec.generate_private_key(ec.SECP384R1())
    import_material(kms, sign_key["KeyId"], pkcs8(private), "RSA_AES_KEY_WRAP_SHA_1", "RSA_3072")
    assert trent.terminate() == 0

    trent = start_trent(data_dir)
    kms = trent.client()
    mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"after", MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert mac == hmac.new(secret, b"after", hashlib.sha384).digest()
    assert kms.get_public_key(KeyId=sign_key["KeyId"])["PublicKey"] == spki(private)
    sig = kms.sign(KeyId=sign_key["KeyId"], Message=b"after", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
    private.public_key().verify(sig, b"after", ec.ECDSA(hashes.SHA384()))


def test_clock_control_is_off_unless_configured(start_trent, tmp_path):
    trent = start_trent(tmp_path / "plain", clock_control=False)
    # The token exists for the admin CLI, but even it cannot move the clock.
    token = (trent.data_dir / "admin.token").read_text().strip()
    for attempt in (token, "anything"):
        with pytest.raises(urllib.error.HTTPError) as e:
            trent.advance_clock(DAY, token=attempt)
        assert e.value.code == 404


def test_several_imported_materials_and_on_demand_rotation(kms):
    """AWS's multi-material import (current botocore's members): NEW_KEY_MATERIAL waits
    PENDING_ROTATION, RotateKeyOnDemand makes it current, old ciphertexts still decrypt, one
    material can be deleted by its KeyMaterialId and imported again."""
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    first_material, second_material = os.urandom(32), os.urandom(32)
    first = import_material(kms, key_id, first_material, KeyMaterialDescription="first one")["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before rotation")["CiphertextBlob"]
    second = import_material(
        kms, key_id, second_material, ImportType="NEW_KEY_MATERIAL", KeyMaterialDescription="second one"
    )["KeyMaterialId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == first
    listed = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(e["KeyMaterialId"], e["KeyMaterialState"], e["ImportState"]) for e in listed] == [
        (first, "CURRENT", "IMPORTED"),
        (second, "PENDING_ROTATION", "IMPORTED"),
    ]
    assert [e["KeyMaterialDescription"] for e in listed] == ["first one", "second one"]
    assert all("RotationDate" not in e and "RotationType" not in e for e in listed)
    with pytest.raises(ClientError) as e:
        import_material(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    assert error_code(e) == "KMSInvalidStateException"
    assert f"because another key material (id: {second}) is pending rotation." in e.value.response["Error"]["Message"]

    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == arn
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == second
    [rotation] = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert rotation["KeyMaterialId"] == second
    assert rotation["KeyMaterialState"] == "CURRENT"
    assert rotation["RotationType"] == "ON_DEMAND"
    assert "RotationDate" in rotation
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"before rotation"
    assert decrypted["KeyMaterialId"] == first
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"] != blob
    with pytest.raises(ClientError) as e:
        kms.rotate_key_on_demand(KeyId=key_id)
    assert error_code(e) == "KMSInvalidStateException"
    assert e.value.response["Error"]["Message"] == f"No available key material pending rotation for the key: {arn}."

    deleted = kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=first)
    assert deleted["KeyMaterialId"] == first
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    listed = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(e["KeyMaterialState"], e["ImportState"]) for e in listed] == [
        ("NON_CURRENT", "PENDING_IMPORT"),
        ("CURRENT", "IMPORTED"),
    ]
    assert "ExpirationModel" not in listed[0]
    again = import_material(
        kms, key_id, first_material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=first
    )
    assert again["KeyMaterialId"] == first
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before rotation"


def test_import_ed25519_signing_key(kms):
    """An Ed25519 private key generated client-side (PKCS#8) signs in Trent with both of
    AWS's Ed25519 algorithms; a key on another curve is refused."""
    key_id = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]["KeyId"]
    private = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(ClientError) as e:
        import_material(kms, key_id, pkcs8(ec.generate_private_key(ec.SECP256R1())))
    assert error_code(e) == "IncorrectKeyMaterialException"
    out = import_material(kms, key_id, pkcs8(private))
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private)
    sig = kms.sign(KeyId=key_id, Message=b"edwards", SigningAlgorithm="ED25519_SHA_512")["Signature"]
    private.public_key().verify(sig, b"edwards")
    digest = hashlib.sha512(b"prehashed").digest()
    sig = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")[
        "Signature"
    ]
    assert kms.verify(
        KeyId=key_id, Message=digest, MessageType="DIGEST", Signature=sig, SigningAlgorithm="ED25519_PH_SHA_512"
    )["SignatureValid"]
    # Re-import of the same key (PKCS#8 v1 again) gives the same material id.
    assert import_material(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256")["KeyMaterialId"] == out[
        "KeyMaterialId"
    ]


@pytest.mark.parametrize(
    "spec,cls",
    [("ML_DSA_44", mldsa.MLDSA44PrivateKey), ("ML_DSA_65", mldsa.MLDSA65PrivateKey), ("ML_DSA_87", mldsa.MLDSA87PrivateKey)],
)
def test_import_ml_dsa_signing_key(kms, spec, cls):
    """An ML-DSA key generated client-side (PKCS#8, RFC 9881 seed form, as `cryptography`
    writes it) signs RAW and EXTERNAL_MU in Trent; the signatures verify client-side."""
    key_id = kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    private = cls.generate()
    import_material(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private)
    message = b"imported post-quantum key"
    sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    private.public_key().verify(sig, message)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    mu = hashlib.shake_256(hashlib.shake_256(raw).digest(64) + b"\x00\x00" + message).digest(64)
    sig = kms.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")[
        "Signature"
    ]
    private.public_key().verify(sig, message)
    # Another parameter set's key is refused.
    other = mldsa.MLDSA44PrivateKey if cls is not mldsa.MLDSA44PrivateKey else mldsa.MLDSA65PrivateKey
    fresh = kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        import_material(kms, fresh, pkcs8(other.generate()), "RSA_AES_KEY_WRAP_SHA_256")
    assert error_code(e) == "IncorrectKeyMaterialException"
