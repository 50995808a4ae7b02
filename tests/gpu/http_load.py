"""http_load.py - a closed-loop HTTP load: CLIENTS threads, each with one keep-alive
connection, POST the same JPEG to /invocations for SECONDS; prints one JSON line with
requests/s, p50/p99 latency and the count of non-200 answers. Standard library only.

usage: python http_load.py PORT IMAGE CLIENTS SECONDS
"""
import http.client
import json
import sys
import threading
import time


def main():
    port, image, clients, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    body = open(image, "rb").read()
    lat, errors, lock = [], [0], threading.Lock()
    end = time.perf_counter() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                bad += 1
        with lock:
            lat.extend(mine)
            errors[0] += bad

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    lat.sort()
    pct = lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None
    print(json.dumps({"clients": clients, "requests": len(lat), "errors": errors[0],
                      "req_per_s": round(len(lat) / elapsed, 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99)}))


if __name__ == "__main__":
    main()
