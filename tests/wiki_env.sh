#!/bin/sh
# wiki_env.sh — a throw-away MediaWiki (SQLite) in a temp folder, served by
# PHP's built-in web server on a free loopback port, for the wiki tests and
# the wiki benchmark. Nothing outside BASE is touched.
#
#   sh tests/wiki_env.sh start BASE [public|private] [--no-pages]
#        installs the wiki into BASE (must not exist or be empty), adds the
#        namespace 100 "Intern" (the restricted one: MediaWiki core has no
#        per-namespace read rights, so mrag's access rules map it to a group),
#        English and German pages (unless --no-pages), a bot password
#        Admin@mrag (private variant: anonymous read off), starts the server
#        and prints "URL PID" on stdout. BASE/env holds shell variables
#        (WIKI_URL, WIKI_API, WIKI_PID, WIKI_PORT, MW_CONFIG_FILE, WIKI_BOT_USER,
#        WIKI_BOT_PASSFILE).
#   sh tests/wiki_env.sh stop BASE       kills the server started for BASE
#   sh tests/wiki_env.sh edit BASE TITLE [SUMMARY] < wikitext
#   sh tests/wiki_env.sh move BASE FROM TO            (no redirect left behind)
#   sh tests/wiki_env.sh move-redirect BASE FROM TO   (FROM becomes a redirect)
#   sh tests/wiki_env.sh delete BASE TITLE
#   sh tests/wiki_env.sh undelete BASE TITLE
#   sh tests/wiki_env.sh php BASE SCRIPT [ARGS...]   any maintenance script
#
# Exit status 77 when MediaWiki or PHP is not installed (callers skip).
set -eu

MW=${MW_DIR:-/usr/share/mediawiki}
cmd=${1:-}
BASE=${2:-}
[ -n "$cmd" ] && [ -n "$BASE" ] || { echo "usage: wiki_env.sh start|stop|edit|move|delete|php BASE ..." >&2; exit 2; }

need() {
  if [ ! -f "$MW/maintenance/install.php" ] || ! command -v php >/dev/null 2>&1 ||
     ! php -m 2>/dev/null | grep -qi '^pdo_sqlite$'; then
    echo "wiki_env: MediaWiki ($MW), php or php-sqlite3 not installed (apt-get install mediawiki php-sqlite3 php-cli php-cgi)" >&2
    exit 77
  fi
}

mwphp() {   # mwphp SCRIPT ARGS... : a maintenance script against BASE's wiki
  script=$1; shift
  MW_CONFIG_FILE="$BASE/conf/LocalSettings.php" php "$MW/maintenance/$script" "$@"
}

# A write through a maintenance script, tried up to 3 times: SQLite allows
# one writer, and the web server may hold the database for a moment. stdin
# is kept in a file so that every try sees it.
mwwrite() {
  in="$BASE/stdin.$$"
  cat > "$in"
  n=0
  until mwphp "$@" < "$in" > "$BASE/last.log" 2>&1; do
    n=$((n + 1))
    if [ $n -ge 3 ]; then cat "$BASE/last.log" >&2; rm -f "$in"; return 1; fi
    sleep 1
  done
  rm -f "$in"
}

case "$cmd" in
start)
  need
  variant=${3:-public}
  pages=yes
  [ "${4:-}" = "--no-pages" ] && pages=no
  mkdir -p "$BASE/data" "$BASE/conf"
  BASE=$(cd "$BASE" && pwd)
  # a random high port; the server start below retries on a taken one
  port=$(( 20000 + ($$ * 7919 + $(date +%N | sed 's/^0*//;s/^$/0/') / 1000) % 40000 ))
  printf 'Adm1n-%s-%s-Passw0rd\n' "$$" "$(date +%s%N)" > "$BASE/adminpass"
  # the server URL is fixed at install time; the port is chosen first and
  # rewritten in LocalSettings.php if it turns out to be taken
  php "$MW/maintenance/install.php" --dbtype=sqlite --dbpath="$BASE/data" \
      --dbname=wiki --server="http://127.0.0.1:$port" --scriptpath="" --confpath="$BASE/conf" \
      --lang=en --passfile="$BASE/adminpass" --skins=Vector --quiet "TestWiki" "Admin" >"$BASE/install.log" 2>&1 ||
    { cat "$BASE/install.log" >&2; exit 1; }
  cat >> "$BASE/conf/LocalSettings.php" <<'EOF'

# --- mrag test settings (tests/wiki_env.sh)
define( 'NS_INTERN', 100 );
define( 'NS_INTERN_TALK', 101 );
$wgExtraNamespaces[NS_INTERN] = 'Intern';
$wgExtraNamespaces[NS_INTERN_TALK] = 'Intern_talk';
$wgEnableBotPasswords = true;
$wgRCMaxAge = 90 * 24 * 3600;
$wgJobRunRate = 0;
$wgShowExceptionDetails = true;
$wgCacheDirectory = false;
$wgMainCacheType = CACHE_NONE;
$wgParserCacheType = CACHE_DB;
$wgUseInstantCommons = false;
$wgLocaltimezone = 'UTC';
EOF
  if [ "$variant" = private ]; then
    cat >> "$BASE/conf/LocalSettings.php" <<'EOF'
