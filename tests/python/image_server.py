"""image_server.py - a small HTTP server the URL tests start on a loopback address: it serves
an image, redirects, refuses, stalls and sends bodies larger than the cap, as remote sides do.

  /img.png             the image given to ImageServer
  /redirect?to=URL     302 to URL
  /loop                302 to itself
  /big?n=N             N bytes with Content-Length
  /bigstream?n=N       N bytes without Content-Length (closed when done)
  /stall               accepts, then says nothing for 60 s
  anything else        404
"""
import http.server
import socket
import threading
import time
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/img.png":
            self._send(200, self.server.image, "image/png")
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", q["to"][0])
            self.end_headers()
        elif url.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif url.path == "/big":
            self._send(200, b"\xff" * int(q["n"][0]), "image/png")
        elif url.path == "/bigstream":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            n = int(q["n"][0])
            try:
                while n > 0:
                    self.wfile.write(b"\xff" * min(n, 65536))
                    n -= 65536
            except OSError:
                pass
        elif url.path == "/stall":
            time.sleep(60)
        else:
            self._send(404, b"no such thing", "text/plain")

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


class ImageServer:
    def __init__(self, image, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        cls = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        self.httpd = cls((host, 0), _Handler)
        self.httpd.image = image
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
