"""`TokenCipher`: tokens encrypted at rest with Fernet; the key comes from the caller (the CLI reads
LEDGERSYNC_SECRET_KEY), never from the environment here."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from connectors.quickbooks.oauth import TokenSet
from engine.errors import ConfigurationError

KEY_VARIABLE = "LEDGERSYNC_SECRET_KEY"
HOW_TO_GENERATE = (
    f"set {KEY_VARIABLE} to a Fernet key; generate one with: "
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def generate_key() -> str:
    return Fernet.generate_key().decode()


class TokenCipher:
    """Encrypts a TokenSet to bytes for the state store, and back."""

    def __init__(self, key: str | SecretStr | None) -> None:
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        if not raw or not raw.strip():
            raise ConfigurationError(f"no secret key for the stored QuickBooks tokens: {HOW_TO_GENERATE}")
        try:
            self._fernet = Fernet(raw.strip().encode())
        except ValueError:
            # Never echo the bad key back: it may be a real secret pasted in the wrong place.
            raise ConfigurationError(
                f"{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes): "
                f"{HOW_TO_GENERATE}"
            ) from None

    def encrypt(self, tokens: TokenSet) -> bytes:
        data = tokens.model_dump(mode="json")  # SecretStr fields dump masked: put the clear values in
        data["access_token"] = tokens.access_token.get_secret_value()
        data["refresh_token"] = tokens.refresh_token.get_secret_value()
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode())

    def decrypt(self, ciphertext: bytes) -> TokenSet:
        try:
            plain = self._fernet.decrypt(ciphertext)
        except InvalidToken:
            raise ConfigurationError(
                "the stored QuickBooks tokens cannot be decrypted with this key "
                f"(was {KEY_VARIABLE} changed?); reconnect with `ledgersync connect`"
            ) from None
        return TokenSet.model_validate_json(plain)
