"""websockify's authentication in a desktop lab: every request, for noVNC's
files (with --web-auth) and for the WebSocket alike, must carry HTTP Basic
credentials of the user "insitu" with the lab's own secret, which only the
lab proxy presents. The secret comes from the environment
(INSITU_LAB_SECRET): websockify's stock BasicHTTPAuth takes it on the
command line, which every process of the host can read."""
import base64
import hmac
import os

from websockify.auth_plugins import AuthenticationError

USER = "insitu"


class LabSecretAuth:
    def __init__(self, src=None):
        secret = os.environ.get("INSITU_LAB_SECRET", "")
        if len(secret) < 32:
            raise SystemExit("insitu-desktop: websockify has no lab secret (INSITU_LAB_SECRET)")
        pair = f"{USER}:{secret}".encode("ascii")
        self.expected = b"Basic " + base64.b64encode(pair)

    def authenticate(self, headers, target_host, target_port):
        given = (headers.get("Authorization") or "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self.expected):
            raise AuthenticationError(
                response_code=401,
                response_msg="Unauthorized",
                response_headers={"WWW-Authenticate": 'Basic realm="insitu"'},
            )
