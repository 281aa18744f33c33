# Helpers every integration test may source (not a test: not executable).

# wait_bounded PID SECS: waits for PID (a child of this shell) to end, at
# most SECS seconds; past that it kills it (SIGKILL) and says so on stderr.
# Returns the child's exit status (137 when it had to be killed), so no
# test ever blocks forever on a guest nobody stops.
wait_bounded() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "wait_bounded: pid $pid still running after ${limit}s: killed" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
}
