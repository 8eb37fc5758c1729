#!/bin/sh
# Fills the @NAME@ placeholders of a deploy/ template: render.sh FILE NAME=VALUE... > OUT
# Refuses to print a file that still has a placeholder, so a half-rendered unit never installs.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 FILE NAME=VALUE..." >&2; exit 2; }
file=$1; shift
text=$(cat "$file")
for pair in "$@"; do
  name=${pair%%=*}; value=${pair#*=}
  case $name in ''|*[!A-Z0-9_]*) echo "$0: $pair is not NAME=VALUE" >&2; exit 2;; esac
  case $value in *[!A-Za-z0-9_./-]*|'') echo "$0: $name=$value: only letters, digits and _ . / - are allowed" >&2; exit 2;; esac
  text=$(printf '%s\n' "$text" | sed "s|@$name@|$value|g")
done
left=$(printf '%s\n' "$text" | grep -o '@[A-Z0-9_]*@' | sort -u | tr '\n' ' ' || true)
[ -z "$left" ] || { echo "$0: $file still needs: $left" >&2; exit 2; }
printf '%s\n' "$text"
