"""Garbage, half frames, oversized headers and modem noise from raw sockets do not disturb other
terminals; a login wrapped in DTU registration strings and URC lines still succeeds."""
import os
import random
import socket
import struct
import time

from gslib import *

N = 20


def main():
    rnd = random.Random(11)
    with TempDir() as data:
        secrets_path = provision(data, N + 1, "G")
        secrets = read_secrets(secrets_path)
        # the simulator uses the first N, the raw client the last one
        sim_secrets = os.path.join(data, "sim.txt")
        with open(sim_secrets, "w") as f:
            for i in range(1, N + 1):
                f.write("G%04d %s\n" % (i, secrets["G%04d" % i].hex()))
        srv = Server(data, ["--config", write_cfg(data)]).start()
        try:
            p = sim_start(srv.tport, sim_secrets, N, 8,
                          ["--rate", "2000", "--drain", "60", "--seed", "5"])
            wait_for(lambda: (srv.metric("gridsense_terminals_online") or 0) >= N, 60, "sim online")
            attackers = []
            # 1. pure random garbage
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", srv.tport))
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(65536)))
                attackers.append(s)
            # 2. garbage full of magic bytes and headers claiming huge payloads
            s = socket.create_connection(("127.0.0.1", srv.tport))
            junk = b""
            for _ in range(2000):
                junk += b"\xC5\x47" + bytes([1, 0x10, 0, 0]) + struct.pack("<H", 65535) + b"\x00\x00"
            s.sendall(junk)
            attackers.append(s)
            # 3. half frames: a valid header and half its payload, then silence
            hp = frame(HELLO, hello_payload("G%04d" % (N + 1)))
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", srv.tport))
                s.sendall(hp[: len(hp) // 2])
                attackers.append(s)
            # 4. corrupted frames: flipped bits in payloads
            s = socket.create_connection(("127.0.0.1", srv.tport))
            for _ in range(200):
                f = bytearray(frame(PING, struct.pack("<Iq", 1, 2)))
                f[12] ^= 0x40
                s.sendall(bytes(f))
            attackers.append(s)

            # 5. a real login wrapped in modem noise, split in small segments
            c = RawClient(srv.tport)
            tid = "G%04d" % (N + 1)
            hpl = hello_payload(tid)
            noise = b"862104051234567" + b"89860012345678901234" + b"REG:substation-7\r\n"
            # DTUs inject their strings between packets; the frame itself is re-cut into small
            # TCP segments the way transparent-mode modules do
            wire = noise + b"\r\nHEARTBEAT\r\n" + b'+QIURC: "recv",0\r\n' + frame(HELLO, hpl)
            for i in range(0, len(wire), 7):
                c.send(wire[i:i + 7])
                time.sleep(0.001)
            t, pl = c.recv_frame()
            check(t == CHALLENGE, "login preceded by IMEI/ICCID/registration/URC noise gets CHALLENGE")
            import hmac, hashlib
            mac = hmac.new(secrets[tid], pl[4:36] + hpl, hashlib.sha256).digest()
            c.send(b"+QIURC: \"recv\",0\r\n" + frame(AUTH, mac))
            t, pl = c.recv_frame()
            check(t == WELCOME, "AUTH after a URC line gets WELCOME")
            samples = bytes(60)
            for seq in range(1, 6):
                c.send(b"HEARTBEAT" + frame(WAVEFORM, block_payload(seq, time.time_ns(), 4000, 10, samples)) + b"\r\n")
                t, pl = c.recv_frame()
                check(t == ACK and struct.unpack("<Q", pl)[0] == seq,
                      "block %d between heartbeat strings acknowledged" % seq)

            # the half-frame connections are closed by the handshake timeout
            for s in attackers[6:11]:
                s.settimeout(15)
                try:
                    d = s.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    d = b""
                check(d == b"" or d[3] == REJECT, "half-frame connection rejected/closed")
            for s in attackers:
                s.close()

            rc, summ, err = sim_finish(p, timeout=200)
            print("summary:", summ)
            check(rc == 0 and summ["unacked"] == 0 and summ["reconnects"] == 0,
                  "simulated terminals were not disturbed: all acked, no reconnects")
            rep = block_report(data)
            total = sum(v[0] for k, v in rep.items() if k != tid)
            check(total == summ["blocks_generated"], "their blocks are all stored once")
            check(srv.metric("gridsense_decode_skipped_bytes_total") > 300000,
                  "garbage was skipped by the decoder (%d bytes)" % srv.metric("gridsense_decode_skipped_bytes_total"))
            check(srv.metric("gridsense_decode_crc_errors_total") >= 200, "CRC errors counted")
            st, j = srv.json("/api/v1/health")
            check(st == 200, "server healthy after the abuse")
        finally:
            check(srv.stop() == 0, "server stops cleanly")


def write_cfg(data):
    path = os.path.join(data, "g.ini")
    with open(path, "w") as f:
        f.write("[terminals]\nhandshake_timeout = 3\n")
    return path


if __name__ == "__main__":
    main()
