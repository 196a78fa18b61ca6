"""How a Python service checks user-auth-service's access tokens: PyJWT with the public keys of its JWKS.

No call to the auth service per request: the keys are fetched once and cached. Needs PyJWT with its crypto
extra (Debian: apt-get install python3-jwt python3-cryptography; elsewhere: pip install "pyjwt[crypto]").

    AUTH_URL       the service's URL, which is also its token issuer (default http://localhost:5000)
    AUTH_AUDIENCE  the audience its tokens carry (default user-auth-service, its JWT_AUDIENCE)

    python3 verify_token.py <access_token>   prints the token's claims, or why it is refused (exit status 1)
"""

import json
import os
import sys

import jwt

AUTH_URL = os.environ.get("AUTH_URL", "http://localhost:5000")
AUDIENCE = os.environ.get("AUTH_AUDIENCE", "user-auth-service")
# What the service signs with: ES256 unless its JWT_ALGORITHM says RS256 or EdDSA. Pinned, so that a token
# cannot choose its own algorithm ("none", or HS256 with the public key as the secret).
ALGORITHMS = ["ES256"]

# Fetches the key set on first use and keeps it for 5 minutes; a token naming a kid it does not hold (after a key
# rotation) fetches it again.
jwks = jwt.PyJWKClient(f"{AUTH_URL}/.well-known/jwks.json")


def verify_access_token(token: str) -> dict:
    """The token's claims once its signature, issuer, audience and times check out; else a jwt.PyJWTError."""
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=ALGORITHMS,
        issuer=AUTH_URL,
        audience=AUDIENCE,
        leeway=5,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


if __name__ == "__main__":
    try:
        claims = verify_access_token(sys.argv[1])
    except jwt.PyJWTError as error:
        # The reason, never the token.
        print(f"refused: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"sub": claims["sub"], "username": claims.get("username"), "sid": claims.get("sid")}))
