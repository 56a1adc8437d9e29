"""
The window's server (issue 11), without a browser: real mediator and daemons, plain HTTP.
- `shoal ui --url` gives http://127.0.0.1:PORT/#TOKEN; the page and its files are served from
  the build (no address outside the daemon in them);
- POST /api with a missing or wrong token, or a foreign Host (DNS rebinding), gets 403;
- with the token it speaks the control protocol: status, create, list (a joined peer appears),
  chat, and a chat-follow long poll that returns when the peer's message arrives;
- the live stream: POST /ticket needs the token; GET /events needs a fresh ticket (none, a
  wrong or a used one: 403); a stream's first event comes at once, a nick set on the other
  daemon and a chat message each bring the next one, and a daemon that stops ends the stream
  cleanly (the chunked body is terminated, not reset);
- the token file is 0600 and reused across restarts.
"""
from http.client import HTTPConnection
import json
import os
import re
import stat
import sys
import threading
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until  # noqa: E402  (run: the entry point)


def http(url, body=None, headers=None, timeout=35):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class Api:
    def __init__(self, base, token):
        self.base, self.token, self.n = base, token, 0

    def __call__(self, cmd, **fields):
        self.n += 1
        status, body, _ = http(self.base + "api", json.dumps(dict(id=self.n, cmd=cmd, **fields)).encode(),
                               {"X-Shoal-Token": self.token, "Content-Type": "application/json"})
        assert status == 200, (status, body)
        r = json.loads(body)
        assert r["id"] == self.n, r
        return r


class Stream:
    """GET /events with a ticket: its server-sent events, one (event, data) at a time."""

    def __init__(self, base, ticket):
        host, port = base.split("//")[1].rstrip("/").split(":")
        self.conn = HTTPConnection(host, int(port), timeout=30)
        self.conn.request("GET", "/events?ticket=" + ticket)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next_event(self):
        """The next event (comments, the heartbeats, skipped); None at the end of the stream."""
        event, data = None, None
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and event:
                return event, data


def ticket(base, token):
    status, body, _ = http(base + "ticket", b"", {"X-Shoal-Token": token})
    assert status == 200, (status, body)
    return json.loads(body)["ticket"]


def main():
    with Lab("ui") as lab:
        lab.start_server()
        alice = lab.start_daemon("alice")
        bob = lab.start_daemon("bob")
        url = alice.cli("ui", "--url", json_out=False).strip()
        m = re.fullmatch(r"(http://127\.0\.0\.1:\d+/)#([0-9a-f]{64})", url)
        assert m, url
        base, token = m.group(1), m.group(2)
        tf = os.path.join(alice.state, "ui.token")
        assert stat.S_IMODE(os.stat(tf).st_mode) == 0o600 and open(tf).read().strip() == token

        # the page: from the build, nothing fetched from elsewhere
        for path, kind in (("", "text/html"), ("app.js", "text/javascript"), ("app.css", "text/css")):
            status, body, hdrs = http(base + path)
            assert status == 200 and hdrs["Content-Type"].startswith(kind), (path, status, hdrs)
            # (the SVG namespace is a name, never fetched)
            local = body.replace(b"http://127.0.0.1", b"").replace(b"http://www.w3.org/2000/svg", b"")
            assert not re.search(rb"(https?:)?//[a-z0-9]", local), \
                f"{path} refers to an address outside the daemon"
            assert "default-src 'self'" in hdrs.get("Content-Security-Policy", ""), hdrs
        assert http(base + "nope")[0] == 404

        # refusals
        req = json.dumps({"id": 1, "cmd": "status"}).encode()
        assert http(base + "api", req)[0] == 403
        assert http(base + "api", req, {"X-Shoal-Token": "0" * 64})[0] == 403
        host = base.split("//")[1].rstrip("/")
        assert http(base + "api", req, {"X-Shoal-Token": token, "Host": "evil.example:" + host.split(":")[1]})[0] == 403
        assert http(base + "api", req, {"X-Shoal-Token": token, "Host": host})[0] == 200
        print("403 without the token, with a wrong one, and for a foreign Host")

        api = Api(base, token)
        st = api("status")
        assert st["ok"] and st["address"] == alice.address() and st["ui"]["url"] == base, st
        assert not api("create", network="")["ok"]          # the control's own validation
        assert api("create", network="lan")["ok"]
        bob.cli("join", "lan")
        wait_until(lambda: any(mm["nick"] == "bob" and mm["online"]
                               for n in api("list")["networks"] for mm in n["members"]), 10,
                   what="bob in alice's list through /api")

        # chat through the window, both ways; the long poll returns when bob's message arrives
        assert api("chat", network="lan", text="from the window")["ok"]
        last = api("chat-follow")["last"]
        got = {}
        t = threading.Thread(target=lambda: got.update(api("chat-follow", after=last)))
        t.start()
        bob.cli("chat", "lan", "hello window")
        t.join(30)
        texts = [mm["text"] for mm in got.get("messages", [])]
        assert "hello window" in texts, got
        print("status, create, list, chat and a chat-follow long poll through /api")

        # the live stream
        assert http(base + "ticket", b"")[0] == 403
        assert http(base + "ticket", b"", {"X-Shoal-Token": "0" * 64})[0] == 403
        assert http(base + "events")[0] == 403
        assert http(base + "events?ticket=" + "0" * 32)[0] == 403
        t = ticket(base, token)
        s = Stream(base, t)
        assert s.status == 200 and s.resp.getheader("Content-Type") == "text/event-stream", s.status
        assert http(base + "events?ticket=" + t)[0] == 403, "a ticket opens one stream only"
        ev, first = s.next_event()
        assert ev == "change", ev
        first = json.loads(first)
        bob.cli("set-nick", "bobby")
        ev, second = s.next_event()
        second = json.loads(second)
        assert ev == "change" and second["gen"] > first["gen"], (ev, first, second)
        wait_until(lambda: any(mm["nick"] == "bobby" for n in api("list")["networks"] for mm in n["members"]),
                   5, what="bob's new nick in alice's list")
        # a chat message changes the generation and the chat id it carries; the page then asks
        # chat-follow, which answers at once
        chat = second["chat"]
        bob.cli("chat", "lan", "live")
        while True:
            ev, data = s.next_event()
            data = json.loads(data)
            if data["chat"] > chat:
                break
        assert [mm["text"] for mm in api("chat-follow", after=chat)["messages"]] == ["live"]
        print("403 for /ticket without the token and /events without a fresh ticket; "
              "the stream brings a change for a peer's nick and for a chat message")

        # the token survives a restart; the stream ends cleanly when the daemon stops
        alice.proc.terminate()
        while s.next_event() is not None:
            pass
        assert s.resp.isclosed() or s.resp.read() == b""
        alice.proc.wait(10)
        alice = lab.start_daemon("alice")
        url2 = alice.cli("ui", "--url", json_out=False).strip()
        assert url2.endswith("#" + token), (url, url2)


if __name__ == "__main__":
    run(main)
