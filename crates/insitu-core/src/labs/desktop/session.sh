# The desktop session of a desktop lab, run by bash inside the lab's sandbox:
#   bash -c "$SCRIPT" insitu-desktop PORT BASE_URL GEOMETRY TITLE -- PROGRAM [ARG…]
# It starts a virtual X display with a VNC server (TigerVNC's Xvnc) that
# listens only on a unix socket in the sandbox's private /tmp, a window
# manager that keeps the program's windows filling the screen, the program,
# and finally the VNC-over-WebSocket bridge (websockify) on 127.0.0.1:PORT,
# which also serves the noVNC client under BASE_URL. The bridge demands the
# lab's secret (INSITU_LAB_SECRET, as HTTP Basic, checked by the plugin in
# INSITU_DESKTOP_AUTH_PLUGIN) of every request; no other process of the
# session gets it. No TCP port but the bridge's is opened; the X display listens on no abstract socket either, so
# display :1 of two labs sharing a network namespace never clash.
# The program keeps running when the browser disconnects; the session
# ends when the program does, and ending the sandbox ends everything.
set -u
port=$1 base_url=$2 geometry=$3 title=$4
shift 4
[ "${1:-}" = "--" ] && shift
log() { printf 'insitu-desktop: %s\n' "$*"; }

# The lab's secret is for the bridge alone: not in the environment of the X
# server or the program.
secret=${INSITU_LAB_SECRET:-}
auth_plugin=${INSITU_DESKTOP_AUTH_PLUGIN:-}
unset INSITU_LAB_SECRET INSITU_DESKTOP_AUTH_PLUGIN
if [ -z "$secret" ] || [ -z "$auth_plugin" ]; then
  # Only a bare session for a benchmark, on the host, may go without.
  if [ "${INSITU_DESKTOP_NO_AUTH:-}" != 1 ]; then
    log "no lab secret: the bridge would serve anyone who reaches its port"
    exit 1
  fi
fi

# Outside a sandbox (bench/desktop.py runs the session bare for its direct
# comparison) the run directory and display can be moved.
run=${INSITU_DESKTOP_RUN:-/tmp/insitu-desktop}
web=$run/web
rfb=$run/rfb.sock
mkdir -p "$run" "$web"
export DISPLAY=${INSITU_DESKTOP_DISPLAY:-:1}

Xvnc "$DISPLAY" -geometry "$geometry" -depth 24 -desktop "$title" \
  -rfbunixpath "$rfb" -rfbunixmode 0600 -rfbport -1 \
  -nolisten tcp -nolisten local -SecurityTypes None -AlwaysShared \
  -AcceptSetDesktopSize -SendCutText -AcceptCutText -SetPrimary -SendPrimary &
xvnc=$!
for _ in $(seq 1 200); do
  [ -S "$rfb" ] && xprop -root >/dev/null 2>&1 && break
  kill -0 "$xvnc" 2>/dev/null || { log "the X/VNC server (Xvnc) exited"; exit 1; }
  sleep 0.05
done
[ -S "$rfb" ] || { log "the X/VNC server did not start"; exit 1; }
log "display $DISPLAY ready (${geometry}), VNC on a unix socket"

if command -v matchbox-window-manager >/dev/null; then
  matchbox-window-manager -use_titlebar yes -use_cursor yes &
else
  log "no window manager installed (matchbox-window-manager): windows keep their own size"
fi

# noVNC under the lab's base URL: the proxy forwards the full path.
site=$web${base_url%/}
mkdir -p "$site"
for entry in /usr/share/novnc/*; do
  ln -s "$entry" "$site/$(basename "$entry")"
done
ws_path=${base_url#/}websockify
cat >"$site/index.html" <<HTML
<!doctype html>
<html><head><meta charset="utf-8"><title>$title</title>
<meta http-equiv="refresh" content="0; url=vnc.html?autoconnect=1&amp;resize=remote&amp;reconnect=1&amp;reconnect_delay=1000&amp;path=$ws_path">
</head><body><a href="vnc.html?autoconnect=1&amp;resize=remote&amp;reconnect=1&amp;path=$ws_path">Open $title</a></body></html>
HTML

# The window list, as the X server reports it, for the platform and for
# people: one "id<TAB>title" line per window the window manager manages
# (every visible named window where there is no window manager).
windows() {
  local ids
  ids=$(xprop -root _NET_CLIENT_LIST 2>/dev/null | sed -n 's/.*# //p' | tr -d ',')
  [ -n "$ids" ] || ids=$(xdotool search --onlyvisible --name '.' 2>/dev/null)
  for id in $ids; do
    name=$(xdotool getwindowname "$id" 2>/dev/null) || continue
    [ -n "$name" ] && printf '0x%x\t%s\n' "$id" "$name"
  done
}

"$@" &
program=$!
log "started: $*"
list=$site/insitu-windows.txt
: >"$list"
# The bridge opens once the program shows a window (or after a minute), so
# a lab is "running" when there is something to see.
for _ in $(seq 1 600); do
  windows >"$list.tmp" && mv -f "$list.tmp" "$list"
  [ -s "$list" ] && break
  kill -0 "$program" 2>/dev/null || { log "the program exited before it showed a window"; wait "$program"; exit $?; }
  sleep 0.1
done
while IFS=$'\t' read -r id name; do log "window $id: $name"; done <"$list"
(
  while kill -0 "$program" 2>/dev/null; do
    sleep 2
    windows >"$list.tmp" && mv -f "$list.tmp" "$list"
  done
) &

auth=()
if [ -n "$secret" ]; then
  printf '%s\n' "$auth_plugin" >"$run/insitu_websockify_auth.py"
  auth=(--web-auth --auth-plugin insitu_websockify_auth.LabSecretAuth)
fi
INSITU_LAB_SECRET=$secret PYTHONPATH=$run \
  websockify "${auth[@]}" --web "$web" --unix-target "$rfb" "${INSITU_LISTEN:-127.0.0.1}:$port" &
# The lab lives as long as the program: its exit ends the session (and the
# sandbox with it), with the program's exit code.
wait "$program"
code=$?
log "the program exited (code $code)"
exit "$code"
