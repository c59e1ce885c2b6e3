"""The MMS server (`serve --mms`) replays the client side of every connection of the reference
captures (tests/vectors/mms) over TCP: each client request is decoded by our stack (no reject,
no protocol error in the server's counters), each gets its answer, and tshark's dissectors
decode our side of every conversation (written as one pcap, a TCP connection each) as TPKT/COTP/session/
presentation/ACSE/MMS with no malformed frame and no expert warning or error.

The captures' requests name the reference server's logical device "simpleIOGenericIO" (17
characters). The server here has one terminal provisioned as REPLAY01, whose logical device is
"GRIDSENSEREPLAY01" — 17 characters too — and that is the only rewrite: those 17 octets are
replaced wherever they occur in the client's TPKTs, so no BER length changes. The item names
are sent unchanged: where our model has them (LLN0 and its datasets and report control blocks
EventsRCB01 etc., LPHD1, GGIO1...) ours answers with data and the report captures' RptEna
writes make it send InformationReports, which tshark decodes too; where it has not (e.g. GGIO1
of the reference model's data objects), a confirmed-Error or a DataAccessError — still answers
tshark must decode. The password connection (f_acse_password_rejected, client password "top secret")
is replayed against a server with a password file without it (AARE rejected,
authentication-failure, then closed) and with it (associated)."""
import os
import tempfile

from gslib import *
from mms_wire import *


