"""Fake HTTP servers for CLI tests: a fake API object answers, FakeHandler speaks HTTP.

A fake is any object with the method its handler calls (test_cli.FakeAPI,
test_cli_app.FakeAPI); serve(fake, Handler) runs it on a free loopback port in a daemon
thread, sets fake.url, and returns the server (shutdown() it when done).
"""
import http.server
import json
import threading


class FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None  # the fake, set by serve()

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, obj, headers=()):
        """A str is sent as text/plain, anything else as JSON."""
        if isinstance(obj, str):
            data, ctype = obj.encode(), "text/plain"
        else:
            data, ctype = json.dumps(obj).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def serve(fake, handler, tls=None):
    """Serves fake through handler (a FakeHandler subclass) on 127.0.0.1; tls: a server
    ssl.SSLContext for https."""
    h = type("H", (handler,), {"api": fake})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
    if tls:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    fake.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", srv.server_address[1])
    return srv
