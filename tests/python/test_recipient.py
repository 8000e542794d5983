"""`Recipient` (Nitro Enclaves and NitroTPM attestation) end to end with boto3: a Trent configured
with a test Nitro root (`[nitro] root_certificates`) answers GenerateDataKey, Decrypt and
GenerateRandom with `CiphertextForRecipient` and no `Plaintext`; the envelope is opened here with
`openssl cms -decrypt` and the enclave's RSA key, and must equal the data key / plaintext. A
NitroTPM document's PCRs are `kms:RecipientAttestation:NitroTPMPCR<n>`. A document from an
untrusted root or without a public key is a ValidationException; without a configured root the
parameter is UnsupportedOperationException.

The attestation documents come from `crates/trent-crypto/examples/nitro_attestation.rs` (a throwaway
PKI built with aws-lc-rs; set NITRO_ATTESTATION_BIN to a built binary, else it is built here)."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]


def fixture_bin() -> str:
    configured = os.environ.get("NITRO_ATTESTATION_BIN")
    if configured:
        return configured
    subprocess.run(
        [
            "cargo",
            "build",
            "-q",
            "-p",
            "trent-crypto",
            "--features",
            "test-pki",
            "--example",
            "nitro_attestation",
        ],
        cwd=REPO,
        check=True,
    )
    return str(REPO / "target" / "debug" / "examples" / "nitro_attestation")


@pytest.fixture(scope="module")
def nitro(tmp_path_factory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to open CiphertextForRecipient")
    out = tmp_path_factory.mktemp("nitro")
    subprocess.run([fixture_bin(), str(out)], check=True)
    return out


def open_envelope(nitro: Path, envelope: bytes, tmp_path: Path) -> bytes:
    """What the enclave does: decrypt the CMS EnvelopedData with its private key."""
    src = tmp_path / "envelope.ber"
    src.write_bytes(envelope)
    result = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(src),
         "-inkey", str(nitro / "recipient.key.der"), "-keyform", "DER", "-binary"],
        capture_output=True,
        check=True,
    )
    return result.stdout


def recipient(nitro: Path, name: str = "document.cbor") -> dict:
    return {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": (nitro / name).read_bytes()}


@pytest.fixture
def nitro_server(start_trent, nitro):
    return start_trent(extra_config=f'[nitro]\nroot_certificates = ["{nitro / "root.pem"}"]\n')


@pytest.fixture
def kms_nitro(nitro_server):
    return nitro_server.client()


def test_generate_data_key_decrypt_and_random_answer_for_the_recipient(kms_nitro, nitro, tmp_path):
    key_id = kms_nitro.create_key()["KeyMetadata"]["KeyId"]

    out = kms_nitro.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(nitro))
    assert "Plaintext" not in out, "no Plaintext with a Recipient"
    data_key = open_envelope(nitro, out["CiphertextForRecipient"], tmp_path)
    assert len(data_key) == 32
    # The CiphertextBlob is the same data key under the KMS key.
    assert kms_nitro.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == data_key

    blob = kms_nitro.encrypt(KeyId=key_id, Plaintext=b"enclave secret")["CiphertextBlob"]
    out = kms_nitro.decrypt(CiphertextBlob=blob, Recipient=recipient(nitro))
    assert "Plaintext" not in out
    assert out["KeyId"].endswith(key_id)
    assert open_envelope(nitro, out["CiphertextForRecipient"], tmp_path) == b"enclave secret"

    out = kms_nitro.generate_random(NumberOfBytes=48, Recipient=recipient(nitro))
    assert "Plaintext" not in out
    assert len(open_envelope(nitro, out["CiphertextForRecipient"], tmp_path)) == 48


def test_the_audit_record_carries_the_measurements_not_the_plaintext(nitro_server, kms_nitro, nitro, tmp_path):
    from test_audit import cloudtrail, events
    from conftest import AKID_A, SECRET_A

    key_id = kms_nitro.create_key()["KeyMetadata"]["KeyId"]
    blob = kms_nitro.encrypt(KeyId=key_id, Plaintext=b"audit-me-7c1d")["CiphertextBlob"]
    kms_nitro.decrypt(CiphertextBlob=blob, Recipient=recipient(nitro))
    kms_nitro.decrypt(CiphertextBlob=blob)
    found = events(cloudtrail(nitro_server.endpoint, AKID_A, SECRET_A), "EventName", "Decrypt")
    assert len(found) == 2
    with_recipient = [e for e in found if "recipient" in e.get("additionalEventData", {})]
    assert len(with_recipient) == 1, found
    r = with_recipient[0]["additionalEventData"]["recipient"]
    # The example's document: PCRn = 48 bytes of n + 1, base64 as CloudTrail logs it.
    pcr = lambda n: base64.b64encode(bytes([n + 1]) * 48).decode()
    assert r == {
        "attestationDocumentModuleId": "i-0123456789abcdef0-enc0123456789abcdef",
        "attestationDocumentEnclaveImageDigest": pcr(0),
        "attestationDocumentEnclavePCR1": pcr(1),
        "attestationDocumentEnclavePCR2": pcr(2),
        "attestationDocumentEnclavePCR3": pcr(3),
        "attestationDocumentEnclavePCR4": pcr(4),
        "attestationDocumentEnclavePCR8": pcr(8),
    }
    raw = "".join(p.read_text() for p in sorted((nitro_server.data_dir / "audit").glob("*.jsonl")))
    assert "audit-me-7c1d" not in raw
    assert base64.b64encode(b"audit-me-7c1d").decode() not in raw


def test_a_nitrotpm_audit_record_carries_the_pcrs_kms_logs(nitro_server, kms_nitro, nitro):
    """AWS's KMS guide ("Monitoring requests for NitroTPM"): the module id and NitroTPM PCR4, 7, 8,
    9, 16 and 23, base64, as `attestationDocumentNitroTPMPCR<n>`; no enclave members."""
    from test_audit import cloudtrail, events
    from conftest import AKID_A, SECRET_A

    kms_nitro.generate_random(NumberOfBytes=16, Recipient=recipient(nitro, "nitrotpm.cbor"))
    found = events(cloudtrail(nitro_server.endpoint, AKID_A, SECRET_A), "EventName", "GenerateRandom")
    assert len(found) == 1, found
    r = found[0]["additionalEventData"]["recipient"]
    # The example's NitroTPM document: PCRn = 48 bytes of 0x80 + n, all 24 of them.
    pcr = lambda n: base64.b64encode(bytes([0x80 + n]) * 48).decode()
    assert r == {
        "attestationDocumentModuleId": "i-0123456789abcdef0-tpm0123456789abcdef",
        **{f"attestationDocumentNitroTPMPCR{n}": pcr(n) for n in (4, 7, 8, 9, 16, 23)},
    }


def test_nitrotpm_documents_answer_and_their_pcrs_are_condition_keys(kms_nitro, nitro, tmp_path):
    """A NitroTPM document (AWS's EC2 guide: `nitrotpm_pcrs` instead of `pcrs`, the same PKI) is
    answered like an enclave's, and its PCRs are `kms:RecipientAttestation:NitroTPMPCR<n>`."""
    account = kms_nitro.create_key()["KeyMetadata"]["Arn"].split(":")[4]
    # The example's NitroTPM document: PCRn = 48 bytes of 0x80 + n.
    pcr4 = (bytes([0x84]) * 48).hex()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:GenerateDataKey",
                "Resource": "*",
                "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:NitroTPMPCR4": pcr4}},
            },
        ],
    }
    key_id = kms_nitro.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    out = kms_nitro.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(nitro, "nitrotpm.cbor"))
    assert "Plaintext" not in out
    data_key = open_envelope(nitro, out["CiphertextForRecipient"], tmp_path)
    assert kms_nitro.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == data_key
    # An enclave's document has no NitroTPM PCRs, and no Recipient none either: the Deny applies.
    for kwargs in [{"Recipient": recipient(nitro)}, {}]:
        with pytest.raises(ClientError) as e:
            kms_nitro.generate_data_key(KeyId=key_id, KeySpec="AES_256", **kwargs)
        assert e.value.response["Error"]["Code"] == "AccessDeniedException", kwargs


def test_refused_documents(kms_nitro, nitro):
    key_id = kms_nitro.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms_nitro.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(nitro, "no_key.cbor"))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "does not include a public key" in e.value.response["Error"]["Message"]
    bad = recipient(nitro)
    doc = bytearray(bad["AttestationDocument"])
    doc[len(doc) // 2] ^= 0x01
    bad["AttestationDocument"] = bytes(doc)
    with pytest.raises(ClientError) as e:
        kms_nitro.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=bad)
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_untrusted_root_and_no_root(start_trent, nitro):
    other = start_trent(extra_config=f'[nitro]\nroot_certificates = ["{nitro / "other_root.pem"}"]\n').client()
    with pytest.raises(ClientError) as e:
        other.generate_random(NumberOfBytes=16, Recipient=recipient(nitro))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "could not be verified" in e.value.response["Error"]["Message"]

    plain = start_trent(data_dir=nitro.parent / "plain-data").client()
    with pytest.raises(ClientError) as e:
        plain.generate_random(NumberOfBytes=16, Recipient=recipient(nitro))
    assert e.value.response["Error"]["Code"] == "UnsupportedOperationException"