$wgGroupPermissions['*']['read'] = false;
$wgGroupPermissions['*']['edit'] = false;
$wgGroupPermissions['*']['createaccount'] = false;
EOF
  fi
  export MW_CONFIG_FILE="$BASE/conf/LocalSettings.php"
  if [ "$pages" = yes ]; then
    ed() { mwphp edit.php -u Admin -s "$2" "$1" >/dev/null; }
    printf '%s\n' "The '''Apollo''' project builds the lunar lander simulator." "" \
      "== Installation ==" "Install the simulator with the package manager; the kestrel daemon must run first." "" \
      "== Usage ==" "Start a mission with the launch command. Fuel is measured in kilograms." | ed "Apollo project" "create"
    printf '%s\n' "Die '''Bergwanderung''' findet jedes Jahr im Juli statt." "" \
      "== Ausrüstung ==" "Wanderschuhe, Regenjacke und genügend Wasser mitbringen. Die Hütte heißt Murmeltierhütte." "" \
      "== Anmeldung ==" "Anmeldung bis Ende Mai beim Sekretariat." | ed "Bergwanderung" "angelegt"
    printf '%s\n' "Coffee machine on floor three: descale it every Friday with the quartz tablets." "" \
      "[[Category:Office]]" | ed "Office/Coffee machine" "create"
    printf '%s\n' "Salary bands for 2026 are confidential: band seven starts at the marmalade threshold." "" \
      "== Review ==" "Reviews happen in the zeppelin room." | ed "Intern:Salaries" "create"
    printf '%s\n' "The onboarding checklist for new colleagues: laptop, badge, the heron handbook." | ed "Intern:Onboarding" "create"
  fi
  # a bot password for Admin: user "Admin@mrag", all grants that reading needs
  mwphp createBotPassword.php --appid mrag --grants basic,highvolume Admin > "$BASE/botpass.log" 2>&1 ||
    { cat "$BASE/botpass.log" >&2; exit 1; }
  sed -n "s/.*password:'\([^']*\)'.*/\1/p" "$BASE/botpass.log" | tail -1 > "$BASE/botpass"
  [ -s "$BASE/botpass" ] || { echo "wiki_env: no bot password in:" >&2; cat "$BASE/botpass.log" >&2; exit 1; }
  # start the server; on a taken port pick another and rewrite $wgServer
  tries=0
  while :; do
    sed -i "s#^\$wgServer = .*#\$wgServer = \"http://127.0.0.1:$port\";#" "$BASE/conf/LocalSettings.php"
    PHP_CLI_SERVER_WORKERS=${WIKI_WORKERS:-2} MW_CONFIG_FILE="$BASE/conf/LocalSettings.php" \
      setsid php -S "127.0.0.1:$port" -t "$MW" >"$BASE/server.log" 2>&1 </dev/null &
    pid=$!
    ok=no
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      # our wiki answering, not some other server that had the port (the
      # private wiki answers with readapidenied)
      if curl -s -m 2 "http://127.0.0.1:$port/api.php?action=query&meta=siteinfo&format=json" 2>/dev/null |
         grep -q -e '"sitename":"TestWiki"' -e '"readapidenied"'; then ok=yes; break; fi
      sleep 0.05
    done
    [ $ok = yes ] && break
    kill "$pid" 2>/dev/null || true
    tries=$((tries + 1))
    [ $tries -lt 10 ] || { echo "wiki_env: the PHP server did not start:" >&2; cat "$BASE/server.log" >&2; exit 1; }
    port=$(( 20000 + (port - 20000 + 1237) % 40000 ))
  done
  cat > "$BASE/env" <<EOF
WIKI_URL=http://127.0.0.1:$port
WIKI_API=http://127.0.0.1:$port/api.php
WIKI_PORT=$port
WIKI_PID=$pid
MW_CONFIG_FILE=$BASE/conf/LocalSettings.php
WIKI_BOT_USER=Admin@mrag
WIKI_BOT_PASSFILE=$BASE/botpass
EOF
  echo "http://127.0.0.1:$port $pid"
  ;;
stop)
  if [ -f "$BASE/env" ]; then
    pid=$(sed -n 's/^WIKI_PID=//p' "$BASE/env")
    # the server runs in its own session (setsid): its workers go with it
    [ -n "$pid" ] && kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  fi
  ;;
edit)
  need
  mwwrite edit.php -u Admin -s "${4:-edit}" "$3"
  ;;
move)
  need
  printf '%s|%s\n' "$3" "$4" > "$BASE/move.txt"
  mwwrite moveBatch.php -u Admin -r "move" --noredirects "$BASE/move.txt" < /dev/null
  ;;
move-redirect)
  need
  printf '%s|%s\n' "$3" "$4" > "$BASE/move.txt"
  mwwrite moveBatch.php -u Admin -r "move" "$BASE/move.txt" < /dev/null
  ;;
delete)
  need
  printf '%s\n' "$3" > "$BASE/delete.txt"
  mwwrite deleteBatch.php -u Admin -r "delete" "$BASE/delete.txt" < /dev/null
  ;;
undelete)
  need
  mwwrite undelete.php -u Admin -r "restore" "$3" < /dev/null
  ;;
php)
  need
  shift 2
  mwphp "$@"
  ;;
*)
  echo "wiki_env: unknown command $cmd" >&2; exit 2
  ;;
esac
