"""An independent decoder of docs/protocol.md Appendix A (codec 1 and codec 2, A.11), written from
the spec text in Python, checked against every vector of docs/vectors/wcodec.json: each encoded
block decodes to its raw samples. It shares nothing with src/wcodec (the sine table of the
block model is rebuilt with A.11's integer algorithm), so the spec alone is enough to decode.
With --explain N it prints the fields of vector N (the worked examples of A.9 and A.11)."""
import json
import os
import sys

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "vectors", "wcodec.json")


class Bad(Exception):
    pass


def quarter(i):
    """A.11: Q(i), sin(i pi / 512) in Q30 by the series to x^13, integers only."""
    x = (i * 3373259426 + 256) >> 9
    x2 = (x * x + (1 << 29)) >> 30
    t = 1 << 30
    for d in (156, 110, 72, 42, 20, 6):
        t = (1 << 30) - ((((x2 * t + (1 << 29)) >> 30) + d // 2) // d)
    return (x * t + (1 << 29)) >> 30


T = [quarter(i) for i in range(257)]
T += [T[512 - i] for i in range(257, 513)]
T += [-T[i - 512] for i in range(513, 1025)]


def msin(th):
    i, r = th >> 22, th & 0x3FFFFF
    return T[i] + ((T[i + 1] - T[i]) * r >> 22)  # Python >> is floor


def model(coef, F, g):
    acc = 0
    for j in range(len(coef) // 2):
        th = ((2 * j + 1) * F * g) & 0xFFFFFFFF
        acc += coef[2 * j] * msin(th) + coef[2 * j + 1] * msin((th + (1 << 30)) & 0xFFFFFFFF)
    return (acc + (1 << 29)) >> 30


class Bits:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def get(self, n):
        if self.pos + n > 8 * len(self.b):
            raise Bad("payload ends early")
        v = 0
        for _ in range(n):
            v = v << 1 | (self.b[self.pos >> 3] >> (7 - (self.pos & 7)) & 1)
            self.pos += 1
        return v

    def sget(self, n):
        v = self.get(n)
        return v - (1 << n) if n and v >> (n - 1) else v


def varint(b, pos):
    v = 0
    for k in range(3):
        if pos + k >= len(b):
            raise Bad("varint runs past the end")
        v |= (b[pos + k] & 0x7F) << (7 * k)
        if not b[pos + k] & 0x80:
            if k and b[pos + k] == 0:
                raise Bad("varint not minimal")
            return v, pos + k + 1
    raise Bad("varint longer than 3 bytes")


def decode_segment(codec, b, nsets, nch, fmt, first, x, log=None):
    """Decodes one segment at b[0:] into x[c][g]; returns (n, bytes used)."""
    shape = (fmt - 1) << 4 | (nch - 1)
    has_model = codec == 2 and b[0] == shape | 0x20
    if b[0] != shape and not has_model:
        raise Bad("shape byte")
    nm1, p = varint(b, 1)
    P, p = varint(b, p)
    L, p = varint(b, p)
    n = nm1 + 1
    if n > nsets - first or P == 1 or P > 2047 or L > len(b) - p:
        raise Bad("header")
    br = Bits(b[p:p + L])
    lo, hi = (-32768, 32767) if fmt == 1 else (-2 ** 31, 2 ** 31 - 1)
    F = br.get(32) if has_model else 0
    if log is not None:
        log.append("header: shape %02x, n = %d, P = %d, payload %d bytes%s"
                   % (b[0], n, P, L, ", F = %d (%.4f sets per cycle)" % (F, 2 ** 32 / F)
                      if has_model else ""))
    for c in range(nch):
        xs = x[c]
        if first == 0:
            warm = br.sget(16 if fmt == 1 else 32)
        else:
            warm = xs[0]
        coef = []
        if has_model:
            H = br.get(3)
            for _ in range(2 * H):
                w = br.get(5)
                if w > 28:
                    raise Bad("coefficient width")
                coef.append(br.sget(w) if w else 0)
        nlpc = br.get(2)
        if nlpc > 2:
            raise Bad("nlpc")
        lpcs = []
        for _ in range(nlpc):
            o, lc, prec, sh = br.get(5), br.get(2), br.get(4) + 1, br.get(5)
            if o + (0, 1, 3, 6)[lc] == 0 or (lc and P == 0):
                raise Bad("lpc")
            lags = list(range(1, o + 1)) + [[], [P], [P - 1, P, P + 1],
                                            [P - 1, P, P + 1, 2 * P - 1, 2 * P, 2 * P + 1]][lc]
            lpcs.append((lags, [br.sget(prec) for _ in lags], sh))
        po = br.get(4)
        if po > 8 or (1 << po) > n:
            raise Bad("partition order")
        if log is not None:
            log.append("channel %d: warm-up %d, model %s, %d LPC, partition order %d"
                       % (c, warm, coef if has_model else "-", nlpc, po))

        def rd(g):
            return xs[g] if g >= 0 else warm
        pid = pk = None
        for j in range(1 << po):
            s, e = first + (n * j >> po), first + (n * (j + 1) >> po)
            if j > 0 and br.get(1) == 1:
                pid_ = pid
            else:
                pid_ = br.get(3)
            if j == 0:
                k = br.get(5)
            else:
                f = br.get(2)
                k = pk if f == 0 else pk + 1 if f == 1 and pk < 31 else \
                    pk - 1 if f == 2 and pk > 0 else br.get(5) if f == 3 else None
                if k is None:
                    raise Bad("k step")
            pid, pk = pid_, k
            if pid in (4, 5) and P == 0 or pid >= 6 and pid - 6 >= nlpc:
                raise Bad("predictor")
            w = br.get(6) if k == 31 else 0
            if w > 40:
                raise Bad("escape width")
            if log is not None:
                log.append("  partition %d: sets %d..%d, predictor %d, k %d%s"
                           % (j, s, e - 1, pid, k, ", escape width %d" % w if k == 31 else ""))
            for g in range(s, e):
                if k == 31:
                    r = br.sget(w) if w else 0
                else:
                    q = 0
                    while br.get(1) == 0:
                        q += 1
                    u = q << k | br.get(k)
                    if u >= 1 << 40:
                        raise Bad("rice value")
                    r = u >> 1 if u % 2 == 0 else -((u + 1) >> 1)
                if pid == 0:
                    pr = model(coef, F, g) if coef else 0
                elif pid == 1:
                    pr = rd(g - 1)
                elif pid == 2:
                    pr = 2 * rd(g - 1) - rd(g - 2)
                elif pid == 3:
                    pr = 3 * rd(g - 1) - 3 * rd(g - 2) + rd(g - 3)
                elif pid == 4:
                    pr = rd(g - P)
                elif pid == 5:
                    pr = rd(g - 1) + rd(g - P) - rd(g - P - 1)
                else:
                    lags, cs, sh = lpcs[pid - 6]
                    S = sum(a * rd(g - l) for a, l in zip(cs, lags))
                    pr = S if sh == 0 else (S + (1 << (sh - 1))) >> sh
                v = pr + r
                if not lo <= v <= hi:
                    raise Bad("sample out of range")
                xs[g] = v
        if first == 0 and xs[0] != warm:
            raise Bad("set 0 differs from its warm-up")
    rest = 8 * L - br.pos
    if rest >= 8 or (rest and br.get(rest) != 0):
        raise Bad("padding")
    return n, p + L


def decode_block(codec, b, nsets, nch, fmt, log=None):
    x = [[0] * nsets for _ in range(nch)]
    first = off = 0
    while first < nsets:
        if off >= len(b):
            raise Bad("segments end early")
        n, used = decode_segment(codec, b[off:], nsets, nch, fmt, first, x, log)
        first += n
        off += used
    if off != len(b):
        raise Bad("bytes after the last segment")
    return x


def raw_values(h, nsets, nch, fmt):
    b, w = bytes.fromhex(h), 2 * fmt
    return [[int.from_bytes(b[(g * nch + c) * w:(g * nch + c + 1) * w], "little", signed=True)
             for g in range(nsets)] for c in range(nch)]


def main():
    vs = json.load(open(VECTORS))["vectors"]
    if len(sys.argv) == 3 and sys.argv[1] == "--explain":
        v = vs[int(sys.argv[2])]
        log = []
        decode_block(v.get("codec", 1), bytes.fromhex(v["encoded"]), v["nsets"], v["nch"],
                     v["fmt"], log)
        print("\n".join(log))
        return
    n2 = 0
    for v in vs:
        codec = v.get("codec", 1)
        enc = bytes.fromhex(v["encoded"])
        got = decode_block(codec, enc, v["nsets"], v["nch"], v["fmt"])
        want = raw_values(v["raw"], v["nsets"], v["nch"], v["fmt"])
        if got != want:
            print("FAIL: %s: decodes to other samples" % v["name"])
            sys.exit(1)
        if codec == 2 and enc[0] & 0x20:
            n2 += 1
            try:  # a model segment is not codec 1
                decode_block(1, enc, v["nsets"], v["nch"], v["fmt"])
                print("FAIL: %s: a codec-1 decoder accepts a model segment" % v["name"])
                sys.exit(1)
            except Bad:
                pass
        print("ok: %s (codec %d, %d bytes) decodes to its %d samples"
              % (v["name"], codec, len(enc), v["nsets"] * v["nch"]))
    if n2 < 3:
        print("FAIL: fewer than 3 codec-2 model vectors (%d)" % n2)
        sys.exit(1)
    # the table: within 3 of round(2^30 sin) (the spec's accuracy statement)
    import math
    err = max(abs(T[i] - round(2 ** 30 * math.sin(2 * math.pi * i / 1024))) for i in range(1025))
    if err > 3:
        print("FAIL: sine table off by %d" % err)
        sys.exit(1)
    print("ok: A.11 sine table within %d of round(2^30 sin); T[1] = %d, T[128] = %d, T[256] = %d"
          % (err, T[1], T[128], T[256]))
    print("ok: %d vectors, %d with a block model" % (len(vs), n2))


if __name__ == "__main__":
    main()
