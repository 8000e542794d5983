"""Asymmetric, HMAC and key-agreement keys through boto3, cross-checked with pyca/cryptography.

Every signature Trent makes is verified here with the public key from GetPublicKey; RSA
ciphertext is made here and decrypted by Trent; ECDH secrets are computed on both sides.
"""

import hashlib

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}

SIGN_SPECS = {
    "RSA_2048": ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                 "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"],
    "RSA_3072": ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_512"],
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_EDWARDS25519": ["ED25519_SHA_512"],
    "ML_DSA_44": ["ML_DSA_SHAKE_256"],
    "ML_DSA_65": ["ML_DSA_SHAKE_256"],
    "ML_DSA_87": ["ML_DSA_SHAKE_256"],
}


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def create(kms, spec, usage):
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]


def hash_of(alg):
    """The SHA-2 hash of an RSA/ECDSA algorithm; None for Ed25519 and ML-DSA."""
    if alg.startswith(("RSASSA", "ECDSA")):
        return HASHES[alg[-3:]]()
    return None


def local_verify(public_der, alg, message, signature, digest_input=False):
    """Verifies with pyca/cryptography; raises InvalidSignature when it does not verify."""
    pub = serialization.load_der_public_key(public_der)
    h = hash_of(alg)
    data_hash = utils.Prehashed(h) if digest_input else h
    if alg.startswith("RSASSA_PSS"):
        pub.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), data_hash)
    elif alg.startswith("RSASSA_PKCS1"):
        pub.verify(signature, message, padding.PKCS1v15(), data_hash)
    elif alg.startswith("ECDSA"):
        pub.verify(signature, message, ec.ECDSA(data_hash))
    else:  # Ed25519 and ML-DSA take the message itself
        pub.verify(signature, message)


@pytest.mark.parametrize("spec", sorted(SIGN_SPECS))
def test_signatures_verify_offline_raw_and_digest(kms, spec):
    meta = create(kms, spec, "SIGN_VERIFY")
    key_id = meta["KeyId"]
    public = kms.get_public_key(KeyId=key_id)
    assert public["KeySpec"] == spec and public["KeyUsage"] == "SIGN_VERIFY"
    assert set(SIGN_SPECS[spec]) <= set(public["SigningAlgorithms"])
    assert meta["SigningAlgorithms"] == public["SigningAlgorithms"]
    assert "EncryptionAlgorithms" not in meta
    der = public["PublicKey"]
    message = b"the message Trent signs"
    for alg in SIGN_SPECS[spec]:
        sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=alg)
        assert sig["SigningAlgorithm"] == alg and sig["KeyId"] == meta["Arn"]
        local_verify(der, alg, message, sig["Signature"])
        assert kms.verify(KeyId=key_id, Message=message, Signature=sig["Signature"],
                          SigningAlgorithm=alg)["SignatureValid"] is True
        with pytest.raises(InvalidSignature):
            local_verify(der, alg, message + b"!", sig["Signature"])
        h = hash_of(alg)
        if h is not None and not alg.startswith("ED25519"):
            digest = hashlib.new(h.name, message).digest()
            dsig = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
            local_verify(der, alg, message, dsig)
            local_verify(der, alg, digest, dsig, digest_input=True)
            # A DIGEST signature verifies as RAW over the message and vice versa.
            assert kms.verify(KeyId=key_id, Message=message, Signature=dsig, SigningAlgorithm=alg)["SignatureValid"]
            assert kms.verify(KeyId=key_id, Message=digest, MessageType="DIGEST",
                              Signature=sig["Signature"], SigningAlgorithm=alg)["SignatureValid"]
            with pytest.raises(ClientError) as e:
                kms.sign(KeyId=key_id, Message=digest[:-1], MessageType="DIGEST", SigningAlgorithm=alg)
            assert error_code(e) == "ValidationException"


def test_offline_signatures_verify_in_trent(kms):
    """The other direction for Ed25519/ML-DSA is impossible (no private key), so: tampering."""
    key_id = create(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")["KeyId"]
    sig = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ED25519_SHA_512")["Signature"]
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    pub.verify(sig, b"m")
    pq = create(kms, "ML_DSA_65", "SIGN_VERIFY")["KeyId"]
    pq_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=pq)["PublicKey"])
    assert isinstance(pq_pub, mldsa.MLDSA65PublicKey)


