#!/usr/bin/env bash
# The answers our MMS stack encoders build (test_mms_stack --answers: CC, AC with CPA + AARE +
# initiate-response, AC with an AARE rejection, confirmed-Error, Reject, conclude-response, DN
# with RLRE, AB with ABRT, AB with ARP, ER) after the client's CR and CONNECT of a reference
# capture, checked with Wireshark's dissectors: each is recognised as the PDU it is meant to be,
# and no frame is malformed or carries an expert warning or error.
# Usage: mms_tshark_answers.sh TEST_MMS_STACK_BINARY. Exit 77 (skipped) without tshark/text2pcap.
set -euo pipefail
bin=$1
command -v tshark >/dev/null && command -v text2pcap >/dev/null || exit 77
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" --answers "$dir/answers.txt"
text2pcap -q -D -T 40000,10102 "$dir/answers.txt" "$dir/answers.pcap"
tshark -r "$dir/answers.pcap" -d tcp.port==10102,tpkt 2>/dev/null > "$dir/summary.txt"
tshark -r "$dir/answers.pcap" -d tcp.port==10102,tpkt -V 2>/dev/null > "$dir/detail.txt"
cat "$dir/summary.txt"
fail=0
if grep -Eqi 'malformed|Expert Info \((Error|Warning)' "$dir/detail.txt"; then
  grep -Ei -B3 'malformed|Expert Info \((Error|Warning)' "$dir/detail.txt" | head -40
  fail=1
fi
for want in 'CC TPDU' 'initiate-ResponsePDU' 'A-Associate-Response' 'confirmed-ErrorPDU' \
            'rejectPDU' 'conclude-ResponsePDU' 'Release-Response' 'Abort \(service-provider\)' \
            'ABORT \(AB\) SPDU \(unrecognized-ppdu\)'; do
  grep -Eq "$want" "$dir/summary.txt" || { echo "missing: $want"; fail=1; }
done
grep -q 'result: rejected-permanent (1)' "$dir/detail.txt" || { echo "missing AARE rejection"; fail=1; }
grep -q 'service-user: authentication-failure (13)' "$dir/detail.txt" ||
  { echo "missing authentication-failure"; fail=1; }
grep -q 'unrecognized-service (1)' "$dir/detail.txt" || { echo "missing reject reason"; fail=1; }
exit $fail
