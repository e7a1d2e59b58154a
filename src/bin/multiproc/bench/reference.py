"""Python's multiprocessing, measured the way `multiproc bench` measures multiproc.

Run by `multiproc bench` (written to a temporary file); prints one JSON object.
Usage: python3 reference.py SCALE   (SCALE multiplies the iteration counts)
"""
import json
import multiprocessing as mp
import sys
import time


def consume(q, n):
    for _ in range(n):
        q.get()


def pipe_send(conn, n):
    for i in range(n):
        conn.send((i, i))
    conn.close()


def nothing(x):
    return x


def square(x):
    return x * x


def per_second(n, seconds):
    return n / seconds


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    n = lambda base: max(1, int(base * scale))
    out = {}

    q = mp.Queue(4096)
    count = n(20000)
    p = mp.Process(target=consume, args=(q, count))
    p.start()
    t = time.perf_counter()
    for i in range(count):
        q.put((i, i))
    p.join()
    out["queue_msgs_per_s"] = per_second(count, time.perf_counter() - t)

    recv, send = mp.Pipe(duplex=False)
    count = n(20000)
    p = mp.Process(target=pipe_send, args=(send, count))
    p.start()
    t = time.perf_counter()
    for _ in range(count):
        recv.recv()
    out["pipe_msgs_per_s"] = per_second(count, time.perf_counter() - t)
    p.join()

    lock = mp.Lock()
    ops = n(200000)
    t = time.perf_counter()
    for _ in range(ops):
        lock.acquire()
        lock.release()
    out["lock_ns"] = (time.perf_counter() - t) / ops * 1e9

    v = mp.Value("q", 0)
    t = time.perf_counter()
    for _ in range(ops):
        with v.get_lock():
            v.value += 1
    out["value_ns"] = (time.perf_counter() - t) / ops * 1e9

    with mp.Manager() as manager:
        d = manager.dict()
        ops = n(2000)
        t = time.perf_counter()
        for i in range(ops):
            d[i % 100] = i
        out["dict_insert_per_s"] = per_second(ops, time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(ops):
            d[i % 100]
        out["dict_get_per_s"] = per_second(ops, time.perf_counter() - t)

    spawn = mp.get_context("spawn")
    times = n(5)
    t = time.perf_counter()
    for i in range(times):
        p = spawn.Process(target=nothing, args=(i,))
        p.start()
        p.join()
    out["spawn_ms"] = (time.perf_counter() - t) / times * 1e3

    with mp.Pool(2) as pool:
        pool.map(square, range(10))
        times = n(20)
        t = time.perf_counter()
        for _ in range(times):
            pool.map(square, range(1000))
        out["pool_map_ms"] = (time.perf_counter() - t) / times * 1e3

    print(json.dumps(out))


if __name__ == "__main__":
    main()
