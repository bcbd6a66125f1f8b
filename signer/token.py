"""One logged-in PKCS#11 session: the only module that imports python-pkcs11.

Rules measured on SoftHSM (see docs/architecture.md): python-pkcs11 initialises the
library without OS locking, so a process must never sign from two threads; login belongs
to the application, so a process logs in once and keeps that session open for its life.
A TokenSession is therefore one per process, used from one thread.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import (
    NoSuchKey,
    NoSuchToken,
    PinIncorrect,
    PinLenRange,
    PKCS11Error,
)
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from core.base.der import ecdsa_signature_from_raw
from core.base.errors import HsmUnavailable, SignerError
from signer.algorithms import DIGEST_INFO_PREFIX, KeyType, SignAlgorithm

_LIBS: dict[str, Any] = {}
_LOADED_CONF: dict[str, str | None] = {}
_OPEN: dict[str, int] = {}  # module -> TokenSessions open in this process
# Looking for a token again after C_Finalize/C_Initialize: attempts, and the pause before
# each retry (a hook, so a test can change the token directory in between).
TOKEN_ATTEMPTS = 4
_pause: Callable[[float], None] = time.sleep

_RSA_MECHANISMS = {
    SignAlgorithm.RSA_PKCS1_SHA256: (Mechanism.SHA256_RSA_PKCS, None),
    SignAlgorithm.RSA_PKCS1_SHA384: (Mechanism.SHA384_RSA_PKCS, None),
    SignAlgorithm.RSA_PSS_SHA256: (
        Mechanism.SHA256_RSA_PKCS_PSS,
        (Mechanism.SHA256, pkcs11.MGF.SHA256, 32),
    ),
    SignAlgorithm.RSA_PSS_SHA384: (
        Mechanism.SHA384_RSA_PKCS_PSS,
        (Mechanism.SHA384, pkcs11.MGF.SHA384, 48),
    ),
}


def _load_library(module: str) -> Any:
    # A PKCS#11 module is initialised once per process; python-pkcs11 refuses a second.
    lib = _LIBS.get(module)
    if lib is None:
        if not Path(module).is_file():
            raise HsmUnavailable(
                f"PKCS#11 module {module} not found (for SoftHSM: apt-get install softhsm2)"
            )
        try:
            lib = pkcs11.lib(module)
        except (RuntimeError, OSError, PKCS11Error) as exc:
            raise HsmUnavailable(f"cannot load PKCS#11 module {module}: {exc}") from exc
        _LIBS[module] = lib
    return lib


def _find_token(lib: Any, module: str, token_label: str) -> Any:
    """The token, looked for again after re-initialising the module if it is missing.

    SoftHSM reads its token directory at C_Initialize and leaves out a token it cannot
    read consistently at that moment ("Token integrity check failed",
    softhsm/SoftHSMv2#757, under parallel access). A signer-ceiling process of
    `hanko bench ocsp` once found no token while the refresh's workers were signing.
    Re-initialising closes every session of the process, so it is done only while this
    process has none open."""
    for attempt in range(1, TOKEN_ATTEMPTS + 1):
        try:
            return lib.get_token(token_label=token_label)
        except NoSuchToken:
            if attempt == TOKEN_ATTEMPTS or _OPEN.get(module, 0):
                raise HsmUnavailable(f"no token labelled {token_label!r} in {module}") from None
        except PKCS11Error as exc:
            raise HsmUnavailable(f"cannot reach token {token_label!r}: {exc!r}") from exc
        _pause(0.05 * attempt)
        try:
            lib.reinitialize()
        except PKCS11Error as exc:
            raise HsmUnavailable(f"cannot re-initialise {module}: {exc!r}") from exc
    raise AssertionError("unreachable")  # the loop returns or raises


class TokenSession:
    def __init__(
        self, module: str, token_label: str, pin: str, *, softhsm_conf: str | None = None
    ) -> None:
        if module in _LOADED_CONF and _LOADED_CONF[module] != softhsm_conf:
            # SoftHSM reads its configuration once, at C_Initialize: another token
            # directory in the same process would silently show the first one's tokens.
            raise HsmUnavailable(
                f"{module} is already initialised in this process with another configuration"
                f" ({_LOADED_CONF[module]}); use a new process for {softhsm_conf}"
            )
        if softhsm_conf is not None:
            # SoftHSM reads this when the module is initialised, so it must be set first.
            os.environ["SOFTHSM2_CONF"] = softhsm_conf
        lib = _load_library(module)
        _LOADED_CONF[module] = softhsm_conf
        token = _find_token(lib, module, token_label)
        try:
            self._session = token.open(rw=True, user_pin=pin)
        except (PinIncorrect, PinLenRange):
            raise HsmUnavailable(f"token {token_label!r} refused login: wrong PIN") from None
        except PKCS11Error as exc:
            raise HsmUnavailable(f"token {token_label!r} refused login: {exc!r}") from exc
        self.token_label = token_label
        self._module = module
        self._closed = False
        _OPEN[module] = _OPEN.get(module, 0) + 1
        self._private: dict[str, Any] = {}
        self._types: dict[str, KeyType] = {}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _OPEN[self._module] -= 1
        self._session.close()

    # -- keys -------------------------------------------------------------------------

    def generate_key(self, label: str, key_type: KeyType) -> bytes:
        """Generate a non-extractable key pair inside the token; returns the SPKI DER."""
        if self._find(ObjectClass.PRIVATE_KEY, label) is not None:
            raise HsmUnavailable(f"a key labelled {label!r} already exists on the token")
        template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        ident = hashlib.sha256(label.encode()).digest()[:16]
        if key_type.is_ec:
            params = self._session.create_domain_parameters(
                P11KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(key_type.curve_oid)},
                local=True,
            )
            pub, _ = params.generate_keypair(
                store=True, label=label, id=ident, private_template=template
            )
            return bytes(encode_ec_public_key(pub))
        pub, _ = self._session.generate_keypair(
            P11KeyType.RSA,
            key_type.rsa_bits,
            store=True,
            label=label,
            id=ident,
            private_template=template,
        )
        return bytes(encode_rsa_public_key(pub))

    def _find(self, cls: ObjectClass, label: str) -> Any:
        try:
            return self._session.get_key(object_class=cls, label=label)
        except NoSuchKey:
            return None

    def private_key(self, label: str) -> Any:
        key = self._private.get(label)
        if key is None:
            key = self._find(ObjectClass.PRIVATE_KEY, label)
            if key is None:
                raise HsmUnavailable(
                    f"no private key labelled {label!r} on token {self.token_label!r}"
                )
            self._private[label] = key
            self._types[label] = self._key_type(label, key)
        return key

    def _key_type(self, label: str, key: Any) -> KeyType:
        if key.key_type == P11KeyType.EC:
            pub = self._find(ObjectClass.PUBLIC_KEY, label)
            if pub is None:
                raise HsmUnavailable(f"key {label!r} has no public half on the token")
            oid_der = bytes(pub[Attribute.EC_PARAMS])
            for kt in (KeyType.ECDSA_P256, KeyType.ECDSA_P384):
                if encode_named_curve_parameters(kt.curve_oid) == oid_der:
                    return kt
            raise HsmUnavailable(f"key {label!r} is on a curve hanko does not sign with")
        if key.key_type == P11KeyType.RSA:
            bits = int(key.key_length)
            return KeyType.RSA_3072 if bits >= 3072 else KeyType.RSA_2048
        raise HsmUnavailable(f"key {label!r} is neither RSA nor EC")

    def key_type(self, label: str) -> KeyType:
        self.private_key(label)
        return self._types[label]

    def public_key_der(self, label: str) -> bytes:
        pub = self._find(ObjectClass.PUBLIC_KEY, label)
        if pub is None:
            raise HsmUnavailable(f"no public key labelled {label!r} on token {self.token_label!r}")
        if pub.key_type == P11KeyType.EC:
            return bytes(encode_ec_public_key(pub))
        return bytes(encode_rsa_public_key(pub))

    # -- signing ----------------------------------------------------------------------

    def signer_for(
        self, label: str, alg: SignAlgorithm, *, prehashed: bool = False
    ) -> Callable[[bytes], bytes]:
        """A function that signs whole messages (or, `prehashed`, their digests) with
        `label` and `alg`, returning the X.509 signature form. Built once per (key,
        algorithm) and reused: it is the worker's hot path."""
        key = self.private_key(label)
        if not self._types[label].accepts(alg):
            raise SignerError(
                f"key {label!r} is {self._types[label].value} and cannot sign {alg.slug}"
            )
        key_sign = key.sign
        if alg.is_ecdsa:
            # SoftHSM has no CKM_ECDSA_SHA256: hash here, sign the digest raw.
            hash_new = hashlib.sha384 if alg.hash_name == "sha384" else hashlib.sha256
            ecdsa = Mechanism.ECDSA
            size = alg.digest_size

            def sign_ecdsa(data: bytes) -> bytes:
                if prehashed and len(data) != size:
                    raise SignerError(f"a {alg.hash_name} digest is {size} bytes, not {len(data)}")
                try:
                    raw = key_sign(data if prehashed else hash_new(data).digest(), mechanism=ecdsa)
                except PKCS11Error as exc:
                    raise SignerError(f"HSM refused to sign with {label!r}: {exc!r}") from exc
                return ecdsa_signature_from_raw(raw)

            return sign_ecdsa
        if prehashed:
            return self._rsa_digest_signer(label, alg, key_sign)
        mechanism, param = _RSA_MECHANISMS[alg]

        def sign_rsa(data: bytes) -> bytes:
            try:
                return bytes(key_sign(data, mechanism=mechanism, mechanism_param=param))
            except PKCS11Error as exc:
                raise SignerError(f"HSM refused to sign with {label!r}: {exc!r}") from exc

        return sign_rsa

    @staticmethod
    def _rsa_digest_signer(
        label: str, alg: SignAlgorithm, key_sign: Callable[..., Any]
    ) -> Callable[[bytes], bytes]:
        if alg.is_pss:
            raise SignerError(f"{alg.slug} is not offered over a digest")
        prefix, size = DIGEST_INFO_PREFIX[alg.hash_name], alg.digest_size
        raw_pkcs1 = Mechanism.RSA_PKCS

        def sign_digest(digest: bytes) -> bytes:
            if len(digest) != size:
                raise SignerError(f"a {alg.hash_name} digest is {size} bytes, not {len(digest)}")
            try:
                return bytes(key_sign(prefix + digest, mechanism=raw_pkcs1))
            except PKCS11Error as exc:
                raise SignerError(f"HSM refused to sign with {label!r}: {exc!r}") from exc

        return sign_digest

    def sign(self, label: str, alg: SignAlgorithm, data: bytes) -> bytes:
        """Sign `data` (the full message, not a digest); returns the X.509 signature form."""
        return self.signer_for(label, alg)(data)
