#!/bin/sh
# mkman.sh MRAG VERSION — writes the manual page mrag(1) to stdout, made
# from the program's own help texts (`mrag --help`, `mrag COMMAND --help`,
# `mrag config --help`), so the page and --help cannot drift. The sections
# around them (files, environment, exit status) are written here.
set -e
mrag=$1
version=$2
# roff: backslashes doubled, a leading . or ' protected, lines as they are
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
cmds=$("$mrag" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && !/^commands:/ {print $1}')
cat <<HEAD
.TH MRAG 1 "" "mrag $version" "User Commands"
.SH NAME
mrag \- answers questions from your own documents, offline
.SH SYNOPSIS
.B mrag
.I COMMAND
[\fIoptions\fR] [\fIoperands\fR]
.br
.B mrag \-\-version
.br
.B mrag config
[\fICOMMAND\fR]
.SH DESCRIPTION
.nf
HEAD
"$mrag" --help | esc
cat <<'MID'
.fi
.SS Options
Every command takes its options anywhere among its operands, as
\fB\-\-name VALUE\fR, \fB\-\-name=VALUE\fR, \fB\-k VALUE\fR or \fB\-kVALUE\fR;
\fB\-\-\fR ends the options. Long names are matched whole, never abbreviated.
A usage error (an unknown option, a missing or bad value, a missing operand)
names the option and what it accepts, and exits with status 2.
\fB\-\-config FILE\fR, anywhere, reads only that configuration file.
.SH COMMANDS
MID
for c in $cmds; do
  printf '.SS %s\n.nf\n' "$c"
  "$mrag" "$c" --help | esc
  printf '.fi\n'
done
cat <<'CONF'
.SH CONFIGURATION
.nf
CONF
"$mrag" config --help | esc
cat <<'TAIL'
.fi
.SH ENVIRONMENT
.TP
.B MRAG_INDEX
the index folder when \fB\-\-index\fR is not given (default ./.mrag)
.TP
.B MRAG_MODEL
the model file when \fB\-m\fR is not given
.TP
.B MRAG_PREAMBLE
the prompt preamble file
.TP
.B MRAG_DATA_DIR
the folder holding guardrails/ (the default rules and detector models),
instead of the one compiled in
.TP
.B MRAG_CONFIG
the only configuration file to read
.TP
.B MRAG_GUARDRAILS
extra guardrail rules folders
.TP
.B MRAG_SIMD
caps the engine's SIMD level: ref, avx2 or avx512
.TP
.B NO_COLOR
no colour on a terminal
.SH FILES
.TP
.I /etc/mrag/mrag.conf
the system configuration
.TP
.I ~/.config/mrag/mrag.conf
the user configuration ($XDG_CONFIG_HOME/mrag/mrag.conf)
.TP
.I PREFIX/share/mrag/guardrails/
the default guardrail rules and the detector models
.TP
.I PREFIX/share/mrag/systemd/
the systemd units of the deployment guide (mrag-serve.service,
mrag-sync.service, mrag-sync.timer)
.TP
.I PREFIX/share/doc/mrag/
the documentation (building.md, deploy.md, answering.md, ...)
.SH EXIT STATUS
0 success; 1 an error (the message names the file or request); 2 a usage
error, or a guardrail blocked the question or answer (ask, guard\-check);
130 interrupted.
.SH SEE ALSO
The documentation in PREFIX/share/doc/mrag, \fBmrag \-\-version\fR.
TAIL