def test_verify_negative_cases(kms):
    key_id = create(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    other = create(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    rsa_key = create(kms, "RSA_2048", "SIGN_VERIFY")["KeyId"]
    sig = kms.sign(KeyId=key_id, Message=b"hello", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    rsa_sig = kms.sign(KeyId=rsa_key, Message=b"hello", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    cases = [
        dict(KeyId=key_id, Message=b"hellO", Signature=sig, SigningAlgorithm="ECDSA_SHA_256"),
        dict(KeyId=other, Message=b"hello", Signature=sig, SigningAlgorithm="ECDSA_SHA_256"),
        dict(KeyId=key_id, Message=b"hello", Signature=sig[:-1] + bytes([sig[-1] ^ 1]), SigningAlgorithm="ECDSA_SHA_256"),
        dict(KeyId=rsa_key, Message=b"hello", Signature=rsa_sig, SigningAlgorithm="RSASSA_PSS_SHA_384"),
        dict(KeyId=rsa_key, Message=b"hello", Signature=rsa_sig, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"),
    ]
    for case in cases:
        with pytest.raises(ClientError) as e:
            kms.verify(**case)
        assert error_code(e) == "KMSInvalidSignatureException", case
    # Algorithm of another key family, usage errors, limits.
    for call, code in [
        (lambda: kms.sign(KeyId=key_id, Message=b"x", SigningAlgorithm="RSASSA_PSS_SHA_256"), "InvalidKeyUsageException"),
        (lambda: kms.sign(KeyId=key_id, Message=b"x", SigningAlgorithm="ECDSA_SHA_384"), "InvalidKeyUsageException"),
        (lambda: kms.verify(KeyId=key_id, Message=b"hello", Signature=sig, SigningAlgorithm="ECDSA_SHA_512"), "InvalidKeyUsageException"),
        (lambda: kms.sign(KeyId=key_id, Message=b"x" * 4097, SigningAlgorithm="ECDSA_SHA_256"), "ValidationException"),
        (lambda: kms.sign(KeyId=key_id, Message=b"x", SigningAlgorithm="NOPE"), "ValidationException"),
        (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"), "InvalidKeyUsageException"),
        (lambda: kms.generate_mac(KeyId=key_id, Message=b"x", MacAlgorithm="HMAC_SHA_256"), "InvalidKeyUsageException"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == code
    assert kms.sign(KeyId=key_id, Message=b"x" * 4096, SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=symmetric, Message=b"x", SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.get_public_key(KeyId=symmetric)
    assert error_code(e) == "UnsupportedOperationException"
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=key_id, Message=b"x", SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(e) == "DisabledException"


@pytest.mark.parametrize("spec,limits", [("RSA_2048", (214, 190)), ("RSA_3072", (342, 318)), ("RSA_4096", (470, 446))])
def test_rsa_oaep_offline_ciphertext_decrypts_in_trent(kms, spec, limits):
    meta = create(kms, spec, "ENCRYPT_DECRYPT")
    key_id = meta["KeyId"]
    assert meta["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "SigningAlgorithms" not in meta
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(pub, rsa.RSAPublicKey)
    for alg, h, limit in [("RSAES_OAEP_SHA_1", hashes.SHA1, limits[0]), ("RSAES_OAEP_SHA_256", hashes.SHA256, limits[1])]:
        oaep = padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None)
        plaintext = bytes(range(256)) * 2
        plaintext = plaintext[:limit]
        ct = pub.encrypt(plaintext, oaep)
        out = kms.decrypt(KeyId=key_id, CiphertextBlob=ct, EncryptionAlgorithm=alg)
        assert out["Plaintext"] == plaintext and out["EncryptionAlgorithm"] == alg
        # Trent's own Encrypt is raw OAEP too.
        ct2 = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionAlgorithm=alg)["CiphertextBlob"]
        assert len(ct2) == pub.key_size // 8
        assert kms.decrypt(KeyId=key_id, CiphertextBlob=ct2, EncryptionAlgorithm=alg)["Plaintext"] == plaintext
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key_id, Plaintext=plaintext + b"x", EncryptionAlgorithm=alg)
        assert error_code(e) == "ValidationException"
    # Wrong algorithm, missing KeyId, symmetric algorithm on an RSA key.
    ct = pub.encrypt(b"x", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    with pytest.raises(ClientError) as e:
        kms.decrypt(KeyId=key_id, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert error_code(e) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "InvalidKeyUsageException"


@pytest.mark.parametrize("spec,curve", [("ECC_NIST_P256", ec.SECP256R1), ("ECC_NIST_P384", ec.SECP384R1), ("ECC_NIST_P521", ec.SECP521R1)])
def test_derive_shared_secret_matches_local_ecdh(kms, spec, curve):
    meta = create(kms, spec, "KEY_AGREEMENT")
    assert meta["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in meta
    trent_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    local = ec.generate_private_key(curve())
    local_der = local.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=local_der)
    assert out["SharedSecret"] == local.exchange(ec.ECDH(), trent_pub)
    assert out["KeyAgreementAlgorithm"] == "ECDH" and out["KeyOrigin"] == "AWS_KMS"
    other_curve = ec.SECP256K1() if spec != "ECC_NIST_P384" else ec.SECP256R1()
    wrong = ec.generate_private_key(other_curve).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ClientError) as e:
        kms.derive_shared_secret(KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=wrong)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=meta["KeyId"], Message=b"x", SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"


@pytest.mark.parametrize("pair_spec", ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
                                       "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"])
def test_data_key_pairs_halves_match(kms, pair_spec):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    out = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec=pair_spec, EncryptionContext={"app": "t"})
    assert out["KeyPairSpec"] == pair_spec
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    public_der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_der == out["PublicKey"]
    # The encrypted private key is an ordinary Trent ciphertext of the PKCS#8 bytes.
    dec = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"app": "t"})
    assert dec["Plaintext"] == out["PrivateKeyPlaintext"]
    # And the pair works: sign locally, verify with the public half.
    pub = serialization.load_der_public_key(out["PublicKey"])
    if pair_spec.startswith("RSA"):
        sig = private.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
        pub.verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())
    elif pair_spec.startswith("ECC_NIST_EDWARDS"):
        pub.verify(private.sign(b"m"), b"m")
    else:
        pub.verify(private.sign(b"m", ec.ECDSA(hashes.SHA256())), b"m", ec.ECDSA(hashes.SHA256()))
    without = kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in without
    private2 = kms.decrypt(CiphertextBlob=without["PrivateKeyCiphertextBlob"])["Plaintext"]
    key2 = serialization.load_der_private_key(private2, password=None)
    assert key2.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == without["PublicKey"]


def test_data_key_pair_errors(kms):
    signing = create(kms, "RSA_2048", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key_pair(KeyId=signing, KeyPairSpec="ECC_NIST_P256")
    assert error_code(e) == "InvalidKeyUsageException"
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="RSA_1024")
    assert error_code(e) == "ValidationException"


@pytest.mark.parametrize("spec,alg,length", [("HMAC_224", "HMAC_SHA_224", 28), ("HMAC_256", "HMAC_SHA_256", 32),
                                             ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)])
def test_hmac_keys(kms, spec, alg, length):
    meta = create(kms, spec, "GENERATE_VERIFY_MAC")
    assert meta["MacAlgorithms"] == [alg]
    key_id = meta["KeyId"]
    mac = kms.generate_mac(KeyId=key_id, Message=b"data", MacAlgorithm=alg)
    assert len(mac["Mac"]) == length and mac["MacAlgorithm"] == alg
    assert kms.generate_mac(KeyId=key_id, Message=b"data", MacAlgorithm=alg)["Mac"] == mac["Mac"]
    assert kms.verify_mac(KeyId=key_id, Message=b"data", Mac=mac["Mac"], MacAlgorithm=alg)["MacValid"] is True
    other = create(kms, spec, "GENERATE_VERIFY_MAC")["KeyId"]
    for case in [dict(KeyId=key_id, Message=b"datA", Mac=mac["Mac"], MacAlgorithm=alg),
                 dict(KeyId=other, Message=b"data", Mac=mac["Mac"], MacAlgorithm=alg),
                 dict(KeyId=key_id, Message=b"data", Mac=mac["Mac"][:-1], MacAlgorithm=alg)]:
        with pytest.raises(ClientError) as e:
            kms.verify_mac(**case)
        assert error_code(e) == "KMSInvalidMacException"
    wrong_alg = "HMAC_SHA_512" if alg != "HMAC_SHA_512" else "HMAC_SHA_256"
    with pytest.raises(ClientError) as e:
        kms.generate_mac(KeyId=key_id, Message=b"data", MacAlgorithm=wrong_alg)
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.verify_mac(KeyId=key_id, Message=b"data", Mac=mac["Mac"], MacAlgorithm=wrong_alg)
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "InvalidKeyUsageException"


def test_create_key_refuses_what_aws_refuses(kms):
    for kwargs in [dict(KeySpec="HMAC_256"), dict(KeySpec="ECC_NIST_P256"), dict(KeySpec="ECC_SECG_P256K1", KeyUsage="KEY_AGREEMENT"),
                   dict(KeySpec="RSA_2048", KeyUsage="KEY_AGREEMENT"), dict(KeySpec="ML_DSA_65", KeyUsage="ENCRYPT_DECRYPT"),
                   dict(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="KEY_AGREEMENT"), dict(KeySpec="HMAC_256", KeyUsage="SIGN_VERIFY"),
                   dict(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="SIGN_VERIFY")]:
        with pytest.raises(ClientError) as e:
            kms.create_key(**kwargs)
        assert error_code(e) == "ValidationException", kwargs


def test_asymmetric_keys_survive_restart(start_trent, tmp_path):
    server = start_trent(tmp_path / "data")
    kms = server.client()
    sign_key = create(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    rsa_key = create(kms, "RSA_2048", "ENCRYPT_DECRYPT")["KeyId"]
    mac_key = create(kms, "HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    public = kms.get_public_key(KeyId=sign_key)["PublicKey"]
    ct = kms.encrypt(KeyId=rsa_key, Plaintext=b"kept", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    server.kill_9()
    kms = start_trent(tmp_path / "data").client()
    assert kms.get_public_key(KeyId=sign_key)["PublicKey"] == public
    sig = kms.sign(KeyId=sign_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    local_verify(public, "ECDSA_SHA_256", b"m", sig)
    assert kms.decrypt(KeyId=rsa_key, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"kept"
    assert kms.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]


@pytest.mark.parametrize("spec,cls", [("ML_DSA_44", mldsa.MLDSA44PublicKey), ("ML_DSA_65", mldsa.MLDSA65PublicKey),
                                      ("ML_DSA_87", mldsa.MLDSA87PublicKey)])
def test_ml_dsa_external_mu_signs_the_message(kms, spec, cls):
    key_id = create(kms, spec, "SIGN_VERIFY")["KeyId"]
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(pub, cls)
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    message = b"signed through its representative"
    # FIPS 204: tr = SHAKE256(pk, 64); mu = SHAKE256(tr || 0x00 || len(ctx)=0 || M, 64).
    tr = hashlib.shake_256(raw).digest(64)
    mu = hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)
    sig = kms.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    pub.verify(sig, message)  # an ordinary ML-DSA signature of the message
    assert kms.verify(KeyId=key_id, Message=message, Signature=sig, SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"]
    raw_sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert kms.verify(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", Signature=raw_sig,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"]
    with pytest.raises(ClientError) as e:
        kms.verify(KeyId=key_id, Message=bytes(64), MessageType="EXTERNAL_MU", Signature=raw_sig,
                   SigningAlgorithm="ML_DSA_SHAKE_256")
    assert error_code(e) == "KMSInvalidSignatureException"
    for kwargs in [dict(Message=mu[:-1], MessageType="EXTERNAL_MU"), dict(Message=mu, MessageType="DIGEST")]:
        with pytest.raises(ClientError) as e:
            kms.sign(KeyId=key_id, SigningAlgorithm="ML_DSA_SHAKE_256", **kwargs)
        assert error_code(e) == "ValidationException"


def test_ed25519ph_digest_signatures(kms):
    key_id = create(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")["KeyId"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["SigningAlgorithms"] == ["ED25519_SHA_512", "ED25519_PH_SHA_512"]
    digest = hashlib.sha512(b"prehashed").digest()
    sig = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    assert len(sig) == 64
    assert kms.verify(KeyId=key_id, Message=digest, MessageType="DIGEST", Signature=sig,
                      SigningAlgorithm="ED25519_PH_SHA_512")["SignatureValid"]
    # Ed25519ph is not plain Ed25519 over the digest, and a tampered digest fails.
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    with pytest.raises(InvalidSignature):
        pub.verify(sig, digest)
    for kwargs in [dict(Message=hashlib.sha512(b"other").digest(), MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512"),
                   dict(Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512", KeyId=create(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")["KeyId"])]:
        call = dict(KeyId=key_id, Signature=sig)
        call.update(kwargs)
        with pytest.raises(ClientError) as e:
            kms.verify(**call)
        assert error_code(e) == "KMSInvalidSignatureException"
    for kwargs in [dict(Message=b"raw", SigningAlgorithm="ED25519_PH_SHA_512"),
                   dict(Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_SHA_512"),
                   dict(Message=digest[:32], MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")]:
        with pytest.raises(ClientError) as e:
            kms.sign(KeyId=key_id, **kwargs)
        assert error_code(e) == "ValidationException", kwargs


def test_re_encrypt_between_rsa_and_symmetric_keys(kms):
    rsa_key = create(kms, "RSA_2048", "ENCRYPT_DECRYPT")["KeyId"]
    rsa_other = create(kms, "RSA_4096", "ENCRYPT_DECRYPT")["KeyId"]
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=sym, Plaintext=b"moving", EncryptionContext={"a": "b"})["CiphertextBlob"]
    to_rsa = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "b"}, DestinationKeyId=rsa_key,
                            DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert to_rsa["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    rsa_ct = to_rsa["CiphertextBlob"]
    to_rsa2 = kms.re_encrypt(CiphertextBlob=rsa_ct, SourceKeyId=rsa_key, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
                             DestinationKeyId=rsa_other, DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1")
    back = kms.re_encrypt(CiphertextBlob=to_rsa2["CiphertextBlob"], SourceKeyId=rsa_other,
                          SourceEncryptionAlgorithm="RSAES_OAEP_SHA_1", DestinationKeyId=sym)
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"moving"
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=rsa_ct, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", DestinationKeyId=sym)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "b"}, DestinationKeyId=sym,
                       DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"


@pytest.mark.parametrize("spec", ["ML_KEM_768", "ML_KEM_1024"])
def test_ml_kem_offline_encapsulation_decapsulates_in_trent(kms, endpoint, spec):
    """OpenSSL (through pyca/cryptography) parses GetPublicKey's SPKI and encapsulates to it;
    Trent's Decapsulate recovers the same secret. Encapsulate/Decapsulate go as raw signed JSON:
    this botocore's KMS model predates them."""
    import base64
    import json

    from test_http import call

    key = create(kms, spec, "ENCAPSULATE_DECAPSULATE")
    public = kms.get_public_key(KeyId=key["KeyId"])
    assert public["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    local = serialization.load_der_public_key(public["PublicKey"])
    shared_secret, ciphertext = local.encapsulate()

    def decapsulate(blob: bytes) -> bytes:
        body = json.dumps({
            "KeyId": key["KeyId"],
            "SharedSecretCiphertextBlob": base64.b64encode(blob).decode(),
            "EncapsulationAlgorithm": "ML_KEM",
        }).encode()
        r = call(endpoint, "TrentService.Decapsulate", body)
        assert r.status == 200, r.body
        assert r.json()["EncapsulationAlgorithm"] == "ML_KEM"
        return base64.b64decode(r.json()["SharedSecret"])

    assert decapsulate(ciphertext) == shared_secret

    body = json.dumps({"KeyId": key["KeyId"], "EncapsulationAlgorithm": "ML_KEM"}).encode()
    r = call(endpoint, "TrentService.Encapsulate", body)
    assert r.status == 200, r.body
    out = r.json()
    assert out["KeyId"] == key["Arn"]
    secret = base64.b64decode(out["SharedSecret"])
    assert len(secret) == 32
    assert decapsulate(base64.b64decode(out["SharedSecretCiphertextBlob"])) == secret


# The SM2 curve's OID (1.2.156.10197.1.301) as DER, inside an SM2 key's SubjectPublicKeyInfo.
SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")


def test_sm2_keys_sign_verify_and_encrypt(kms):
    """SM2 (the China Regions' spec, RustCrypto's sm2): SM2DSA over RAW and DIGEST messages,
    SM2PKE up to 1024 bytes, an SM2 SubjectPublicKeyInfo, SM2 data key pairs. (No client library
    here implements SM2, so these are round trips through Trent.)"""
    signing = create(kms, "SM2", "SIGN_VERIFY")
    assert signing["SigningAlgorithms"] == ["SM2DSA"]
    public = kms.get_public_key(KeyId=signing["KeyId"])
    assert public["KeySpec"] == "SM2" and public["SigningAlgorithms"] == ["SM2DSA"]
    assert SM2_CURVE_OID in public["PublicKey"]
    for message_type, message in [("RAW", b"sm2 message"), ("DIGEST", bytes(range(32)))]:
        sig = kms.sign(KeyId=signing["KeyId"], Message=message, MessageType=message_type, SigningAlgorithm="SM2DSA")[
            "Signature"
        ]
        assert kms.verify(
            KeyId=signing["KeyId"], Message=message, MessageType=message_type, Signature=sig, SigningAlgorithm="SM2DSA"
        )["SignatureValid"]
        with pytest.raises(ClientError) as e:
            kms.verify(
                KeyId=signing["KeyId"], Message=message[::-1], MessageType=message_type, Signature=sig,
                SigningAlgorithm="SM2DSA",
            )
        assert error_code(e) == "KMSInvalidSignatureException"

    encrypting = create(kms, "SM2", "ENCRYPT_DECRYPT")
    assert encrypting["EncryptionAlgorithms"] == ["SM2PKE"]
    blob = kms.encrypt(KeyId=encrypting["KeyId"], Plaintext=b"x" * 1024, EncryptionAlgorithm="SM2PKE")["CiphertextBlob"]
    out = kms.decrypt(KeyId=encrypting["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm="SM2PKE")
    assert out["Plaintext"] == b"x" * 1024
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=encrypting["KeyId"], Plaintext=b"x" * 1025, EncryptionAlgorithm="SM2PKE")
    assert error_code(e) == "ValidationException"

    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=symmetric, KeyPairSpec="SM2")
    assert SM2_CURVE_OID in pair["PublicKey"]
    assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"] == pair["PrivateKeyPlaintext"]


def import_with_rsa_oaep(kms, key_id, material):
    """GetParametersForImport (RSAES_OAEP_SHA_256, RSA_3072), the material wrapped here with
    pyca/cryptography, ImportKeyMaterial."""
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072")
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    kms.import_key_material(
        KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapping.encrypt(material, oaep),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def test_sm2_key_agreement_derives_one_secret_both_ways(kms):
    """DeriveSharedSecret (ECDH) on SM2 KEY_AGREEMENT keys. No Python library here does SM2, so
    the check is that both directions agree: A's secret with B's public key is B's with A's,
    including for B an imported SM2 key pair made by GenerateDataKeyPair."""
    a = create(kms, "SM2", "KEY_AGREEMENT")
    assert a["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in a and "EncryptionAlgorithms" not in a
    a_public = kms.get_public_key(KeyId=a["KeyId"])
    assert a_public["KeyUsage"] == "KEY_AGREEMENT" and a_public["KeyAgreementAlgorithms"] == ["ECDH"]
    assert SM2_CURVE_OID in a_public["PublicKey"]
    b = create(kms, "SM2", "KEY_AGREEMENT")
    b_public = kms.get_public_key(KeyId=b["KeyId"])["PublicKey"]

    def derive(key_id, peer):
        out = kms.derive_shared_secret(KeyId=key_id, KeyAgreementAlgorithm="ECDH", PublicKey=peer)
        assert out["KeyAgreementAlgorithm"] == "ECDH"
        return out["SharedSecret"]

    ab = derive(a["KeyId"], b_public)
    assert len(ab) == 32
    assert derive(b["KeyId"], a_public["PublicKey"]) == ab

    # An SM2 pair from GenerateDataKeyPair, its private key imported into an EXTERNAL key.
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=symmetric, KeyPairSpec="SM2")
    c = kms.create_key(KeySpec="SM2", KeyUsage="KEY_AGREEMENT", Origin="EXTERNAL")["KeyMetadata"]
    import_with_rsa_oaep(kms, c["KeyId"], pair["PrivateKeyPlaintext"])
    assert kms.get_public_key(KeyId=c["KeyId"])["PublicKey"] == pair["PublicKey"]
    ac = derive(a["KeyId"], pair["PublicKey"])
    assert ac != ab
    out = kms.derive_shared_secret(KeyId=c["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=a_public["PublicKey"])
    assert out["SharedSecret"] == ac and out["KeyOrigin"] == "EXTERNAL"

    # A peer on another curve is AWS's ValidationException.
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ClientError) as e:
        derive(a["KeyId"], p256)
    assert error_code(e) == "ValidationException"
    # A KEY_AGREEMENT key neither signs nor encrypts; an SM2 signing key does not agree.
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=a["KeyId"], Message=b"x", SigningAlgorithm="SM2DSA")
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=a["KeyId"], Plaintext=b"x", EncryptionAlgorithm="SM2PKE")
    assert error_code(e) == "InvalidKeyUsageException"
    signing = create(kms, "SM2", "SIGN_VERIFY")
    with pytest.raises(ClientError) as e:
        derive(signing["KeyId"], b_public)
    assert error_code(e) == "InvalidKeyUsageException"


def test_sm2_import(kms):
    """SM2 import: an EXTERNAL SM2 key, an SM2 wrapping key for SM2PKE (its use, SM2PKE wrapping,
    is tested in crates/trent-core/tests/domain_sm2.rs: no Python library here does SM2), and
    SM2 material imported under an RSA wrapping key, which then signs as the material does."""
    key = kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY", Origin="EXTERNAL")["KeyMetadata"]
    assert key["KeyState"] == "PendingImport" and key["Origin"] == "EXTERNAL"
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="SM2PKE", WrappingKeySpec="SM2")
    assert SM2_CURVE_OID in params["PublicKey"] and params["ImportToken"]
    # SM2PKE goes with the SM2 wrapping key only, and wraps no symmetric material.
    for algorithm, spec in [("SM2PKE", "RSA_4096"), ("RSAES_OAEP_SHA_256", "SM2")]:
        with pytest.raises(ClientError) as e:
            kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
        assert error_code(e) == "ValidationException", (algorithm, spec)
    symmetric = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(KeyId=symmetric, WrappingAlgorithm="SM2PKE", WrappingKeySpec="SM2")
    assert error_code(e) == "ValidationException"
    # RSA_AES_KEY_WRAP never carries SM2 material (AWS offers it neither in the China Regions,
    # the only ones with SM2 keys, nor for SM2 material); RSAES_OAEP does.
    for algorithm in ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"]:
        with pytest.raises(ClientError) as e:
            kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_4096")
        assert error_code(e) == "ValidationException"
        assert e.value.response["Error"]["Message"] == (
            f"The {algorithm} wrapping algorithm is not supported for KMS keys with key spec SM2. "
            "To import SM2 key material, use the SM2PKE, RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 wrapping algorithm."
        )

    pair = kms.generate_data_key_pair(KeyId=kms.create_key()["KeyMetadata"]["KeyId"], KeyPairSpec="SM2")
    import_with_rsa_oaep(kms, key["KeyId"], pair["PrivateKeyPlaintext"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == pair["PublicKey"]
    sig = kms.sign(KeyId=key["KeyId"], Message=b"imported", SigningAlgorithm="SM2DSA")["Signature"]
    assert kms.verify(KeyId=key["KeyId"], Message=b"imported", Signature=sig, SigningAlgorithm="SM2DSA")["SignatureValid"]
    # Material of another curve is not an SM2 key's.
    other = kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ClientError) as e:
        import_with_rsa_oaep(kms, other, p256)
    assert error_code(e) == "IncorrectKeyMaterialException"
