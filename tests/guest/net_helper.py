#!/usr/bin/env python3
"""The host side of the network guest tests (linux_e1000_test.sh,
linux_netvsc_test.sh): an HTTP server on 127.0.0.1 that the guest reaches as
10.0.2.2 through user-mode networking (or on the address NET_HELPER_ADDRESS
says, for linux_tap_test.sh).

  net_helper.py PORT_FILE DATA_FILE HOSTFWD_PORT QMP_SOCKET [NIC_NAME]

NIC_NAME is the adapter's QMP name for set_link (default e1000.0).

Writes the port it bound to PORT_FILE, then serves:
  GET  /data      DATA_FILE's bytes (the guest checks their sha256)
  POST /upload    answers with the sha256 of the body the guest sent
  GET  /hostfwd/NAME
                  fetches http://127.0.0.1:HOSTFWD_PORT/NAME, which the
                  guest's httpd serves through the hostfwd rule, and answers
                  with its sha256 (or "error ...")
  GET  /rx-filter answers with viridian's QMP query-rx-filter reply
  GET  /flap      answers, then through viridian's QMP socket takes the
                  guest's link down (set_link) and after 3 s up again
"""
import hashlib
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.request


def qmp(command, arguments):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sys.argv[4])
        f = s.makefile("rw")
        f.readline()  # the greeting
        for message in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
            f.write(json.dumps(message) + "\n")
            f.flush()
            while True:  # events may come first
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        return reply


def flap():
    name = sys.argv[5] if len(sys.argv) > 5 else "e1000.0"
    time.sleep(0.5)
    qmp("set_link", {"name": name, "up": False})
    time.sleep(3)
    qmp("set_link", {"name": name, "up": True})


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/data":
            with open(sys.argv[2], "rb") as f:
                return self.reply(f.read())
        if self.path.startswith("/hostfwd/"):
            url = "http://127.0.0.1:%s/%s" % (sys.argv[3], self.path[len("/hostfwd/"):])
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    digest = hashlib.sha256(r.read()).hexdigest()
                return self.reply(("hostfwd-sha256 %s\n" % digest).encode())
            except Exception as e:  # the guest prints what went wrong
                return self.reply(("hostfwd error %s\n" % e).encode())
        if self.path == "/rx-filter":  # what the guest's driver programmed, one line
            return self.reply(("rx-filter %s\n" % json.dumps(qmp("query-rx-filter", {}))).encode())
        if self.path == "/flap":
            self.reply(b"flapping\n")
            threading.Thread(target=flap, daemon=True).start()
            return
        self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.reply(("upload-sha256 %s %d\n" % (hashlib.sha256(body).hexdigest(), len(body))).encode())

    def log_message(self, *args):
        pass


# NET_HELPER_ADDRESS: where to listen instead (a tap interface's address).
server = http.server.ThreadingHTTPServer((os.environ.get("NET_HELPER_ADDRESS", "127.0.0.1"), 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % server.server_address[1])
server.serve_forever()
