"""An SMTP server for the alert tests: STARTTLS required, AUTH PLAIN/LOGIN required with
one user, every accepted message appended to a file as JSON lines.

usage: smtp_sink.py PORT CERT KEY USER PASSWORD OUT_FILE
Prints "ready" once listening on 127.0.0.1:PORT; stops when stdin closes.
"""
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, user, password, out = sys.argv[1:7]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a") as f:
            f.write(json.dumps({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "auth": session.authenticated,
                "tls": session.ssl is not None,
                "data": envelope.content.decode("utf8", "replace"),
            }) + "\n")
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
        and auth_data.password.decode() == password
    return AuthResult(success=ok, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Handler(), hostname="127.0.0.1", port=int(port), tls_context=context,
    require_starttls=True, authenticator=authenticator, auth_required=True,
    auth_require_tls=True, server_hostname="localhost",
)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
