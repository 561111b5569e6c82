# The per-user SAMP hub, run by the platform in a sandbox beside the user's
# labs (python from the platform's virtualenv, with astropy):
#   python3 -c "$SCRIPT"
# It is astropy's standard-profile hub, listening on 127.0.0.1 only, with its
# lockfile at ~/.samp in the user's workspace (HOME), so every lab of the
# user finds it and no other user's does. The web profile is off (it would
# open a fixed port). Each registration, metadata declaration, message and
# reply is printed as one JSON line starting with "samp-record " for the
# platform, which keeps the hub's output in its own log.
import json
import signal
import sys
import threading
import time

from astropy.samp import SAMPHubServer, conf

# Never advertise a host name: clients and the hub talk over loopback only.
conf.use_internet = False

_out = threading.Lock()


def record(event, **fields):
    line = json.dumps({"at": round(time.time(), 3), "event": event, **fields})
    with _out:
        sys.stdout.write("samp-record " + line + "\n")
        sys.stdout.flush()


class RecordingHub(SAMPHubServer):
    def _public(self, private_key):
        entry = self._private_keys.get(private_key)
        return entry[0] if entry else None

    def _register(self, secret):
        result = super()._register(secret)
        record("register", client=result["samp.self-id"])
        return result

    def _unregister(self, private_key):
        client = self._public(private_key)
        result = super()._unregister(private_key)
        if client:
            record("unregister", client=client)
        return result

    def _declare_metadata(self, private_key, metadata):
        result = super()._declare_metadata(private_key, metadata)
        record(
            "metadata",
            client=self._public(private_key),
            name=str(metadata.get("samp.name", "")),
        )
        return result

    def _message(self, kind, private_key, recipient, message):
        record(
            "message",
            kind=kind,
            sender=self._public(private_key),
            recipient=recipient,
            mtype=str(message.get("samp.mtype", "")),
            params={k: str(v)[:200] for k, v in message.get("samp.params", {}).items()},
        )

    def _notify(self, private_key, recipient_id, message):
        result = super()._notify(private_key, recipient_id, message)
        self._message("notify", private_key, recipient_id, message)
        return result

    def _notify_all(self, private_key, message):
        result = super()._notify_all(private_key, message)
        self._message("notify_all", private_key, "*", message)
        return result

    def _call(self, private_key, recipient_id, msg_tag, message):
        result = super()._call(private_key, recipient_id, msg_tag, message)
        self._message("call", private_key, recipient_id, message)
        return result

    def _call_all(self, private_key, msg_tag, message):
        result = super()._call_all(private_key, msg_tag, message)
        self._message("call_all", private_key, "*", message)
        return result

    def _reply(self, private_key, msg_id, response):
        parts = str(msg_id).split(";;", 3)
        record(
            "reply",
            sender=self._public(private_key),
            recipient=parts[2] if len(parts) == 4 else None,
            status=str(response.get("samp.status", "")),
        )
        return super()._reply(private_key, msg_id, response)


def main():
    hub = RecordingHub(addr="127.0.0.1", web_profile=False, label="insitu")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    hub.start(wait=False)
    record("hub_started", url=hub.params.get("samp.hub.xmlrpc.url", ""))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        hub.stop()
        record("hub_stopped")


main()