def main():
    if not have_tshark():
        print("SKIP: tshark/text2pcap not installed")
        raise SystemExit(77)
    conns = load_connections()
    check(len(conns) == 17, "17 connections in the vectors, got %d" % len(conns))
    with TempDir() as data, tempfile.TemporaryDirectory() as work:
        run([GRIDSENSE, "terminal", "add", "REPLAY01", "--data", data])
        provision(data, 1, "R")
        srv = Server(data, mms=True).start()
        try:
            check(srv.mport, "the port file names the MMS port")
            n_req = n_ans = 0
            runs = []
            for (name, stream), c in sorted(conns.items()):
                if name == "f_acse_password_rejected":
                    continue
                c2s = [t.replace(b"simpleIOGenericIO", b"GRIDSENSEREPLAY01") for t in c["c2s"]]
                conv, closed = replay(srv.mport, c2s)
                ours = [b for d, b in conv if d == "I"]
                want = sum(1 for t in c["c2s"] if expects_answer(t))
                n_req += want
                n_ans += len(ours)
                check(len(ours) >= want, "%s/%d: %d answers for %d requests" %
                      (name, stream, len(ours), want))
                runs.append(("%s/%d" % (name, stream), c, conv, closed))
            infos, detail, problems = tshark_check([r[2] for r in runs], work, "replay")
            check(not problems, "tshark:\n%s" % "\n--\n".join(problems[:5]))
            totals = [0, 0, 0, 0]
            for k, (tag, c, conv, closed) in enumerate(runs):
                summ = "\n".join(infos[k])
                check("CC TPDU" in summ, "%s: no CC decoded:\n%s" % (tag, summ))
                check("initiate-ResponsePDU" in summ,
                      "%s: no initiate-ResponsePDU:\n%s" % (tag, summ))
                # every confirmed request answered (a response or an error; a Reject would be
                # a service the server does not implement: counted, printed, and none expected)
                reqs = sum(1 for i in infos[k] if "confirmed-RequestPDU" in i)
                resp = sum(1 for i in infos[k] if "confirmed-ResponsePDU" in i)
                errs = sum(1 for i in infos[k] if "confirmed-ErrorPDU" in i)
                rejs = sum(1 for i in infos[k] if "rejectPDU" in i)
                check(resp + errs + rejs >= reqs, "%s: %d requests, %d answers decoded:\n%s" %
                      (tag, reqs, resp + errs + rejs, summ))
                totals[0] += reqs
                totals[1] += resp
                totals[2] += errs
                totals[3] += rejs
                if rejs:
                    print("%s: rejected: %s" % (tag, [infos[k][i - 1] for i in range(1, len(infos[k]))
                                                      if "rejectPDU" in infos[k][i]]))
                # a connection the client released or aborted is closed by the server
                ends = [t for t in c["c2s"] if t[5] & 0xF0 == 0xF0 and len(t) > 7 and
                        t[7] in (0x09, 0x19)]
                if ends:
                    check(closed, "%s: the server did not close after %s" %
                          (tag, "FINISH" if ends[-1][7] == 0x09 else "ABORT"))
                if ends and ends[-1][7] == 0x09:
                    check("Release-Response" in summ, "%s: no RLRE:\n%s" % (tag, summ))
            print("replayed %d connections: %d requests, %d answer TPKTs" %
                  (len(conns) - 1, n_req, n_ans))
            print("confirmed requests %d: %d responses, %d errors, %d rejects" % tuple(totals))
            # our InformationReports (the report captures enable EventsRCB01 & co.): tshark shows
            # them as unconfirmed-PDU
            reports = sum(1 for k in range(len(runs)) for i in infos[k] if "unconfirmed-PDU" in i)
            print("InformationReports decoded: %d" % reports)
            check(reports >= 3, "the report captures got reports from our server")
            check(totals[1] >= 70, "with the LD renamed, most requests get a response (%r)" % totals)
            check(totals[3] == 0, "no request rejected (%r)" % totals)
            check(totals[1] > totals[3], "most requests get a response (%r)" % totals)
            check(srv.metric("gridsense_mms_malformed_pdus_total") == 0,
                  "a capture request did not decode (Reject)")
            check(srv.metric("gridsense_mms_protocol_errors_total") == 0,
                  "a capture connection hit a protocol error")
            check(srv.metric("gridsense_mms_associations_total") == 16, "16 associations")
            # the model has the provisioned terminals (one logical device each)
            check(srv.metric("gridsense_mms_logical_devices") == 2, "2 logical devices")
            check(srv.metric("gridsense_mms_aborts_received_total") == 5, "5 client aborts")
            log = srv.log()
            check("mms: 127.0.0.1 associated" in log, "association lines in the log")
        finally:
            check(srv.stop() == 0, "server stopped cleanly")

        # the password connection: the file names "top secret" under another password
        pwf = os.path.join(work, "mms-passwords")  # (outside the data dir, which the store makes private)
        with open(pwf, "w") as f:
            f.write("# MMS clients\nscada not the password\n")
        os.chmod(pwf, 0o600)
        cfg = os.path.join(work, "mms.ini")
        with open(cfg, "w") as f:
            f.write("[mms]\npassword_file = %s\n" % pwf)
        c = conns[("f_acse_password_rejected", 0)]
        srv = Server(data, ["--config", cfg], mms=True).start()
        try:
            conv, closed = replay(srv.mport, c["c2s"])
            check(closed, "closed after the refused password")
            infos, detail, problems = tshark_check([conv], work, "password-refused")
            check(not problems, "tshark:\n%s" % "\n--\n".join(problems[:5]))
            check("rejected-permanent" in detail and "authentication-failure" in detail,
                  "AARE authentication-failure decoded:\n%s" % detail[-3000:])
            check(srv.metric("gridsense_mms_auth_failures_total") == 1, "auth failure counted")
            log = srv.log()
            check("mms: authentication failed from 127.0.0.1" in log, "auth failure logged")
            check("not the password" not in log and "top secret" not in log,
                  "no password in the log")
        finally:
            check(srv.stop() == 0, "server stopped cleanly")
        with open(pwf, "w") as f:
            f.write("scada top secret\n")
        # mode 0644 is refused
        os.chmod(pwf, 0o644)
        p = run([GRIDSENSE, "serve", "--data", data, "--config", cfg, "--mms", "127.0.0.1:0",
                 "--terminals", "127.0.0.1:0", "--http", "127.0.0.1:0"], check_rc=False,
                timeout=60)
        check(p.returncode != 0 and "chmod 600" in (p.stdout + p.stderr),
              "a password file readable by others is refused: %s" % (p.stdout + p.stderr)[-500:])
        os.chmod(pwf, 0o600)
        srv = Server(data, ["--config", cfg], mms=True).start()
        try:
            conv, closed = replay(srv.mport, c["c2s"])
            infos, detail, problems = tshark_check([conv], work, "password-ok")
            check(not problems, "tshark:\n%s" % "\n--\n".join(problems[:5]))
            check("initiate-ResponsePDU" in "\n".join(infos[0]), "associated with the right password")
            check("mms: 127.0.0.1 associated as scada" in srv.log(), "client name logged")
        finally:
            check(srv.stop() == 0, "server stopped cleanly")
    print("ok")


if __name__ == "__main__":
    main()
