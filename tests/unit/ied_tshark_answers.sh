#!/usr/bin/env bash
# Our ied answers (test_ied --answers: Identify, GetNameList, GetVariableAccessAttributes and Read
# of every LN, FC parts and attributes, a Read list with an unknown variable, a confirmed-Error and
# a Reject) in confirmed-Response envelopes, after a capture's client CR and CONNECT, checked with
# Wireshark's dissectors: no malformed frame, no expert warning or error, every response
# recognised. Usage: ied_tshark_answers.sh TEST_IED_BINARY. Exit 77 (skipped) without tshark.
set -euo pipefail
bin=$1
command -v tshark >/dev/null && command -v text2pcap >/dev/null || exit 77
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" --answers "$dir/answers.txt" >/dev/null
text2pcap -q -D -T 40000,10102 "$dir/answers.txt" "$dir/answers.pcap"
tshark -r "$dir/answers.pcap" -d tcp.port==10102,tpkt 2>/dev/null > "$dir/summary.txt"
tshark -r "$dir/answers.pcap" -d tcp.port==10102,tpkt -Y "ip.src==10.1.1.1" -V 2>/dev/null > "$dir/detail.txt"
# (the requests include a deliberately malformed one: only our answers must be clean)
cat "$dir/summary.txt"
fail=0
if grep -Eqi 'malformed|Expert Info \((Error|Warning)' "$dir/detail.txt"; then
  grep -Ei -B3 'malformed|Expert Info \((Error|Warning)' "$dir/detail.txt" | head -40
  fail=1
fi
n=$(grep -c 'confirmed-ResponsePDU' "$dir/summary.txt" || true)
[ "$n" -ge 35 ] || { echo "expected >= 35 confirmed responses, got $n"; fail=1; }
for want in 'confirmed-ErrorPDU' 'rejectPDU'; do
  grep -Eq "$want" "$dir/summary.txt" || { echo "missing: $want"; fail=1; }
done
grep -q 'vendorName: gridsense' "$dir/detail.txt" || { echo "missing Identify vendor"; fail=1; }
grep -q 'Identifier: GRIDSENSEDEMO_M0001' "$dir/detail.txt" || { echo "missing domain"; fail=1; }
grep -q 'Identifier: MMXU1\$MX\$PhV\$phsA\$cVal\$mag\$f' "$dir/detail.txt" ||
  { echo "missing variable name"; fail=1; }
grep -q 'floating-point' "$dir/detail.txt" || { echo "missing float"; fail=1; }
n=$(grep -c 'unconfirmed-PDU' "$dir/summary.txt" || true)
[ "$n" -ge 2 ] || { echo "expected 2 informationReports, got $n"; fail=1; }
grep -q 'vmd-specific: RPT' "$dir/detail.txt" && grep -q 'informationReport' "$dir/detail.txt" ||
  { echo "missing informationReport RPT"; fail=1; }
grep -q 'getNamedVariableListAttributes' "$dir/detail.txt" || { echo "missing GetNVLAttributes"; fail=1; }
for want in 'confirmedServiceResponse: fileDirectory' 'confirmedServiceResponse: fileOpen' \
            'confirmedServiceResponse: fileRead' 'confirmedServiceResponse: fileClose' \
            'FileName item: DEMO-0001/EV12.dat' 'sizeOfFile: 300'; do
  grep -q "$want" "$dir/detail.txt" || { echo "missing: $want"; fail=1; }
done
grep -q 'failure: object-non-existent (10)' "$dir/detail.txt" ||
  { echo "missing object-non-existent"; fail=1; }
exit $fail
