# Shell helpers for tests that start, signal and wait for jobs in the
# background (sourced by tests/cli/faults.sh and tests/soak.sh).
#
# bg LOG CMD...: starts CMD in the background, stdout and stderr appended to
# LOG, inside a wrapper subshell (so that bash prints no "Killed" notice when a
# test kills it); sets PID (CMD's process, to signal) and WRAP (the wrapper).
# fin LOG: waits for it; RC = its exit status.
bg() {
    local log=$1; shift
    rm -f "$log.pid" "$log.rc"
    ( "$@" >>"$log" 2>&1 & echo $! >"$log.pid"; wait $!; echo $? >"$log.rc" ) 2>/dev/null &
    WRAP=$!
    while [ ! -s "$log.pid" ]; do sleep 0.005; done
    PID=$(cat "$log.pid")
}
fin() { wait $WRAP; RC=$(cat "$1.rc" 2>/dev/null || echo "?"); }
# wait_file PATH: until PATH exists (30 s at most)
wait_file() { for i in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
# wait_line LOG PATTERN N: until LOG has N lines matching PATTERN (60 s at most)
wait_line() { for i in $(seq 3000); do [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.02; done; return 1; }
# stale_temps DIR: how many checkpoint temporaries (*.tmp.*) DIR holds
stale_temps() { ls "$1"/*.tmp.* 2>/dev/null | wc -l; }
