#!/bin/sh
# gen_sample_pdf.sh — writes a small multi-page PDF from a UTF-8 text file:
#   sh tests/gen_sample_pdf.sh IN.txt OUT.pdf ["Title"]
# A line holding only "<<<PAGE>>>" starts a new page, so does every 60th line.
# Latin-1 characters (ä ö ü ß é …) come out right (WinAnsiEncoding, Helvetica);
# others become "?". The writer is plain POSIX sh + awk + iconv: no PDF tool is
# needed, the cross-reference offsets are computed from the bytes written.
#
#   sh tests/gen_sample_pdf.sh --corpus DEST
# copies data/sample into DEST and adds the PDFs made from data/sample-pdf/*.txt
# (DEST/it/it-security-guidelines.pdf): the full demo/test corpus. Run it
# from the repository root.
set -eu
if [ "${1:-}" = "--corpus" ]; then
  dest=${2:?usage: gen_sample_pdf.sh --corpus DEST}
  mkdir -p "$dest"
  cp -R data/sample/. "$dest"/
  mkdir -p "$dest/it"
  sh "$0" data/sample-pdf/it-security-guidelines.txt "$dest/it/it-security-guidelines.pdf" "IT Security Guidelines"
  exit 0
fi
in=$1
out=$2
title=${3:-$(basename "$in")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Escape for a PDF string and convert to Windows-1252 bytes.
pdfstr() { sed -e 's/\\/\\\\/g' -e 's/(/\\(/g' -e 's/)/\\)/g' | iconv -f UTF-8 -t WINDOWS-1252//TRANSLIT 2>/dev/null || true; }

# Split the text into pages of content-stream operators: page-N.txt
fold -s -w 95 "$in" | awk -v dir="$tmp" '
  function newpage() { if (n) close(f); n++; f = sprintf("%s/page-%04d.txt", dir, n); line = 0 }
  BEGIN { n = 0; newpage() }
  $0 == "<<<PAGE>>>" { newpage(); next }
  { if (line == 60) newpage(); print > f; line++ }
'

off() { wc -c < "$tmp/pdf" | tr -d ' '; }
obj_offsets=""
emit_obj() { obj_offsets="$obj_offsets $(off)"; }

printf '%%PDF-1.4\n%%\342\343\317\323\n' > "$tmp/pdf"
npages=$(ls "$tmp"/page-*.txt | wc -l | tr -d ' ')
kids=""
i=0
while [ $i -lt "$npages" ]; do kids="$kids $((5 + 2 * i)) 0 R"; i=$((i + 1)); done

emit_obj; printf '1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n' >> "$tmp/pdf"
emit_obj; printf '2 0 obj\n<< /Type /Pages /Kids [%s ] /Count %s >>\nendobj\n' "$kids" "$npages" >> "$tmp/pdf"
emit_obj; printf '3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\nendobj\n' >> "$tmp/pdf"
emit_obj; { printf '4 0 obj\n<< /Title ('; printf '%s' "$title" | pdfstr; printf ') /Producer (mrag gen_sample_pdf.sh) >>\nendobj\n'; } >> "$tmp/pdf"

i=0
for page in "$tmp"/page-*.txt; do
  # content stream: one text line per input line, 13 pt apart
  {
    printf 'BT\n/F1 11 Tf\n13 TL\n56 790 Td\n'
    # one pipeline per page: escape, wrap each line as "(text) '", re-encode
    sed -e 's/\\/\\\\/g' -e 's/(/\\(/g' -e 's/)/\\)/g' -e 's/^/(/' -e "s/\$/) '/" "$page" |
      iconv -f UTF-8 -t WINDOWS-1252//TRANSLIT 2>/dev/null || true
    printf 'ET\n'
  } > "$tmp/stream"
  len=$(wc -c < "$tmp/stream" | tr -d ' ')
  emit_obj
  printf '%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n' \
    $((5 + 2 * i)) $((6 + 2 * i)) >> "$tmp/pdf"
  emit_obj
  { printf '%d 0 obj\n<< /Length %s >>\nstream\n' $((6 + 2 * i)) "$len"; cat "$tmp/stream"; printf '\nendstream\nendobj\n'; } >> "$tmp/pdf"
  i=$((i + 1))
done

nobj=$((5 + 2 * npages))
xref=$(off)
{
  printf 'xref\n0 %d\n0000000000 65535 f \n' "$nobj"
  for o in $obj_offsets; do printf '%010d 00000 n \n' "$o"; done
  printf 'trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%s\n%%%%EOF\n' "$nobj" "$xref"
} >> "$tmp/pdf"
mv "$tmp/pdf" "$out"
