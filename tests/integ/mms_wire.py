"""Helpers of the MMS server tests (test_mms_replay, test_mms_abuse): the client side of the
reference captures (tests/vectors/mms), TPKT reading from a socket, minimal client PDUs, and the
tshark check of a conversation written with text2pcap."""
import os
import select
import shutil
import socket
import subprocess
import time

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors", "mms")


def load_connections():
    """{(file, stream): {"c2s": [tpkt bytes...], "s2c": [...]}} of every capture."""
    conns = {}
    for name in sorted(os.listdir(VECTORS)):
        if not name.endswith(".hex"):
            continue
        for line in open(os.path.join(VECTORS, name)):
            parts = line.split()
            if len(parts) != 4:
                continue
            d, stream, _idx, hx = parts
            c = conns.setdefault((name[:-4], int(stream)), {"c2s": [], "s2c": []})
            c[d].append(bytes.fromhex(hx))
    return conns


def ber_len(b, i):
    """(length, index of the contents) of the BER element whose length octets start at i."""
    n = b[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k


def expects_answer(tpkt):
    """Whether our server answers this client TPKT (CR, the last DT of a CONNECT, FINISH, or an
    MMS PDU other than a Reject); False for ABORT, DR and DTs without EOT."""
    try:
        li = tpkt[4]
        code = tpkt[5] & 0xF0
        if code == 0xE0:
            return True  # CR
        if code != 0xF0 or not (tpkt[6] & 0x80):
            return False
        spdu = tpkt[5 + li:]
        si = spdu[0]
        if si in (0x0D, 0x09):  # CONNECT, FINISH
            return True
        if si != 0x01:
            return False
        u = spdu[4:]  # after GIVE TOKENS + DATA TRANSFER
        # fully-encoded-data [APPLICATION 1] { PDV-list SEQUENCE { ctx INTEGER, [0] pdu } }
        _, i = ber_len(u, 1)
        _, i = ber_len(u, i + 1)
        ln, i = ber_len(u, i + 1)
        i += ln
        _, i = ber_len(u, i + 1)
        return u[i] != 0xA4  # a client's Reject is not answered
    except IndexError:
        return False


def read_tpkt(sock, timeout):
    """One whole TPKT, or None at EOF / timeout."""
    buf = b""
    end = time.time() + timeout
    need = 4
    while len(buf) < need:
        left = end - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        try:
            chunk = sock.recv(need - len(buf))
        except (ConnectionResetError, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
        if len(buf) >= 4 and need == 4:
            need = int.from_bytes(buf[2:4], "big")
            if need < 4:
                return None
    return buf


def read_answer(sock, timeout=10):
    """TPKTs until the last DT of a TSDU (or a CC / ER / DR): the list, [] at EOF/timeout."""
    out = []
    while True:
        t = read_tpkt(sock, timeout)
        if t is None:
            return out
        out.append(t)
        code = t[5] & 0xF0
        if code != 0xF0 or (t[6] & 0x80):
            return out


def replay(port, c2s, timeout=10):
    """Sends a connection's client TPKTs one by one, reading our server's answers as they are
    due. Returns the conversation [(dir, bytes)] ('O' client, 'I' server) and whether the
    server closed the connection at the end."""
    conv = []
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    closed = False
    try:
        for t in c2s:
            try:
                s.sendall(t)
            except OSError:
                closed = True
                break
            conv.append(("O", t))
            if expects_answer(t):
                for a in read_answer(s, timeout):
                    conv.append(("I", a))
        # whatever else comes (reports), until the server closes or stays quiet
        while True:
            t = read_tpkt(s, 0.3)
            if t is None:
                break
            conv.append(("I", t))
        s.setblocking(False)
        try:
            closed = closed or s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed = True
    finally:
        s.close()
    return conv, closed


def have_tshark():
    return shutil.which("tshark") is not None


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF


def write_pcap(path, convs):
    """A pcap of several conversations: convs[k] is [(dir, bytes)] with 'O' client -> server
    (port 10102) and 'I' back, one TCP connection per conversation (client port 40000 + k),
    each TPKT one segment (Ethernet, IPv4, TCP with consistent sequence numbers)."""
    import struct
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    ts = 0
    for k, conv in enumerate(convs):
        cport = 40000 + k
        seq = {"O": 1000, "I": 5000}
        for d, b in conv:
            src, dst = (b"\x0a\x02\x02\x02", b"\x0a\x01\x01\x01") if d == "O" else \
                (b"\x0a\x01\x01\x01", b"\x0a\x02\x02\x02")
            sp, dp = (cport, 10102) if d == "O" else (10102, cport)
            other = "I" if d == "O" else "O"
            tcp = struct.pack(">HHIIBBHHH", sp, dp, seq[d], seq[other], 5 << 4, 0x18, 65535, 0, 0)
            seq[d] += len(b)
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(b), k & 0xFFFF, 0, 64,
                             6, 0, src, dst)
            ip = ip[:10] + struct.pack(">H", _csum(ip)) + ip[12:]
            pseudo = src + dst + struct.pack(">BBH", 0, 6, len(tcp) + len(b))
            tcp = tcp[:16] + struct.pack(">H", _csum(pseudo + tcp + b)) + tcp[18:]
            frame = b"\0\1\2\3\4\5" + b"\0\1\2\3\4\6" + b"\x08\x00" + ip + tcp + b
            ts += 1
            out.append(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(frame), len(frame)))
            out.append(frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def tshark_check(convs, workdir, tag):
    """Writes the conversations as one pcap and decodes it with tshark's TPKT/COTP/session/
    presentation/ACSE/MMS dissectors. Returns (infos, detail, problems): infos[k] is the list of
    Info column texts of conversation k (both directions), detail the -V text, problems the
    malformed frames and expert warnings/errors (with context)."""
    pcap = os.path.join(workdir, tag + ".pcap")
    write_pcap(pcap, convs)
    cols = subprocess.run(["tshark", "-r", pcap, "-d", "tcp.port==10102,tpkt", "-T", "fields",
                           "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "_ws.col.Info"],
                          capture_output=True, text=True, timeout=120).stdout
    infos = [[] for _ in convs]
    for line in cols.splitlines():
        f = line.split("\t")
        if len(f) < 3:
            continue
        port = int(f[0]) if f[0] != "10102" else int(f[1])
        if 40000 <= port < 40000 + len(convs):
            infos[port - 40000].append(f[2])
    detail = subprocess.run(["tshark", "-r", pcap, "-d", "tcp.port==10102,tpkt", "-V"],
                            capture_output=True, text=True, timeout=300).stdout
    problems = []
    lines = detail.splitlines()
    frame = ""
    for i, line in enumerate(lines):
        if line.startswith("Frame "):
            frame = line
        low = line.lower()
        if "malformed" in low or "Expert Info (Error" in line or "Expert Info (Warning" in line:
            problems.append(frame + "\n" + "\n".join(lines[max(0, i - 6):i + 2]))
    return infos, detail, problems
